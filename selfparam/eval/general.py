"""General ability before and after injection: MMLU accuracy and WikiText-2 perplexity.

Injection should change what a model knows about the injected contexts and nothing else; these two
numbers, measured on the base model and again on each method's model after its last injection, show
whether it did (the SELF-PARAM paper's appendix B.2 sees general ability collapse without unrelated
regularization sentences).

MMLU is scored the usual lm-eval way: the log-likelihood of the four answer letters as the next token
after "Answer:", the best one is the prediction. Perplexity is exp(mean token NLL) over non-overlapping
windows of the start of the text, up to a token budget.
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..lm import LM, inference_mode
from .stats import RESAMPLES, SEED, paired_difference, perplexity_change

LETTERS = ("A", "B", "C", "D")
PPL_BLOCK = 64  # scored tokens per block: the unit a perplexity interval resamples (64 blocks in 4,096 tokens)
DEFAULT_SUBJECTS = ("high_school_geography", "high_school_us_history", "college_biology",
                    "miscellaneous", "nutrition")


@dataclass
class GeneralConfig:
    """Which general-ability checks to run and how big they are."""

    mmlu_dir: Path | None = field(default=None, metadata={"help": "folder with MMLU test/ and dev/ CSVs"})
    subjects: tuple[str, ...] = field(default=DEFAULT_SUBJECTS, metadata={"help": "MMLU subjects to use"})
    per_subject: int = field(default=20, metadata={"help": "questions drawn per subject (seeded)"})
    shots: int = field(default=0, metadata={"help": "dev examples shown before each question"})
    wikitext: Path | None = field(default=None, metadata={"help": "raw WikiText-2 text for perplexity"})
    ppl_tokens: int = field(default=4096, metadata={"help": "token budget for perplexity"})
    ppl_window: int = field(default=512, metadata={"help": "tokens per perplexity window"})
    seed: int = 0

    def __post_init__(self):
        if self.per_subject < 1 or self.shots < 0 or self.ppl_tokens < 2 or self.ppl_window < 2:
            raise ValueError(f"general: per_subject >= 1, shots >= 0, ppl_tokens and ppl_window >= 2 required, "
                             f"got {self.per_subject}, {self.shots}, {self.ppl_tokens}, {self.ppl_window}")
        if self.mmlu_dir is None and self.wikitext is None:
            raise ValueError("general: give an MMLU folder, a WikiText file, or both")


@dataclass(frozen=True)
class MCQuestion:
    subject: str
    question: str
    choices: tuple[str, str, str, str]
    answer: int  # 0-based index into choices


def load_mmlu(folder: Path, subject: str, split: str = "test") -> list[MCQuestion]:
    """One subject's questions from `<folder>/<split>/<subject>_<split>.csv` (header question,choice0..3,answer)."""
    path = Path(folder) / split / f"{subject}_{split}.csv"
    if not path.is_file():
        known = sorted(p.name[: -len(f"_{split}.csv")] for p in (Path(folder) / split).glob(f"*_{split}.csv"))
        raise ValueError(f"MMLU subject {subject!r} not found at {path}; known subjects: {', '.join(known) or 'none'}")
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = []
    for n, row in enumerate(rows, 2):
        try:
            choices = tuple(row[f"choice{i}"] for i in range(4))
            answer = int(row["answer"])
        except (KeyError, ValueError, TypeError):
            raise ValueError(f"{path}:{n}: expected columns question,choice0..choice3,answer (0-3)") from None
        if not 0 <= answer <= 3:
            raise ValueError(f"{path}:{n}: answer {answer} is not in 0..3")
        out.append(MCQuestion(subject, row["question"], choices, answer))  # type: ignore[arg-type]
    return out


def mmlu_prompt(q: MCQuestion, shots: Sequence[MCQuestion] = ()) -> str:
    """The standard MMLU prompt (Hendrycks et al.), with solved dev examples first when `shots` are given."""
    subject = q.subject.replace("_", " ")

    def block(item: MCQuestion, solved: bool) -> str:
        lines = [item.question.strip()] + [f"{letter}. {c}" for letter, c in zip(LETTERS, item.choices)]
        return "\n".join(lines) + "\nAnswer:" + (f" {LETTERS[item.answer]}\n\n" if solved else "")

    head = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
    return head + "".join(block(s, True) for s in shots) + block(q, False)


