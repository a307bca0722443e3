"""The three pair generators: local model (tiny random model), OpenAI-compatible HTTP (mocked), JSONL file."""

from __future__ import annotations

import json

import httpx
import pytest

from selfparam.generation import Completion
from selfparam.targets import generators
from selfparam.targets.generators import JsonlGenerator, LocalGenerator, OpenAIGenerator
from selfparam.targets.qa import RESPONSE_PREFIX
from selfparam.targets.types import GeneratorError, QAPair
from selfparam.testing import tiny_lm

CTX = "Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019. Its best seller is a cardamom bun."
GOOD = ("- Question: Who opened the Blue Heron bakery? Answer: Mara Lindqvist.\n"
        "- Question: When did the Blue Heron bakery open? Answer: In 2019.\n"
        "- Question: What is the best seller of the bakery? Answer: A cardamom bun.")


@pytest.fixture
def tiny_long():
    """The tiny model with room for the ~1,000-byte generation prompt."""
    return tiny_lm(seed=0, max_position_embeddings=2048)


def test_local_generator_samples_rounds_on_the_tiny_model(tiny_long):
    tiny = tiny_long
    gen = LocalGenerator(tiny, batch_size=2, max_new_tokens=8, max_rounds=2)
    assert gen.prompt(CTX).endswith(RESPONSE_PREFIX) and "<|im_start|>assistant" in gen.prompt(CTX)
    raw = gen.generate(CTX, n=5, seed=0)
    assert gen.rounds_used == 2  # a random model writes no usable pairs, so every round runs
    # whatever was parsed is a whole pair: a question and an answer, neither empty
    assert all(isinstance(p, QAPair) and p.question.strip() and p.answer.strip() for p in raw)


def test_local_generator_plain_path_stops_when_enough_pairs(tiny_long, monkeypatch):
    tiny = tiny_long
    calls = []

    def fake_generate(lm, prompts, max_new_tokens, batch_size, do_sample, temperature, top_p, seed):
        calls.append(seed)
        return [GOOD.removeprefix(RESPONSE_PREFIX) + "\n"] * len(prompts)

    monkeypatch.setattr("selfparam.targets.generators.lm_generate", fake_generate)
    gen = LocalGenerator(tiny, batch_size=3, max_rounds=5, max_new_tokens=1000, reuse_prompt_cache=False)
    raw = gen.generate(CTX, n=3, seed=7)
    assert calls == [7000] and gen.rounds_used == 1 and len(raw) == 9
    gen.generate(CTX, n=4, seed=1)  # only 3 unique pairs exist: runs to the cap, with a new seed each round
    assert calls[1:] == [1000, 1001, 1002, 1003, 1004]


def test_local_generator_cached_path_encodes_the_prompt_once_and_stops_when_enough(tiny_long, monkeypatch):
    tiny = tiny_long
    encoded, calls = [], []
    real_encode = generators.encode_prompt

    def counting_encode(lm, prompt):
        encoded.append(prompt)
        return real_encode(lm, prompt)

    def fake_sample(lm, prompt, n, max_new_tokens, temperature, top_p, seed, enough, retire):
        assert retire is None  # off by default
        calls.append((seed, enough([])))
        text = GOOD.removeprefix(RESPONSE_PREFIX) + "\n"
        return [Completion(text, (), ended=True)] * n

    monkeypatch.setattr(generators, "encode_prompt", counting_encode)
    monkeypatch.setattr(generators, "sample_continuations", fake_sample)
    gen = LocalGenerator(tiny, batch_size=3, max_rounds=5, max_new_tokens=100)
    raw = gen.generate(CTX, n=3, seed=7)
    assert calls == [(7000, False)] and gen.rounds_used == 1 and len(raw) == 9 and encoded == [gen.prompt(CTX)]
    gen.generate(CTX, n=4, seed=1)  # only 3 unique pairs exist: runs to the cap, the prompt encoded once
    assert [seed for seed, _ in calls[1:]] == [1000, 1001, 1002, 1003, 1004] and len(encoded) == 2
    assert [done for _, done in calls[2:]] == [False] * 4  # `enough` sees earlier rounds' pairs: 3 < 4


