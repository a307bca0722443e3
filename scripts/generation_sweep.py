"""Seconds per usable pair of the local pair generator, by batch size, completion length, path and row retirement.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/generation_sweep.py --pairs 20 > sweep.jsonl
    PYTHONPATH=. python scripts/generation_sweep.py --pairs 50 --settings cached:16:160:0,cached:32:160:2

Runs `LocalGenerator` on the bench's context (a SQuAD paragraph) with the filter SELF-PARAM uses by
default (answers re-written by the teacher) and prints one JSON line per setting; `cached` is the
default path (prompt encoded once, stops mid-round), `plain` recomputes the prompt for every sample; a
setting is `path:completions:tokens:retire_after` (`LocalGenerator.retire_after`, 0 = off).
`cpu_seconds` is this process's CPU time: with one thread it is the compute a setting needs, and unlike
wall seconds it hardly moves when other jobs share the cores.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

from selfparam.bench import bench_context
from selfparam.eval.loaders import load_squad, parse_articles, sample_contexts
from selfparam.lm import load_lm
from selfparam.targets import LocalGenerator, TargetConfig, pair_filter, select_pairs

SETTINGS = "cached:16:160:0,plain:16:160:0,cached:8:160:0,cached:32:160:0,cached:16:96:0"


def parse_settings(text: str) -> list[tuple[str, int, int, int]]:
    settings = []
    for item in text.split(","):
        path, batch, length, retire = item.split(":")
        if path not in ("cached", "plain"):
            raise SystemExit(f"--settings: {item!r}: the path is cached or plain")
        settings.append((path, int(batch), int(length), int(retire)))
    return settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=20, help="usable pairs each setting must reach")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--settings", default=SETTINGS, help="comma list of path:completions:tokens:retire_after")
    parser.add_argument("--squad", type=Path, help="draw the contexts from this SQuAD file instead of the bench's")
    parser.add_argument("--articles", default="1-16", help="with --squad: the articles (the tuning split)")
    parser.add_argument("--n", type=int, default=3, help="with --squad: paragraphs drawn with --seed")
    args = parser.parse_args()
    settings = parse_settings(args.settings)
    if args.squad:
        drawn = sample_contexts(load_squad(args.squad, parse_articles(args.articles)), args.n, args.seed, 1)
        contexts = [(item.context.id, item.context.text) for item in drawn]
    else:
        contexts = [("bench", bench_context()["context"])]
    lm = load_lm(args.model, device="cpu", dtype="auto")
    filter_config = pair_filter(TargetConfig())
    for (name, context), (path, batch, length, retire) in itertools.product(contexts, settings):
        generator = LocalGenerator(lm, batch_size=batch, max_new_tokens=length, filter_config=filter_config,
                                   reuse_prompt_cache=path == "cached", retire_after=retire)
        t0, c0 = time.perf_counter(), time.process_time()
        raw = generator.generate(context, args.pairs, args.seed)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        usable = len(select_pairs(raw, context, filter_config)[0])
        print(json.dumps({"context": name, "path": path, "batch_size": batch, "max_new_tokens": length,
                          "retire_after": retire, "rounds": generator.rounds_used,
                          "raw_pairs": len(raw), "usable_pairs": usable, "seconds": round(seconds, 1),
                          "cpu_seconds": round(cpu_seconds, 1),
                          "cpu_seconds_per_usable_pair": round(cpu_seconds / max(usable, 1), 2),
                          "compute_dtype": str(lm.compute_dtype).removeprefix("torch."),
                          "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
