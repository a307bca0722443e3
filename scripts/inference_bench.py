"""Seconds of greedy answering and teacher-forced scoring with a frozen model (as every model is after its
first update), with autocast's weight casts kept for the whole call (`lm.cached_casts`, the default) against
cast again at every use (as before), in one process, alternately.

    OMP_NUM_THREADS=2 PYTHONPATH=. python scripts/inference_bench.py --repeats 2

Asks the first `--questions` questions of SQuAD dev articles 17-32 in groups of 3 (as the evaluation asks a
context's questions), `--max-new-tokens` each, then scores each gold answer's log-probability in one batched
call. Prints one JSON line per run and a last line with the median seconds each way and the speedups
(`speedup_answer`, `speedup_logprob`: uncached seconds / cached seconds), and whether the two ways gave the
same answers and log-probabilities (they must: only the repeated casts go). Where the model computes in its
weights' dtype (fp32 here, or no native bf16) there is no autocast and nothing to compare.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

import torch

from selfparam import lm as lm_module
from selfparam.generation import generate, target_logprob
from selfparam.lm import load_lm
from selfparam.prompts import answer_prompt

SQUAD = Path("../shared/data/squad_v1.1/dev-v1.1-public.json")


def questions(path: Path, n: int) -> list[tuple[str, str]]:
    """(question, first gold answer) of the first `n` questions of articles 17-32, three per paragraph."""
    articles = json.loads(path.read_text(encoding="utf-8"))["data"][16:32]
    out = [(qa["question"], qa["answers"][0]["text"]) for a in articles for p in a["paragraphs"]
           for qa in p["qas"][:3]]
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--data", type=Path, default=SQUAD)
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    lm = load_lm(args.model, device="cpu", dtype="auto")
    if not lm.autocasts:
        raise SystemExit(f"{lm.name} computes in its weights' dtype here ({lm.compute_dtype}): no casts to keep")
    lm.model.requires_grad_(False)
    qa = questions(args.data, args.questions)
    prompts = [answer_prompt(lm.tokenizer, q) for q, _ in qa]
    golds = [a for _, a in qa]
    seconds: dict[str, dict[str, list[float]]] = {w: {"answer": [], "logprob": []} for w in ("cached", "uncached")}
    outputs: dict[str, tuple[list[str], list[float]]] = {}
    for _ in range(args.repeats):
        for way in ("uncached", "cached"):
            keep = lm_module.cached_casts
            if way == "uncached":
                lm_module.cached_casts = lambda model, enabled=True: contextlib.nullcontext()
            try:
                t0 = time.perf_counter()
                answers = [a for i in range(0, len(prompts), 3)
                           for a in generate(lm, prompts[i:i + 3], max_new_tokens=args.max_new_tokens)]
                t1 = time.perf_counter()
                logprobs = target_logprob(lm, prompts, golds)
                t2 = time.perf_counter()
            finally:
                lm_module.cached_casts = keep
            seconds[way]["answer"].append(t1 - t0)
            seconds[way]["logprob"].append(t2 - t1)
            outputs[way] = (answers, logprobs)
            print(json.dumps({"way": way, "answer_seconds": round(t1 - t0, 2), "logprob_seconds": round(t2 - t1, 2),
                              "seconds_per_answer": round((t1 - t0) / len(prompts), 3)}), flush=True)
    med = {w: {k: statistics.median(v) for k, v in s.items()} for w, s in seconds.items()}
    print(json.dumps({
        "model": lm.name, "compute_dtype": str(lm.compute_dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(), "questions": len(prompts), "max_new_tokens": args.max_new_tokens,
        **{f"{w}_{k}_seconds": round(v, 2) for w, m in med.items() for k, v in m.items()},
        "speedup_answer": round(med["uncached"]["answer"] / med["cached"]["answer"], 2),
        "speedup_logprob": round(med["uncached"]["logprob"] / med["cached"]["logprob"], 2),
        "same_answers": outputs["cached"][0] == outputs["uncached"][0],
        "max_logprob_difference": max(abs(a - b) for a, b in zip(outputs["cached"][1], outputs["uncached"][1])),
    }))


if __name__ == "__main__":
    main()