def test_local_generator_progress_bar_counts_usable_pairs(tiny_long, monkeypatch, capsys):
    def fake_sample(lm, prompt, n, max_new_tokens, temperature, top_p, seed, enough, retire):
        return [Completion(GOOD.removeprefix(RESPONSE_PREFIX) + "\n", (), ended=True)] * n

    monkeypatch.setattr(generators, "sample_continuations", fake_sample)
    LocalGenerator(tiny_long, batch_size=2, max_rounds=2, max_new_tokens=100).generate(CTX, n=3, seed=0)
    assert capsys.readouterr().err == ""  # quiet by default: a library call prints nothing
    LocalGenerator(tiny_long, batch_size=2, max_rounds=2, max_new_tokens=100, progress=True).generate(CTX, n=4, seed=0)
    bar = capsys.readouterr().err
    assert "pairs" in bar and "3/4" in bar and "round=2" in bar  # 3 unique usable pairs of 4, after two rounds

def test_local_generator_retires_rows_that_drifted(tiny_long):
    gen = LocalGenerator(tiny_long, retire_after=2)
    retire = gen._retire(CTX)
    copies = (" What feature attracts visitors every year? Answer: The unique sea-glass beach.\n"
              "- Question: What does the town's annual festival celebrate? Answer: Sea glass.\n")
    good = GOOD.removeprefix(RESPONSE_PREFIX) + "\n"
    assert not retire(good) and not retire(copies[:60])  # usable pairs; an unfinished line is not judged
    assert retire(copies) and retire(good + "- Question:" + copies)  # the last two finished pairs are copies
    assert not retire(copies + "- Question: Who opened the Blue Heron bakery? Answer: Mara.\n")  # it came back
    assert retire(good + "Context: another town.\n")  # a new example starts: nothing after it is read
    assert "retire_after=2" in gen.description and "retire_after" not in LocalGenerator(tiny_long).description
    with pytest.raises(ValueError, match="retire_after"):
        LocalGenerator(tiny_long, retire_after=-1)
    with pytest.raises(ValueError, match="reuse_prompt_cache"):
        LocalGenerator(tiny_long, retire_after=2, reuse_prompt_cache=False)


def test_local_generator_with_retirement_runs_on_the_tiny_model(tiny_long, monkeypatch):
    seen = []
    real = generators.sample_continuations

    def spy(*args, retire, **kwargs):
        seen.append(retire)
        return real(*args, retire=retire, **kwargs)

    monkeypatch.setattr(generators, "sample_continuations", spy)
    gen = LocalGenerator(tiny_long, batch_size=3, max_new_tokens=16, max_rounds=1, retire_after=1)
    raw = gen.generate(CTX, n=5, seed=0)
    assert len(seen) == 1 and callable(seen[0]) and gen.rounds_used == 1
    assert all(p.question.strip() and p.answer.strip() for p in raw)


def test_local_generator_drops_the_last_pair_of_a_cut_completion(tiny_long):
    gen = LocalGenerator(tiny_long)
    text = GOOD.removeprefix(RESPONSE_PREFIX)
    assert len(gen._pairs(Completion(text, (), ended=True))) == 3
    assert len(gen._pairs(Completion(text, (), ended=False))) == 2


def test_local_generator_cached_sampling_is_reproducible(tiny_long):
    gen = LocalGenerator(tiny_long, batch_size=2, max_new_tokens=12, max_rounds=2, temperature=1.0)
    first = gen.generate(CTX, n=5, seed=3)
    assert gen.rounds_used == 2 and gen.generate(CTX, n=5, seed=3) == first


def test_local_generator_rejects_bad_settings_and_overlong_context(tiny):
    with pytest.raises(ValueError, match="temperature"):
        LocalGenerator(tiny, temperature=0)
    with pytest.raises(GeneratorError, match="context window"):
        LocalGenerator(tiny, max_new_tokens=8).generate("word " * 200, n=5, seed=0)  # tiny model: 512 positions


def _completion(text: str) -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"message": {"role": "assistant", "content": text}}]})


def test_openai_generator_posts_a_chat_completion_and_parses(monkeypatch):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization"), json.loads(request.content)))
        return _completion(GOOD)

    monkeypatch.setenv("MY_KEY", "sk-test")
    gen = OpenAIGenerator("http://llm.local/v1/", "qwen", api_key_env="MY_KEY", transport=httpx.MockTransport(handler))
    raw = gen.generate(CTX, n=3, seed=2)
    assert raw[0] == QAPair("Who opened the Blue Heron bakery?", "Mara Lindqvist.") and len(raw) == 3
    url, auth, body = seen[0]
    assert url == "http://llm.local/v1/chat/completions" and auth == "Bearer sk-test" and len(seen) == 1
    assert body["model"] == "qwen" and body["seed"] == 2000 and CTX in body["messages"][0]["content"]
    assert gen.description == "openai:qwen@http://llm.local/v1"