def letter_token_ids(lm: LM) -> list[int]:
    """The token id of " A" .. " D" (the letter as it follows "Answer:"), one token each."""
    ids = []
    for letter in LETTERS:
        tokens = lm.tokenizer(f" {letter}", add_special_tokens=False)["input_ids"]
        ids.append(tokens[-1])  # a tokenizer that splits the space off still ends with the letter
    if len(set(ids)) != 4:
        raise ValueError(f"the tokenizer does not give the four answer letters distinct tokens: {ids}")
    return ids


def mmlu_hits(lm: LM, folder: Path, subjects: Sequence[str], per_subject: int = 20, shots: int = 0,
              seed: int = 0, batch_size: int = 8) -> dict[str, list[float]]:
    """Per subject, 1.0 or 0.0 for each of its `per_subject` seeded questions (in the order drawn): whether the
    best of the four letters was the answer. The same questions for the same arguments, so two models' hits
    pair up question by question (`general_change`)."""
    letters = letter_token_ids(lm)
    tok = lm.tokenizer
    out: dict[str, list[float]] = {}
    for subject in subjects:
        questions = load_mmlu(folder, subject, "test")
        drawn = random.Random(seed).sample(questions, min(per_subject, len(questions)))
        examples = load_mmlu(folder, subject, "dev")[:shots] if shots else []
        prompts = [mmlu_prompt(q, examples) for q in drawn]
        hits: list[float] = []
        with inference_mode(lm):
            for start in range(0, len(prompts), batch_size):
                batch = prompts[start:start + batch_size]
                enc = tok(batch, return_tensors="pt", padding=True).to(lm.device)  # left padding: last = next
                # positions count real tokens only, so a left-padded row reads as if unpadded
                positions = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
                logits = lm.model(**enc, position_ids=positions).logits[:, -1, :]  # (B, V) next-token logits
                predicted = logits[:, letters].argmax(-1).tolist()
                hits += [float(p == q.answer) for p, q in zip(predicted, drawn[start:start + batch_size])]
        out[subject] = hits
    return out


def mmlu_accuracy(lm: LM, folder: Path, subjects: Sequence[str], per_subject: int = 20, shots: int = 0,
                  seed: int = 0, batch_size: int = 8) -> dict[str, float]:
    """Accuracy per subject and overall (`"all"`, over questions) on `per_subject` seeded questions each."""
    hits = mmlu_hits(lm, folder, subjects, per_subject, shots, seed, batch_size)
    return {**{s: _mean(h) for s, h in hits.items()}, "all": _mean(_every(hits, subjects))}


def _every(hits: dict[str, list[float]], subjects: Sequence[str]) -> list[float]:
    """All subjects' hits in one list, subject by subject: the order `mmlu_hits` pairs two models by."""
    return [h for subject in subjects for h in hits[subject]]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def nll_blocks(lm: LM, text: str, max_tokens: int = 4096, window: int = 512,
               block: int = PPL_BLOCK) -> tuple[list[float], list[int]]:
    """The summed NLL and the number of scored tokens of each block of `block` consecutive scored tokens, over
    the first `max_tokens` tokens of `text` read in non-overlapping windows of `window` (a window's blocks
    start at its first scored token; its last block may be shorter). The blocks are the same for the same text,
    tokenizer and arguments, so two models' perplexities pair up block by block (`general_change`)."""
    # tokenize only a prefix that surely holds the budget (no tokenizer averages > 12 chars per token)
    prefix = text[: max_tokens * 12]
    ids = lm.tokenizer(prefix, add_special_tokens=False, return_tensors="pt")["input_ids"][0][:max_tokens]
    window = min(window, lm.max_length)
    if len(ids) < 2:
        raise ValueError("perplexity: the text has fewer than 2 tokens")
    if block < 1:
        raise ValueError(f"perplexity: block must be >= 1 token, got {block}")
    sums: list[float] = []
    counts: list[int] = []
    with inference_mode(lm):
        for start in range(0, len(ids), window):
            chunk = ids[start:start + window].unsqueeze(0).to(lm.device)  # (1, T)
            if chunk.shape[1] < 2:
                break
            logits = lm.model(input_ids=chunk).logits.float()  # (1, T, V)
            nll = torch.nn.functional.cross_entropy(logits[0, :-1], chunk[0, 1:], reduction="none")  # (T-1,)
            pieces = nll.split(block)
            sums += torch.stack([p.sum() for p in pieces]).tolist()  # one transfer per window
            counts += [p.numel() for p in pieces]
    return sums, counts


