"""Training seconds of one update two ways, on the same examples in one process: packed sequences against
left-padded batches (`--compare packing`, the default), or the paper's LoRA dropout (0.1) against none
(`--compare dropout`).

    OMP_NUM_THREADS=2 PYTHONPATH=. python scripts/packing_bench.py \
        --targets docs/results/targets-squad-report/targets-bd102b384f62/<digest>.json

Builds SELF-PARAM's examples for one cached target set (its pairs asked without the context, its unrelated
sentences; the teacher reads each pair with the context in view, the unrelated sentences alone), runs
the teacher once, then trains the same update `--repeats` times each way, alternately, from the same weights
and seed. Prints one JSON line per run and a last line with the median seconds each way and the speedup of the
second way (`speedup_packed`: padded seconds / packed seconds; `speedup_dropout-0`), for packing also the
tokens each way computes. `cpu_seconds`
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


# Each comparison: two variants of the same update, (name, packed, LoRA dropout), the reference first.
# Packing is compared with the paper's LoRA dropout, as when it was first measured (masks drawn per row).
PAPER_DROPOUT = 0.1
COMPARISONS = {
    "packing": (("padded", False, PAPER_DROPOUT), ("packed", True, PAPER_DROPOUT)),
    "dropout": (("dropout-0.1", True, PAPER_DROPOUT), ("dropout-0", True, 0.0)),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=Path, required=True, help="a cached target set (JSON)")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compare", choices=sorted(COMPARISONS), default="packing",
                        help="packing: padded against packed batches; dropout: the paper's LoRA dropout (0.1) "
                             "against none, the default (both packed), which shows what drawing the masks costs")
    args = parser.parse_args()
    lm = load_lm(args.model, device="cpu", dtype="auto")
    ts = load_target_set(args.targets)
    train = TrainConfig(epochs=args.epochs)
    encoded = encode_share(lm, distillation_examples(lm.tokenizer, ts, "base"))
    teachers = teacher_pass(lm, encoded, train.top_k, batch_size=train.batch_size, progress=False)
    if not packs_sequences(lm):
        raise SystemExit(f"{lm.name} does not keep packed sequences apart: nothing to compare")
    start = copy.deepcopy(lm.model)
    variants = COMPARISONS[args.compare]
    seconds: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(args.repeats):
        for name, packed, dropout in variants:
            lm.model = copy.deepcopy(start)
            use_packing(lm, packed)
            cpu0, t0 = time.process_time(), time.perf_counter()
            _, stats = train_and_merge(lm, encoded, teachers, AdapterConfig(dropout=dropout), train, progress=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            seconds[name].append(stats.seconds_train)
            print(json.dumps({"variant": name, "packed": packed, "lora_dropout": dropout, "steps": stats.steps,
                              "seconds_train": round(stats.seconds_train, 2), "seconds_per_step":
                              round(stats.seconds_train / stats.steps, 3), "wall_seconds": round(wall, 2),
                              "cpu_seconds": round(cpu, 2), "first_loss": round(stats.first_loss, 4),
                              "last_loss": round(stats.last_loss, 4)}), flush=True)
    (reference, *_), (other, *_) = variants
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    summary = {"model": lm.name, "compute_dtype": str(lm.compute_dtype).removeprefix("torch."),
               "threads": torch.get_num_threads(), "examples": len(encoded), "epochs": args.epochs,
               **{f"{name}_seconds_train": round(m, 2) for name, m in medians.items()},
               f"speedup_{other}": round(medians[reference] / medians[other], 2)}
    if args.compare == "packing":
        lengths = [len(e.student_ids) for e in encoded]
        summary.update({"pack_width": PACK_WIDTH, "real_tokens": sum(lengths) * args.epochs,
                        "padded_tokens": batch_tokens(lengths, train.batch_size, args.epochs, train.seed, False),
                        "packed_tokens": batch_tokens(lengths, train.batch_size, args.epochs, train.seed, True)})
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
