"""Where question-answer pairs come from: a local instruct model, an OpenAI-compatible endpoint, or a file.

Each generator implements `PairGenerator.generate(context, n, seed)` and returns *raw* pairs (parsed,
not yet filtered); `build_target_set` filters and de-duplicates them and records what it dropped. The
two model-backed generators still filter internally to decide when they have enough: they keep asking
(in rounds) until the raw pairs contain `n` usable ones or a round cap is reached, then return what they
have; whether too few is an error is the builder's call.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from tqdm.auto import tqdm

from ..generation import Completion, encode_prompt, sample_continuations
from ..generation import generate as lm_generate
from ..jsonl import read_jsonl
from ..lm import LM
from ..prompts import chat_prompt
from .qa import (
    RESPONSE_PREFIX,
    FilterConfig,
    complete_lines,
    generation_user_text,
    list_ended,
    parse_pairs,
    select_pairs,
    trailing_unusable,
)
from .types import GeneratorError, QAPair


def _enough(raw: list[QAPair], context: str, n: int, config: FilterConfig | None) -> bool:
    return len(select_pairs(raw, context, config)[0]) >= n


class LocalGenerator:
    """Samples pairs from a local instruct model (by default the model being updated), in parallel.

    The prompt (the paper's instruction, its worked example and the context: several hundred tokens) is
    read once; every round then samples `batch_size` completions on copies of its KV cache (one seed per
    round, so a run is reproducible) and stops the moment the completed lines hold `n` usable unique
    pairs, mid-round included, or after `max_rounds`. `reuse_prompt_cache=False` is the plain path
    (`model.generate` on `[prompt] * batch_size`, the prompt recomputed for every sample and round, a
    round always run to its end): the bench's naive reference.

    Defaults measured on SmolLM2-135M, 2 CPU cores, a SQuAD paragraph (plain path): 16 completions of 160
    tokens gave ~27 usable unique pairs in ~37 s, where 8 of 256 tokens gave 9 in ~40 s (long completions
    drift into repetition loops and off-topic answers, so many short samples beat few long). The cached
    path costs 4.7 CPU s per usable pair at 16 x 160 against 7.8 for the plain one, and 3.0 at 32 x 160
    (docs/benchmarks.md).

    With `retire_after=k` (cached path only; 0 = off) a completion leaves its round as soon as its last `k`
    finished pairs are all unusable (copies of the prompt's example, repeats, off-topic questions) or it
    starts another `Context:`: the rows still writing usable pairs go on, faster, in a narrower batch.

    With `progress`, a bar counts the usable unique pairs found so far against `n` (updated at every check
    of the cached path, after every round of the plain one): generation is most of an injection's time.
    """

    def __init__(self, lm: LM, temperature: float = 0.7, top_p: float = 0.95, batch_size: int = 16,
                 max_new_tokens: int = 160, max_rounds: int = 8, filter_config: FilterConfig | None = None,
                 reuse_prompt_cache: bool = True, retire_after: int = 0, progress: bool = False):
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (sampling is what makes the pairs diverse), got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        for name, value in (("batch_size", batch_size), ("max_new_tokens", max_new_tokens), ("max_rounds", max_rounds)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if retire_after < 0:
            raise ValueError(f"retire_after must be >= 0 (0 = off), got {retire_after}")
        if retire_after and not reuse_prompt_cache:
            raise ValueError("retire_after needs reuse_prompt_cache=True (the plain path runs every row to its end)")
        self.lm, self.temperature, self.top_p = lm, temperature, top_p
        self.batch_size, self.max_new_tokens, self.max_rounds = batch_size, max_new_tokens, max_rounds
        self.filter_config = filter_config
        self.reuse_prompt_cache = reuse_prompt_cache
        self.retire_after = retire_after
        self.progress = progress
        self.description = (f"local:{lm.name} temperature={temperature} top_p={top_p} max_new_tokens={max_new_tokens}"
                            + (f" retire_after={retire_after}" if retire_after else ""))
        self.rounds_used = 0  # of the last `generate` call, for reports

    def prompt(self, context: str) -> str:
        """The full prompt text: the chat-rendered request with the assistant turn opened by `- Question:`."""
        return chat_prompt(self.lm.tokenizer, generation_user_text(context)) + RESPONSE_PREFIX

    def generate(self, context: str, n: int, seed: int) -> list[QAPair]:
        prompt = self.prompt(context)
        n_prompt = len(self.lm.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if n_prompt + self.max_new_tokens > self.lm.max_length:
            raise GeneratorError(
                f"the generation prompt is {n_prompt} tokens; with max_new_tokens={self.max_new_tokens} it exceeds "
                f"{self.lm.name}'s context window of {self.lm.max_length} tokens: shorten the context"
            )
        with tqdm(total=n, desc="pairs", unit="pair", disable=not self.progress, leave=False) as bar:
            if self.reuse_prompt_cache:
                return self._generate_cached(prompt, context, n, seed, bar)
            return self._generate_plain(prompt, context, n, seed, bar)

    def _enough(self, raw: list[QAPair], context: str, n: int, bar: tqdm) -> bool:
        """Whether `raw` holds `n` usable unique pairs; shows how many it holds on the bar."""
        usable = len(select_pairs(raw, context, self.filter_config)[0])
        bar.n = min(usable, n)
        bar.set_postfix(round=self.rounds_used)  # and redraws
        return usable >= n

    def _generate_cached(self, prompt: str, context: str, n: int, seed: int, bar: tqdm) -> list[QAPair]:
        encoded = encode_prompt(self.lm, prompt)  # the one pass over the prompt
        raw: list[QAPair] = []
        self.rounds_used = 0

        def enough(partial: list[Completion]) -> bool:
            return self._enough(raw + [p for c in partial for p in self._pairs(c)], context, n, bar)

        for round_index in range(self.max_rounds):
            self.rounds_used += 1
            completions = sample_continuations(self.lm, encoded, self.batch_size, self.max_new_tokens,
                                               temperature=self.temperature, top_p=self.top_p,
                                               seed=seed * 1000 + round_index, enough=enough,
                                               retire=self._retire(context) if self.retire_after else None)
            raw.extend(p for c in completions for p in self._pairs(c))
            if self._enough(raw, context, n, bar):
                break
        return raw

    def _retire(self, context: str):
        """The row test of `retire_after`, on a completion's finished lines."""

        def retire(text: str) -> bool:
            done = complete_lines(f"{RESPONSE_PREFIX} {text}")
            if list_ended(done):
                return True
            return trailing_unusable(parse_pairs(done), context, self.filter_config) >= self.retire_after

        return retire

    def _pairs(self, completion: Completion) -> list[QAPair]:
        """The pairs of a completion; one the model did not end itself may stop mid-pair, so its last is dropped."""
        return parse_pairs(f"{RESPONSE_PREFIX} {completion.text}", truncated=not completion.ended)

    def _generate_plain(self, prompt: str, context: str, n: int, seed: int, bar: tqdm) -> list[QAPair]:
        raw: list[QAPair] = []
        self.rounds_used = 0
        for round_index in range(self.max_rounds):
            self.rounds_used += 1
            outputs = lm_generate(self.lm, [prompt] * self.batch_size, max_new_tokens=self.max_new_tokens,
                                  batch_size=self.batch_size, do_sample=True, temperature=self.temperature,
                                  top_p=self.top_p, seed=seed * 1000 + round_index)
            for text in outputs:
                raw.extend(parse_pairs(f"{RESPONSE_PREFIX} {text}", truncated=self._hit_limit(text)))
            if self._enough(raw, context, n, bar):
                break
        return raw

    def _hit_limit(self, text: str) -> bool:
        """Whether a completion ran to `max_new_tokens` (re-tokenized, so with a small margin)."""
        return len(self.lm.tokenizer(text, add_special_tokens=False)["input_ids"]) >= self.max_new_tokens - 3


class OpenAIGenerator:
    """Asks any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, hosted APIs) for pairs.

    The API key is read from the environment variable `api_key_env` at request time; when it is unset no
    Authorization header is sent (local servers need none) and a 401 says which variable to set. Pass
    `transport` (e.g. `httpx.MockTransport`) or `client` to test without a network.
    """

    def __init__(self, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY", timeout: float = 120.0,
                 temperature: float = 0.8, max_tokens: int = 2048, max_rounds: int = 3,
                 filter_config: FilterConfig | None = None, transport: httpx.BaseTransport | None = None,
                 client: httpx.Client | None = None):
        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("model: empty model name for the OpenAI-compatible endpoint")
        if max_rounds < 1:
            raise ValueError(f"max_rounds must be >= 1, got {max_rounds}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env, self.timeout = model, api_key_env, timeout
        self.temperature, self.max_tokens, self.max_rounds = temperature, max_tokens, max_rounds
        self.filter_config = filter_config
        self.client = client or httpx.Client(timeout=timeout, transport=transport)
        self.description = f"openai:{model}@{base_url.rstrip('/')}"

    def generate(self, context: str, n: int, seed: int) -> list[QAPair]:
        """Rounds of requests until `n` usable pairs; the first answer must contain pairs, a later empty
        one just ends the rounds (the pairs already parsed are good)."""
        raw: list[QAPair] = []
        for round_index in range(self.max_rounds):
            text = self.complete(generation_user_text(context, n=n), seed=seed * 1000 + round_index)
            pairs = parse_pairs(text)
            if not pairs:
                if round_index == 0:
                    raise GeneratorError(
                        f"{self.url} (model {self.model!r}) returned text with no question-answer pairs; "
                        f"it should answer with lines like '- Question: ... Answer: ...'. It returned: {text[:300]!r}"
                    )
                break
            raw.extend(pairs)
            if _enough(raw, context, n, self.filter_config):
                break
        return raw

    def complete(self, user_text: str, seed: int) -> str:
        """One chat completion: the assistant's text, or a `GeneratorError` saying what went wrong."""
        headers = {}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        payload = {"model": self.model, "messages": [{"role": "user", "content": user_text}],
                   "temperature": self.temperature, "max_tokens": self.max_tokens, "seed": seed}
        try:
            response = self.client.post(self.url, json=payload, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException:
            raise GeneratorError(f"{self.url} did not answer within {self.timeout:g} s: is the server overloaded? "
                                 f"raise the timeout or use a smaller model") from None
        except httpx.HTTPError as e:
            raise GeneratorError(f"could not reach {self.url} ({type(e).__name__}: {e}): is the server running "
                                 f"and is the base URL right (usually ending in /v1)?") from None
        if response.status_code != 200:
            raise GeneratorError(f"{self.url} answered HTTP {response.status_code}{self._hint(response.status_code)}: "
                                 f"{response.text[:300]}")
        try:
            return str(response.json()["choices"][0]["message"]["content"] or "")
        except (ValueError, KeyError, IndexError, TypeError):
            raise GeneratorError(f"{self.url} returned something that is not an OpenAI chat completion: "
                                 f"{response.text[:300]!r}") from None

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            return f" (set the API key in ${self.api_key_env})"
        if status == 404:
            return f" (check the base URL, usually ending in /v1, and that the server serves model {self.model!r})"
        return ""


class JsonlGenerator:
    """Reads user-written pairs from a JSONL file: one `{"question", "answer"}` object a line.

    A line may carry `"context"`; such lines are used only for that context (so one file can hold the
    pairs of many contexts), lines without it for every context. The file is checked whole on every call
    so a bad line is reported even when it belongs to another context.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise GeneratorError(f"pairs file {self.path} does not exist")
        self.description = f"jsonl:{self.path}"

    def generate(self, context: str, n: int, seed: int) -> list[QAPair]:
        """All pairs for `context` in file order (`n` and `seed` do not apply to a fixed file)."""
        rows = read_pairs_file(self.path)
        pairs = [pair for row_context, pair in rows if row_context is None or row_context.strip() == context.strip()]
        if not pairs:
            raise GeneratorError(f"{self.path}: none of its {len(rows)} pairs is for this context "
                                 f"(their 'context' field must equal it): {context[:80]!r}")
        return pairs


def read_pairs_file(path: Path) -> list[tuple[str | None, QAPair]]:
    """Every (context or None, pair) of a JSONL pairs file, with errors naming the file and line."""
    rows: list[tuple[str | None, QAPair]] = []
    for lineno, row in read_jsonl(path, GeneratorError):
        for key in ("question", "answer"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise GeneratorError(f"{path}:{lineno}: missing or empty string field {key!r}")
        context = row.get("context")
        if context is not None and not isinstance(context, str):
            raise GeneratorError(f"{path}:{lineno}: field 'context' must be a string")
        rows.append((context, QAPair(row["question"].strip(), row["answer"].strip())))
    if not rows:
        raise GeneratorError(f"pairs file {path} is empty")
    return rows