def _perplexity(sums: Sequence[float], counts: Sequence[int]) -> float:
    return math.exp(sum(sums) / sum(counts))


def perplexity(lm: LM, text: str, max_tokens: int = 4096, window: int = 512) -> float:
    """exp(mean NLL) of the first `max_tokens` tokens of `text`, in non-overlapping windows of `window`."""
    return _perplexity(*nll_blocks(lm, text, max_tokens, window))


def _wikitext(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"WikiText file {path} does not exist")
    return "\n".join(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def wikitext_perplexity(lm: LM, path: Path, max_tokens: int = 4096, window: int = 512) -> float:
    """Perplexity on a WikiText-2 raw file (lines joined as they stand)."""
    return perplexity(lm, _wikitext(path), max_tokens, window)


def general_ability(lm: LM, config: GeneralConfig) -> dict[str, Any]:
    """`mmlu_acc` (+ per subject) and/or `wikitext_ppl` of `lm`'s current weights, with what they were computed
    from for paired comparisons (`general_change`): `mmlu_hits` (each question right or not, subject by subject)
    and `wikitext_block_nll` / `wikitext_block_tokens` (per block of `PPL_BLOCK` scored tokens)."""
    out: dict[str, Any] = {}
    if config.mmlu_dir is not None:
        hits = mmlu_hits(lm, config.mmlu_dir, config.subjects, config.per_subject, config.shots, config.seed)
        every = _every(hits, config.subjects)
        out["mmlu_acc"] = _mean(every)
        out.update({f"mmlu/{s}": _mean(h) for s, h in hits.items()})
        out["mmlu_hits"] = every
    if config.wikitext is not None:
        sums, counts = nll_blocks(lm, _wikitext(config.wikitext), config.ppl_tokens, config.ppl_window)
        out["wikitext_ppl"] = _perplexity(sums, counts)
        out["wikitext_block_nll"], out["wikitext_block_tokens"] = sums, counts
    return out


def general_change(before: dict[str, Any], after: dict[str, Any], resamples: int = RESAMPLES,
                   seed: int = SEED) -> dict[str, Any]:
    """How general ability moved from `before` (e.g. the base model) to `after`, each figure with a paired 95%
    bootstrap interval: `wikitext_ppl_change` (relative: 0.05 = 5% higher perplexity; the WikiText-2 blocks
    resampled together) and `mmlu_change` (accuracy after minus before; the MMLU questions resampled together).
    A figure is left out where either side lacks its per-item data (runs recorded before 2026-12-07) or the
    two were measured on other items."""
    out: dict[str, Any] = {}
    a, b = after.get("mmlu_hits"), before.get("mmlu_hits")
    if a and b and len(a) == len(b):
        est = paired_difference(a, b, resamples, seed)
        out["mmlu_change"], out["mmlu_change_ci"] = est.value, est.ci
    na, ta = after.get("wikitext_block_nll"), after.get("wikitext_block_tokens")
    nb, tb = before.get("wikitext_block_nll"), before.get("wikitext_block_tokens")
    if na and nb and ta == tb and len(na) == len(nb):
        est = perplexity_change(na, nb, ta, resamples, seed)
        out["wikitext_ppl_change"], out["wikitext_ppl_change_ci"] = est.value, est.ci
    return out
