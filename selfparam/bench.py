"""`selfparam bench`: where one whole injection's time goes, against the naive way of doing it.

One SQuAD-length context (a bundled SQuAD v1.1 dev paragraph from the tuning split), 50 pairs.

Ours is SELF-PARAM's own `inject` under the given settings (the defaults unless a config file says
otherwise), timed stage by stage from its manifest's `seconds`: pairs sampled on the cached prompt (encoded
once, stopped as soon as enough usable pairs exist), the answers written by the teacher in batches with
the context in view (keeping the top-k distributions the KL needs, so those pairs need no teacher pass),
the unrelated sentences' anchor, training in batches under bf16 autocast where the CPU has native bf16,
output logits only on the scored span.

The naive path, on the same context and (for training) the same examples, from the same weights and
seed, in the same process, in fp32: pairs sampled with the prompt recomputed for every sample and every
round run to its end, the teacher answering one question at a time, then training with batch size 1,
the teacher recomputed at every step, full-vocabulary logits and KL (`naive_train`, the plainest
SELF-PARAM training loop). The last line printed is one JSON object.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from importlib import resources
from pathlib import Path

import torch
from rich.console import Console
from tqdm.auto import tqdm

from .generation import generate
from .jsonl import read_json
from .lm import LM, load_lm
from .methods.base import Context
from .methods.selfparam import SelfParam, SelfParamConfig
from .methods.selfparam.method import context_examples
from .precision import cpu_bf16_native
from .prompts import answer_prompt
from .settings import build_dataclass
from .targets import (
    TargetConfig,
    UnrelatedCorpus,
    answer_in_context,
    build_target_set,
    make_generator,
    pair_budget,
    pair_filter,
)
from .targets.types import TargetSet
from .training.adapters import AdapterConfig, attach
from .training.examples import Example, encode
from .training.losses import kl_full
from .training.trainer import TrainConfig


def bench_context() -> dict:
    """The bundled context: `{"source", "title", "context", "questions"}` (SQuAD v1.1 dev, tuning split)."""
    return json.loads(resources.files("selfparam").joinpath("assets/bench_context.json").read_text(encoding="utf-8"))


def naive_targets(lm: LM, config: TargetConfig, context: str) -> TargetSet:
    """The target set built the plain way: every sampled completion recomputes the whole prompt, each
    round runs to its end, and the teacher answers one question at a time (fact questions: inside the
    generator, which checks each answer against its span)."""
    generator = make_generator(config, lm)
    generator.reuse_prompt_cache = False
    targets = build_target_set(context, generator, None, n_pairs=config.n_pairs, unrelated_ratio=0.0,
                               seed=config.seed, filter_config=pair_filter(config), **pair_budget(config))
    if not config.teacher_rewrites_answers:
        return targets

    def answer_one_by_one(questions: list[str], ctx: str) -> list[str]:
        return [generate(lm, [answer_prompt(lm.tokenizer, q, ctx)], max_new_tokens=48, batch_size=1)[0]
                for q in questions]

    return answer_in_context(targets, answer_one_by_one)


def naive_train(lm: LM, examples: list[Example], adapter: AdapterConfig, train: TrainConfig) -> float:
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
                with torch.no_grad():  # the teacher reads the context before the sentence, every step again
                    t_logits = teacher_model(torch.tensor([e.teacher_ids], device=lm.device)).logits[0]  # (T, V)
                s_logits = model(input_ids=torch.tensor([e.student_ids], device=lm.device)).logits[0]  # (S, V)
                n = e.n_scored  # the sentence's tokens: the last n of both sequences
                t_logp = torch.log_softmax(t_logits[len(e.teacher_ids) - n - 1:-1].float(), -1)  # (n, V)
                s_logp = torch.log_softmax(s_logits[len(e.student_ids) - n - 1:-1].float(), -1)  # (n, V)
                loss = kl_full(t_logp, s_logp).mean()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, train.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update(1)
    return time.perf_counter() - t0


def bench_injection(lm: LM, context: str, config: SelfParamConfig, naive: bool = True, log=print) -> dict:
    """Time one injection of `context` by SELF-PARAM's own `inject` under `config` (then the naive path) and
    return the figures. The stages are the method's (its manifest's `seconds`): pair generation, the
    teacher writing the answers with the context in view (keeping the distributions the KL needs), the
    anchor's distributions, the teacher pass over what is still untaught, training and merge.

    `lm` is left as it was: the method trains its own copy of the weights, the naive path another.
    """
    method = SelfParam(lm, config, progress=False)
    method.inject([Context("bench", context)])
    seconds = method.records[-1].manifest["seconds"]
    stats = method.last_stats
    target_set = method.last_targets[0]
    log(f"{len(target_set.pairs)} pairs + {len(target_set.unrelated)} unrelated sentences in "
        f"{seconds['targets']:.1f}s, answers {seconds['answers']:.1f}s; {stats.steps} training steps")
    figures = {
        "model": lm.name, "device": str(lm.device), "compute_dtype": str(lm.compute_dtype).removeprefix("torch."),
        "cpu_bf16_native": cpu_bf16_native(), "threads": torch.get_num_threads(),
        "context_words": len(context.split()), "pairs": len(target_set.pairs), "unrelated": len(target_set.unrelated),
        "epochs": config.train.epochs, "steps": stats.steps,
        "seconds_setup": seconds["setup"], "seconds_generation": seconds["targets"],
        "seconds_answers": seconds["answers"],
        "seconds_examples": seconds["examples"], "seconds_teacher": seconds["teacher"],
        "seconds_train": seconds["train"], "seconds_total": seconds["total"],
        "train_tokens_per_s": round(stats.train_tokens_per_s, 1),
    }
    if naive:
        reference = dataclasses.replace(lm, model=copy.deepcopy(lm.model).float(), compute_dtype=torch.float32)
        t0 = time.perf_counter()
        naive_set = naive_targets(reference, config.targets, context)
        naive_generation = time.perf_counter() - t0
        # the same examples as ours, each taught by the teacher reading what ours' teacher read
        examples = context_examples(lm.tokenizer, target_set, config)
        log(f"naive generation: {len(naive_set.pairs)} pairs in {naive_generation:.1f}s; naive training on ours' "
            f"{len(examples)} examples")
        naive_seconds_train = naive_train(reference, examples, config.adapter, config.train)
        naive_total = naive_generation + naive_seconds_train
        ours_train = seconds["examples"] + seconds["teacher"] + seconds["train"]
        figures.update({
            "naive_seconds_generation": round(naive_generation, 3),
            "naive_seconds_train": round(naive_seconds_train, 3),
            "naive_seconds_total": round(naive_total, 3),
            "speedup_generation_vs_naive": _ratio(naive_generation, seconds["targets"] + seconds["answers"]),
            "speedup_train_vs_naive": _ratio(naive_seconds_train, ours_train),
            "speedup_vs_naive": _ratio(naive_total, seconds["total"]),
        })
    return figures


def _ratio(naive: float, ours: float) -> float | None:
    """naive / ours to 0.01, or None where ours rounds to no time at all (a stage with nothing to do)."""
    return round(naive / ours, 2) if ours > 0 else None


DEFAULT_UNRELATED = "../shared/data/wikitext2/wiki.test.raw"


def bench_config(path: Path | None = None, n_pairs: int | None = None, unrelated: str | None = None,
                 epochs: int | None = None) -> SelfParamConfig:
    """SELF-PARAM's settings for the bench: the defaults, or the `selfparam` object of the JSON file at
    `path` (the format of `--method-config`; here `targets` may be set too), with the pairs, unrelated
    corpus ("none": none; unset: the file's, else WikiText-2's test split) and epochs given on the command
    line on top."""
    config = SelfParamConfig()
    if path is not None:
        raw = read_json(Path(path), "method config file", missing=ValueError)
        if not isinstance(raw, dict) or set(raw) != {"selfparam"}:
            raise ValueError(f"method config file {path}: expected an object with one key, 'selfparam' (the bench "
                             f"runs SELF-PARAM only)")
        config = build_dataclass(SelfParamConfig, raw["selfparam"], f"{Path(path).name}:selfparam")
    targets = config.targets
    if unrelated is None and targets.unrelated_path is None:
        unrelated = DEFAULT_UNRELATED
    if unrelated is not None:
        targets = dataclasses.replace(targets, unrelated_path=None if unrelated == "none" else unrelated)
    if n_pairs is not None:
        targets = dataclasses.replace(targets, n_pairs=n_pairs)
    train = config.train if epochs is None else dataclasses.replace(config.train, epochs=epochs)
    return dataclasses.replace(config, targets=targets, train=train)


def run_bench(console: Console, model: str, config: SelfParamConfig, naive: bool, device: str = "auto",
              dtype: str = "auto") -> dict:
    """Run the benchmark on the bundled SQuAD paragraph and print one JSON line of figures."""
    if config.targets.unrelated_path:
        UnrelatedCorpus.from_path(config.targets.unrelated_path)  # a bad path fails before the model loads
    lm = load_lm(model, device=device, dtype=dtype)
    figures = bench_injection(lm, bench_context()["context"], config, naive=naive, log=console.print)
    print(json.dumps(figures))
    return figures
