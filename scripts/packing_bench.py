"""Training seconds with packed sequences against left-padded batches, on the same examples in one process.

    OMP_NUM_THREADS=2 PYTHONPATH=. python scripts/packing_bench.py \
        --targets docs/results/targets-squad-report/targets-bd102b384f62/<digest>.json

Builds SELF-PARAM's examples for one cached target set (its pairs asked without the context, its unrelated
sentences; the teacher reads each pair with the context in view, the unrelated sentences alone), runs
the teacher once, then trains the same update `--repeats` times each way, padded and packed alternately
(`use_packing`), from the same weights and seed. Prints one JSON line per run and a last line with the
tokens each way computes and `speedup_packed` (padded seconds / packed seconds, medians). `cpu_seconds`
is this process's CPU time, which other jobs on the cores move less than wall seconds.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from selfparam.lm import load_lm
from selfparam.targets.build import load_target_set
from selfparam.training import AdapterConfig, TrainConfig
from selfparam.training.batching import PACK_WIDTH, pack_rows, packs_sequences, use_packing
from selfparam.training.examples import distillation_examples
from selfparam.training.teacher import teacher_pass
from selfparam.training.trainer import encode_share, train_and_merge


def batch_tokens(lengths: list[int], batch_size: int, epochs: int, seed: int, packed: bool) -> int:
    """Tokens the model computes over an update: rows x width of every batch, in the trainer's order."""
    generator = torch.Generator().manual_seed(seed)
    total = 0
    for _ in range(epochs):
        order = torch.randperm(len(lengths), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            batch = [[0] * lengths[i] for i in order[start:start + batch_size]]
            total += pack_rows(batch, 0)[0]["input_ids"].numel() if packed else len(batch) * max(map(len, batch))
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=Path, required=True, help="a cached target set (JSON)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    lm = load_lm(args.model, device="cpu", dtype="auto")
    ts = load_target_set(args.targets)
    train = TrainConfig(epochs=args.epochs)
    encoded = encode_share(lm, distillation_examples(lm.tokenizer, ts, "base"))
    teachers = teacher_pass(lm, encoded, train.top_k, batch_size=train.batch_size, progress=False)
    if not packs_sequences(lm):
        raise SystemExit(f"{lm.name} does not keep packed sequences apart: nothing to compare")
    start = copy.deepcopy(lm.model)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for packed in (False, True):
            lm.model = copy.deepcopy(start)
            use_packing(lm, packed)
            cpu0, t0 = time.process_time(), time.perf_counter()
            _, stats = train_and_merge(lm, encoded, teachers, AdapterConfig(), train, progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            seconds[packed].append(stats.seconds_train)
            print(json.dumps({"packed": packed, "steps": stats.steps, "seconds_train": round(stats.seconds_train, 2),
                              "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
                              "first_loss": round(stats.first_loss, 4), "last_loss": round(stats.last_loss, 4)}),
                  flush=True)
    lengths = [len(e.student_ids) for e in encoded]
    padded_s, packed_s = statistics.median(seconds[False]), statistics.median(seconds[True])
    print(json.dumps({"model": lm.name, "compute_dtype": str(lm.compute_dtype).removeprefix("torch."),
                      "threads": torch.get_num_threads(), "examples": len(encoded), "epochs": args.epochs,
                      "pack_width": PACK_WIDTH, "real_tokens": sum(lengths) * args.epochs,
                      "padded_tokens": batch_tokens(lengths, train.batch_size, args.epochs, train.seed, False),
                      "packed_tokens": batch_tokens(lengths, train.batch_size, args.epochs, train.seed, True),
                      "padded_seconds_train": round(padded_s, 2), "packed_seconds_train": round(packed_s, 2),
                      "speedup_packed": round(padded_s / packed_s, 2)}))


if __name__ == "__main__":
    main()
