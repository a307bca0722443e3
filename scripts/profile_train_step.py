"""Where one training step's seconds go: `torch.profiler` on SELF-PARAM's training step, op by op.

    OMP_NUM_THREADS=2 PYTHONPATH=. python scripts/profile_train_step.py            # the embedded model, auto dtype
    OMP_NUM_THREADS=2 PYTHONPATH=. python scripts/profile_train_step.py --dtype fp32 --shapes

A batch shaped like SELF-PARAM's mix (a 128-token context chunk and three shorter pairs; random token ids, which
cost what real ones do) goes through the trainer's own step: the LoRA of the defaults, `token_losses` (the
loss on the real scored slots), backward, AdamW, with the frozen weights as `train_and_merge` keeps them
(`lm.frozen_linears_in`). Prints the seconds per step over `--steps` timed steps, then the profiler's table of
the ops with the most self CPU time over two more; `--shapes` also lists the heaviest input shapes of the top
ops, which is how the full-vocabulary spread of empty slots showed itself (docs/benchmarks.md, 2026-12-07).
The last line is one JSON object: model, compute_dtype, threads, tokens, scored, top_layers, seconds_per_step.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.profiler import ProfilerActivity, profile

from selfparam.lm import frozen_linears_in, load_lm
from selfparam.training import AdapterConfig
from selfparam.training.adapters import attach
from selfparam.training.examples import Encoded
from selfparam.training.losses import masked_mean
from selfparam.training.trainer import token_losses

SHAPE = [(128, 100), (60, 30), (45, 25), (30, 15)]
"""(tokens, scored tokens) of each sequence in the batch: a context chunk read and three question-answer pairs."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--dtype", default="auto", help="auto, fp32 or bf16")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after 2 to warm up)")
    parser.add_argument("--top", type=int, default=20, help="rows of the profiler's table")
    parser.add_argument("--shapes", action="store_true", help="also the heaviest input shapes of the top 3 ops")
    parser.add_argument("--copies", type=int, default=1, help="the batch's sequences this many times (a wider step)")
    parser.add_argument("--top-layers", type=int, default=0, help="LoRA on the top N layers only (adapter "
                        "top_layers; 0: every layer, the default)")
    args = parser.parse_args()

    lm = load_lm(args.model, dtype=args.dtype)
    generator = torch.Generator().manual_seed(0)
    vocab = int(lm.model.config.vocab_size)
    batch = [Encoded(torch.randint(100, vocab - 1, (n,), generator=generator).tolist(), None, k)
             for n, k in SHAPE * args.copies]
    # the defaults' LoRA (or on the top layers only), wrapping lm.model in place as training does
    model = attach(lm.model, AdapterConfig(top_layers=args.top_layers))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)

    def step() -> None:
        loss = masked_mean(*token_losses(model, lm, batch, None))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    with frozen_linears_in(lm.model, lm.compute_dtype, lm.autocasts):
        for _ in range(2):
            step()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        seconds = (time.perf_counter() - t0) / args.steps
        with profile(activities=[ProfilerActivity.CPU], record_shapes=args.shapes) as prof:
            for _ in range(2):
                step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    if args.shapes:
        top = [e.key for e in sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:3]]
        by_shape = prof.key_averages(group_by_input_shape=True)
        for name in top:
            rows = sorted((e for e in by_shape if e.key == name), key=lambda e: -e.self_cpu_time_total)[:4]
            for e in rows:
                print(f"{name}: {e.count} calls, {e.self_cpu_time_total / 2e3:.1f} ms per step, {e.input_shapes}")
    print(json.dumps({"model": lm.name, "compute_dtype": str(lm.compute_dtype).removeprefix("torch."),
                      "threads": torch.get_num_threads(), "tokens": args.copies * sum(n for n, _ in SHAPE),
                      "scored": args.copies * sum(k for _, k in SHAPE), "top_layers": args.top_layers,
                      "seconds_per_step": round(seconds, 3)}))


if __name__ == "__main__":
    main()