@pytest.mark.parametrize("handler,match", [
    (lambda r: httpx.Response(500, text="boom"), "HTTP 500: boom"),
    (lambda r: httpx.Response(401, text="no key"), r"HTTP 401 \(set the API key in \$OPENAI_API_KEY\)"),
    (lambda r: httpx.Response(200, text="<html>not json"), "not an OpenAI chat completion"),
    (lambda r: httpx.Response(200, json={"choices": []}), "not an OpenAI chat completion"),
    (lambda r: _completion("I cannot help with that."), "no question-answer pairs"),
])
def test_openai_generator_errors_are_actionable(handler, match, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    gen = OpenAIGenerator("http://llm.local/v1", "m", transport=httpx.MockTransport(handler))
    with pytest.raises(GeneratorError, match=match):
        gen.generate(CTX, n=3, seed=0)


@pytest.mark.parametrize("exc,match", [(httpx.ConnectError("refused"), "could not reach .* is the server running"),
                                       (httpx.ReadTimeout("slow"), "did not answer within 5 s")])
def test_openai_generator_server_down_or_slow(exc, match):
    def handler(request):
        raise exc

    gen = OpenAIGenerator("http://127.0.0.1:9/v1", "m", timeout=5, transport=httpx.MockTransport(handler))
    with pytest.raises(GeneratorError, match=match):
        gen.generate(CTX, n=3, seed=0)


def test_openai_generator_validates_its_arguments():
    with pytest.raises(ValueError, match="base_url"):
        OpenAIGenerator("llm.local/v1", "m")
    with pytest.raises(ValueError, match="model"):
        OpenAIGenerator("http://llm.local/v1", "")


def test_jsonl_generator_reads_pairs_and_picks_the_context(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"question": "Who opened it?", "answer": "Mara", "context": CTX},
            {"question": "Other?", "answer": "No", "context": "another context"},
            {"question": "Shared?", "answer": "Yes"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    gen = JsonlGenerator(path)
    assert gen.generate(CTX, n=50, seed=0) == [QAPair("Who opened it?", "Mara"), QAPair("Shared?", "Yes")]
    assert gen.generate("another context", n=50, seed=0)[0] == QAPair("Other?", "No")


@pytest.mark.parametrize("content,match", [
    (b'{"question": "Q?", "answer": "A"}\n{"question": "Q2?", "answer": \n', r"pairs.jsonl:2: not valid JSON"),
    (b'{"question": "Q?"}\n', r"pairs.jsonl:1: missing or empty string field 'answer'"),
    (b'["Q?", "A"]\n', r"pairs.jsonl:1: expected a JSON object"),
    (b'{"question": "Q?", "answer": "A"}\n{"question": "caf\xe9", "answer": "A"}\n', r"pairs.jsonl:2: not valid UTF-8"),
    (b"\n\n", "is empty"),
    (b'{"question": "Q?", "answer": "A", "context": "elsewhere"}\n', "none of its 1 pairs is for this context"),
])
def test_jsonl_generator_errors_name_file_and_line(tmp_path, content, match):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(content)
    with pytest.raises(GeneratorError, match=match):
        JsonlGenerator(path).generate(CTX, n=5, seed=0)


def test_jsonl_generator_missing_file(tmp_path):
    with pytest.raises(GeneratorError, match="does not exist"):
        JsonlGenerator(tmp_path / "nope.jsonl")


def test_a_method_switched_to_quiet_after_it_is_built_generates_without_a_bar(tiny_long, monkeypatch, capsys):
    from selfparam.methods.selfparam import SelfParam, SelfParamConfig, TargetConfig

    def fake_sample(lm, prompt, n, max_new_tokens, temperature, top_p, seed, enough, retire):
        return [Completion(GOOD.removeprefix(RESPONSE_PREFIX) + "\n", (), ended=True)] * n

    monkeypatch.setattr(generators, "sample_continuations", fake_sample)
    config = SelfParamConfig(targets=TargetConfig(n_pairs=3, questions="paper"))  # the local generator's bar
    quiet = SelfParam(tiny_long, config)
    quiet.progress = False  # as the server does: its jobs report their stage instead
    assert len(quiet.build_targets(CTX).pairs) == 3 and capsys.readouterr().err == ""
    assert len(SelfParam(tiny_long, config).build_targets(CTX).pairs) == 3  # progress on by default
    assert "pairs" in capsys.readouterr().err
