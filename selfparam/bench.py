"""`selfparam bench`: where one injection's time goes, against the naive way of training it.

Ours: the teacher runs once per sentence (compact top-k kept), training batches sentences, runs under
bf16 autocast where the hardware has it, and computes output logits only on the scored span. The
naive reference trains the same examples for the same epochs the obvious way: batch size 1, fp32, the
teacher recomputed at every step, full-vocabulary logits and KL. Both start from the same weights and
seed, in the same process. The last line printed is one JSON object.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time

import torch
from rich.console import Console
from tqdm.auto import tqdm

from .lm import LM, load_lm
from .demo import demo_data
from .targets import TargetConfig, make_target_builder, reanswer
from .training.adapters import AdapterConfig, attach
from .training.examples import encode, distillation_examples
from .training.losses import kl_full
from .training.trainer import TrainConfig, run_update


def naive_train(lm: LM, examples, adapter: AdapterConfig, train: TrainConfig) -> float:
    """Seconds to train `examples` with batch size 1, fp32, the teacher re-run every step, full KL."""
    torch.manual_seed(train.seed)
    encoded = [encode(lm.tokenizer, e, lm.max_length) for e in examples]
    teacher_model = copy.deepcopy(lm.model).eval()
    model = attach(lm.model, adapter)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train.lr)
    generator = torch.Generator().manual_seed(train.seed)
    t0 = time.perf_counter()
    with tqdm(total=train.epochs * len(encoded), desc="naive", unit="step", leave=False) as bar:
        for _ in range(train.epochs):
            for i in torch.randperm(len(encoded), generator=generator).tolist():
                e = encoded[i]
                with torch.no_grad():
                    t_logits = teacher_model(torch.tensor([e.teacher_ids], device=lm.device)).logits[0]
                s_logits = model(input_ids=torch.tensor([e.student_ids], device=lm.device)).logits[0]
                n = e.n_scored
                t_logp = torch.log_softmax(t_logits[len(e.teacher_ids) - n - 1:-1].float(), -1)
                s_logp = torch.log_softmax(s_logits[len(e.student_ids) - n - 1:-1].float(), -1)
                loss = kl_full(t_logp, s_logp).mean()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, train.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update(1)
    return time.perf_counter() - t0


def run_bench(console: Console, model: str, n_pairs: int, unrelated: str, epochs: int, naive: bool,
              device: str = "auto", dtype: str = "auto") -> dict:
    """Run the benchmark on the demo context and print one JSON line of figures."""
    data = demo_data()
    lm = load_lm(model, device=device, dtype=dtype)
    build = make_target_builder(TargetConfig(n_pairs=n_pairs, unrelated_path=unrelated), lm)
    t0 = time.perf_counter()
    targets = reanswer(lm, build(data["context"]))  # generation, filtering, the teacher's answers: as SELF-PARAM does it
    seconds_generation = time.perf_counter() - t0
    examples = distillation_examples(lm.tokenizer, targets)
    adapter, train = AdapterConfig(), TrainConfig(epochs=epochs)
    console.print(f"{len(targets.pairs)} pairs + {len(targets.unrelated)} unrelated sentences in "
                  f"{seconds_generation:.1f}s; training {epochs} epoch(s)")

    ours = dataclasses.replace(lm, model=copy.deepcopy(lm.model))
    _, stats = run_update(ours, examples, adapter, train)
    figures = {
        "model": model, "device": str(lm.device), "compute_dtype": str(lm.compute_dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(), "pairs": len(targets.pairs), "unrelated": len(targets.unrelated),
        "epochs": epochs, "seconds_generation": round(seconds_generation, 2),
        "seconds_teacher": round(stats.seconds_teacher, 2), "seconds_train": round(stats.seconds_train, 2),
        "train_tokens_per_s": round(stats.train_tokens_per_s, 1),
    }
    if naive:
        reference = dataclasses.replace(lm, model=copy.deepcopy(lm.model).float(), compute_dtype=torch.float32)
        naive_seconds = naive_train(reference, examples, adapter, train)
        figures["naive_seconds_train"] = round(naive_seconds, 2)
        figures["speedup_vs_naive"] = round(naive_seconds / (stats.seconds_teacher + stats.seconds_train), 2)
    print(json.dumps(figures))
    return figures
