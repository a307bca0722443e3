"""Seconds per usable pair of the local pair generator, by batch size, completion length and path.

    OMP_NUM_THREADS=1 PYTHONPATH=. python scripts/generation_sweep.py --pairs 20 > sweep.jsonl

Runs `LocalGenerator` on the bench's context (a SQuAD paragraph) with the filter SELF-PARAM uses by
default (answers re-written by the teacher) and prints one JSON line per setting; `cached` is the
default path (prompt encoded once, stops mid-round), `plain` recomputes the prompt for every sample.
`cpu_seconds` is this process's CPU time: with one thread it is the compute a setting needs, and unlike
wall seconds it hardly moves when other jobs share the cores.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from selfparam.bench import bench_context
from selfparam.lm import load_lm
from selfparam.targets import LocalGenerator, TargetConfig, pair_filter, select_pairs

SETTINGS = [("cached", 16, 160), ("plain", 16, 160), ("cached", 8, 160), ("cached", 32, 160), ("cached", 16, 96)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--pairs", type=int, default=20, help="usable pairs each setting must reach")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lm = load_lm(args.model, device="cpu", dtype="auto")
    context = bench_context()["context"]
    filter_config = pair_filter(TargetConfig())
    for path, batch, length in SETTINGS:
        generator = LocalGenerator(lm, batch_size=batch, max_new_tokens=length, filter_config=filter_config,
                                   reuse_prompt_cache=path == "cached")
        t0, c0 = time.perf_counter(), time.process_time()
        raw = generator.generate(context, args.pairs, args.seed)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        usable = len(select_pairs(raw, context, filter_config)[0])
        print(json.dumps({"path": path, "batch_size": batch, "max_new_tokens": length, "rounds": generator.rounds_used,
                          "raw_pairs": len(raw), "usable_pairs": usable, "seconds": round(seconds, 1),
                          "cpu_seconds": round(cpu_seconds, 1),
                          "cpu_seconds_per_usable_pair": round(cpu_seconds / max(usable, 1), 2),
                          "compute_dtype": str(lm.compute_dtype).removeprefix("torch."),
                          "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
