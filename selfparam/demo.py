"""The demo: inject a short made-up context into the embedded model and ask about it without it.

The context describes a town and a festival that do not exist, so the base model cannot know the
answers; the in-context answers show what the model makes of the text when it can see it (the upper
bound), and the injected answers what it kept in its weights. Prompts unrelated to the context check
that the rest of the model did not move (mean KL of their next-token distributions, before vs after).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from .eval.metrics import best_f1
from .generation import generate
from .lm import LM, load_lm
from .methods.base import Context, Query
from .methods.selfparam import SelfParam, SelfParamConfig, TargetConfig
from .prompts import answer_prompt
from .targets.config import DEFAULT_N_PAIRS


def demo_data() -> dict:
    """The bundled context, its questions with gold answers, and unrelated probe prompts."""
    return json.loads((Path(__file__).parent / "assets" / "demo_context.json").read_text(encoding="utf-8"))


def next_token_logprobs(lm: LM, text: str) -> torch.Tensor:
    """fp32 log-probabilities (V,) of the token after `text`."""
    ids = lm.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(lm.device)
    with torch.no_grad(), lm.autocast():
        logits = lm.model(**ids).logits[0, -1]
    return torch.log_softmax(logits.float(), -1)


def probe_kl(before: LM, after: LM, texts: list[str]) -> float:
    """Mean KL(before || after) of the next-token distribution after each of `texts`."""
    kls = []
    for text in texts:
        p, q = next_token_logprobs(before, text), next_token_logprobs(after, text)
        kls.append(float((p.exp() * (p - q)).sum()))
    return sum(kls) / len(kls)


def run_demo(console: Console, unrelated: str | None, n_pairs: int = DEFAULT_N_PAIRS, out: Path | None = None,
             device: str = "auto", dtype: str = "auto", seed: int = 0) -> dict:
    """Run the demo, print its tables, and return the figures (also what the slow test checks)."""
    data = demo_data()
    if unrelated is not None and not Path(unrelated).is_file():
        raise FileNotFoundError(f"--unrelated {unrelated}: no such file (run from the project root, pass a "
                                f"corpus path, or 'none')")
    t0 = time.perf_counter()
    lm = load_lm("smollm2-135m", device=device, dtype=dtype)
    console.print(f"loaded {lm.name} on {lm.device} (compute {lm.compute_dtype}) in {time.perf_counter() - t0:.1f}s")
    console.print(f"[bold]context[/]: {data['context']}\n")
    questions = [q["question"] for q in data["questions"]]
    golds = [q["answers"] for q in data["questions"]]
    with_context = generate(lm, [answer_prompt(lm.tokenizer, q, data["context"]) for q in questions])

    config = SelfParamConfig(targets=TargetConfig(n_pairs=n_pairs, unrelated_path=unrelated, seed=seed))
    config.train.seed = seed
    method = SelfParam(lm, config)
    queries = [Query(q) for q in questions]
    before = method.answer(queries)
    t0 = time.perf_counter()
    method.inject([Context("demo", data["context"])])
    seconds_inject = time.perf_counter() - t0
    after = method.answer(queries)
    stats = method.last_stats
    targets = method.last_targets[0]
    console.print(f"target set: {len(targets.pairs)} generated pairs ({targets.dropped or 'none dropped'}), "
                  f"{len(targets.unrelated)} unrelated sentences; e.g. Q: {targets.pairs[0].question} "
                  f"A: {targets.pairs[0].answer}")
    console.print(f"injection: {seconds_inject:.0f}s in all (teacher {stats.seconds_teacher:.1f}s, training "
                  f"{stats.seconds_train:.1f}s, {stats.train_tokens_per_s:.0f} tokens/s), "
                  f"KL loss {stats.first_loss:.3f} -> {stats.last_loss:.3f}")

    table = Table(title="asked WITHOUT the context in the prompt", show_lines=True)
    for col in ("question", "gold", "before injection", "after injection", "with context in prompt"):
        table.add_column(col)
    f1_before = [best_f1(b, g) for b, g in zip(before, golds)]
    f1_after = [best_f1(a, g) for a, g in zip(after, golds)]
    f1_context = [best_f1(c, g) for c, g in zip(with_context, golds)]
    for q, g, b, a, c, fb, fa in zip(questions, golds, before, after, with_context, f1_before, f1_after):
        table.add_row(q, g[0], f"{b}  [dim](F1 {fb:.2f})[/]", f"{a}  [dim](F1 {fa:.2f})[/]", c)
    console.print(table)
    kl = probe_kl(lm, method.lm, data["unrelated_probes"])
    summary = {"f1_before": sum(f1_before) / len(f1_before), "f1_after": sum(f1_after) / len(f1_after),
               "f1_with_context": sum(f1_context) / len(f1_context), "unrelated_probe_kl": kl,
               "seconds_inject": seconds_inject}
    console.print(f"QA-F1 without the context: before {summary['f1_before']:.2f} -> after {summary['f1_after']:.2f} "
                  f"(with the context in the prompt: {summary['f1_with_context']:.2f}); "
                  f"unrelated prompts (e.g. {data['unrelated_probes'][0]!r}): "
                  f"mean next-token KL before/after = {kl:.4f}")
    if out is not None:
        method.save(out)
        console.print(f"[green]saved[/] {out}")
    return summary
