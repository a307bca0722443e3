"""`selfparam inject | ask | export | demo | bench`: thin shells over the library."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from accelerate import PartialState
from rich.console import Console
from rich.table import Table

from ..lm import DEFAULT_MODEL, load_lm
from ..methods.base import Context, Query
from ..methods.selfparam import SelfParam, SelfParamConfig, TargetConfig
from ..targets.config import DEFAULT_N_PAIRS, DEFAULT_UNRELATED_RATIO
from ..training.adapters import AdapterConfig
from ..training.trainer import TrainConfig
from .errors import read_text_file, user_errors

console = Console()

ModelOpt = Annotated[str, typer.Option(help="embedded name (smollm2-135m), .gguf file, HF folder or hub id")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ...")]
DtypeOpt = Annotated[str, typer.Option(help="compute dtype: auto (bf16 where supported), fp32, bf16, fp16")]


def register(app: typer.Typer) -> None:
    app.command()(inject)
    app.command()(ask)
    app.command()(export)
    app.command()(demo)
    app.command()(bench)


@user_errors
def inject(
    contexts: Annotated[list[str], typer.Argument(help="text files, one context each")],
    out: Annotated[Path, typer.Option(help="folder to write the injection to (PEFT adapters + manifests)")],
    model: ModelOpt = DEFAULT_MODEL,
    mode: Annotated[str, typer.Option(help="batch: all contexts in one update; sequential: one update each")] = "batch",
    resume: Annotated[Optional[Path], typer.Option("--from", help="a saved injection to continue from")] = None,
    n_pairs: Annotated[int, typer.Option(help="question-answer pairs per context")] = DEFAULT_N_PAIRS,
    pairs_file: Annotated[Optional[str], typer.Option(help="JSONL of {question, answer[, context]} "
                                                           "instead of generating")] = None,
    generator_url: Annotated[Optional[str], typer.Option(help="OpenAI-compatible base URL that writes the pairs")]
    = None,
    generator_model: Annotated[Optional[str], typer.Option(help="model name at --generator-url")] = None,
    unrelated: Annotated[Optional[str], typer.Option(help="text/JSONL corpus of unrelated sentences")] = None,
    unrelated_ratio: Annotated[float, typer.Option(help="unrelated sentences per pair")] = DEFAULT_UNRELATED_RATIO,
    answers: Annotated[str, typer.Option(help="generator: the generator's answers; "
                                              "teacher: re-answered with the context")] = TargetConfig.answers,
    questions: Annotated[Optional[str], typer.Option(help="facts: answer-aware, fact-covering questions; paper: the "
                                                          "paper's whole-context prompt [default: facts, paper with "
                                                          "--pairs-file or --generator-url]")] = None,
    adapter: Annotated[str, typer.Option(help="lora or mlp")] = "lora",
    top_layers: Annotated[int, typer.Option(help="train only the top N decoder layers (0: every layer; the "
                                                 "backward pass stops below them)")] = AdapterConfig.top_layers,
    lr: Annotated[float, typer.Option()] = TrainConfig.lr,
    epochs: Annotated[int, typer.Option()] = TrainConfig.epochs,
    batch_size: Annotated[int, typer.Option()] = TrainConfig.batch_size,
    seed: Annotated[int, typer.Option()] = 0,
    rehearsal: Annotated[int, typer.Option(help="pairs of every earlier context replayed with their stored "
                                                "teacher at each update (0: off; see docs/tuning.md)")]
    = SelfParamConfig.rehearsal,
    rehearsal_context: Annotated[int, typer.Option(help="chunks of every earlier context's read replayed with "
                                                        "their stored teacher at each update (0: off; needs "
                                                        "--context-copies)")]
    = SelfParamConfig.rehearsal_context,
    rehearsal_unrelated: Annotated[int, typer.Option(help="unrelated sentences of every earlier context read "
                                                          "again at each update, taught by the anchor (0: off)")]
    = SelfParamConfig.rehearsal_unrelated,
    rehearsal_superseded: Annotated[float, typer.Option(help="leave out of the replay earlier pairs a new context "
                                                             "contradicts: an answer token this many nats less "
                                                             "likely with it in view (0: off)")]
    = SelfParamConfig.rehearsal_superseded,
    unrelated_teacher: Annotated[str, typer.Option(help="who teaches the unrelated sentences: original (the "
                                                        "unchanged model), base (the model before the update) or "
                                                        "context (the paper)")] = SelfParamConfig.unrelated_teacher,
    pull_back: Annotated[float, typer.Option(help="before each update after the first, move the weights this "
                                                  "share of the way back to the unchanged model's (0: off; "
                                                  "docs/tuning.md)")]
    = SelfParamConfig.pull_back,
    kl_span: Annotated[str, typer.Option(help="answer: the KL over each answer; pair: over the question and "
                                              "answer (the paper)")] = SelfParamConfig.kl_span,
    context_copies: Annotated[int, typer.Option(help="the context's own text added this many times, taught by "
                                                     "the model reading it (0: off; docs/tuning.md)")]
    = SelfParamConfig.context_copies,
    hidden_weight: Annotated[float, typer.Option(help="weight of a hidden-state term beside the KL: the student "
                                                      "matches its teacher's hidden states at every layer (Deep "
                                                      "Context Distillation; 0: off; docs/tuning.md)")]
    = SelfParamConfig.hidden_weight,
    reask: Annotated[int, typer.Option(help="earlier contexts' questions naming an entity of a new context, "
                                            "re-asked with the new context in view (0: off)")] = 0,
    reask_replaces: Annotated[bool, typer.Option("--reask-replaces/--no-reask-replaces",
                                                 help="with --reask and rehearsal, leave a replayed pair out when "
                                                      "its question is re-asked")] = SelfParamConfig.reask_replaces,
    nll_weight: Annotated[float, typer.Option(help="weight of the hard label beside the KL: each scored token's "
                                                   "next-token NLL (0: off; docs/tuning.md)")]
    = SelfParamConfig.nll_weight,
    nll_on: Annotated[str, typer.Option(help="all: the hard label trains every scored token; answers: the "
                                              "question-answer pairs alone")] = SelfParamConfig.nll_on,
    unrelated_weight: Annotated[float, typer.Option(help="how much each token of the unrelated sentences (the "
                                                         "anchor) counts in the loss (1: as every other token)")]
    = SelfParamConfig.unrelated_weight,
    anchor_per_step: Annotated[int, typer.Option(help="unrelated sentences added to every training step, in turn, "
                                                      "instead of each taking a place in a random batch (0: off)")]
    = SelfParamConfig.anchor_per_step,
    near_misses: Annotated[int, typer.Option(help="near-miss questions per context (0: off)")] = 0,
    near_miss_teacher: Annotated[str, typer.Option(help="context: near misses answered with the context in view; "
                                                        "base: by the model before the update, without it (an "
                                                        "anchor)")] = "context",
    context_teacher: Annotated[str, typer.Option(help="current: the model before this update reads the context "
                                                      "and teaches (the paper); original: the unchanged model "
                                                      "does, so earlier updates cannot colour it")]
    = SelfParamConfig.context_teacher,
    teacher_shots: Annotated[int, typer.Option(help="worked examples the teacher is shown first: that many of the "
                                                    "context's own facts answered with their span (0: off; "
                                                    "docs/tuning.md)")]
    = SelfParamConfig.teacher_shots,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Inject context files into the model's weights with SELF-PARAM and save the result to --out."""
    if mode not in ("batch", "sequential"):
        raise ValueError(f"--mode: {mode!r} is not batch or sequential")
    if out.exists():
        raise FileExistsError(f"--out {out} already exists; choose a new folder")
    texts = [Context(Path(p).stem, read_text_file(p)) for p in contexts]
    config = SelfParamConfig(
        targets=TargetConfig(n_pairs=n_pairs, unrelated_ratio=unrelated_ratio, unrelated_path=unrelated,
                             pairs_file=pairs_file, generator_url=generator_url, generator_model=generator_model,
                             answers=answers, questions=questions, seed=seed),
        adapter=AdapterConfig(kind=adapter, top_layers=top_layers),
        train=TrainConfig(lr=lr, epochs=epochs, batch_size=batch_size, seed=seed),
        rehearsal=rehearsal, rehearsal_context=rehearsal_context, rehearsal_unrelated=rehearsal_unrelated,
        rehearsal_superseded=rehearsal_superseded,
        unrelated_teacher=unrelated_teacher,
        reask=reask, reask_replaces=reask_replaces, nll_weight=nll_weight, nll_on=nll_on,
        unrelated_weight=unrelated_weight, anchor_per_step=anchor_per_step,
        near_misses=near_misses, near_miss_teacher=near_miss_teacher, context_teacher=context_teacher,
        teacher_shots=teacher_shots, pull_back=pull_back,
        context_copies=context_copies, kl_span=kl_span, hidden_weight=hidden_weight,
    )
    lm = load_lm(model, device=device, dtype=dtype)
    method = SelfParam(lm, config)
    if resume is not None:  # its current version (a store rolled back or branched holds more updates)
        from ..store import KnowledgeStore

        KnowledgeStore.open(resume).materialize(method)
    for batch in ([texts] if mode == "batch" else [[c] for c in texts]):
        method.inject(batch)
        stats = method.last_stats
        console.print(f"update {len(method.records)}: {len(batch)} context(s), {stats.examples} sentences, "
                      f"loss {stats.first_loss:.4f} -> {stats.last_loss:.4f}, teacher {stats.seconds_teacher:.1f}s, "
                      f"train {stats.seconds_train:.1f}s")
        if stats.loss_by_group:
            console.print("  loss left per kind (last epoch): "
                          + ", ".join(f"{g} {v:.4f}" for g, v in stats.loss_by_group.items()))
    if PartialState().is_main_process:  # under `accelerate launch`, one process writes
        method.save(out)
        console.print(f"[green]saved[/] {out}  (ask with: selfparam ask {out} \"your question\")")


@user_errors
def ask(
    injection: Annotated[Path, typer.Argument(help="a folder written by `selfparam inject`")],
    questions: Annotated[list[str], typer.Argument(help="one or more questions")],
    max_new_tokens: Annotated[int, typer.Option()] = 48,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Answer questions with and without the injected knowledge, side by side."""
    from ..injections import load_injection

    base, method = load_injection(injection, device=device, dtype=dtype)
    queries = [Query(q) for q in questions]
    before = SelfParam(base).answer(queries, max_new_tokens)  # a method with nothing injected: the base model
    after = method.answer(queries, max_new_tokens)
    table = Table(title=f"{base.name}: without / with {injection}", show_lines=True)
    table.add_column("question")
    table.add_column("base model")
    table.add_column("with injection")
    for q, b, a in zip(questions, before, after):
        table.add_row(q, b, a)
    console.print(table)


@user_errors
def export(
    injection: Annotated[Path, typer.Argument(help="a folder written by `selfparam inject`")],
    out: Annotated[Path, typer.Option(help="new folder for the merged Hugging Face model")],
    version: Annotated[Optional[int], typer.Option(help="the store version to export (default: the current one)")]
    = None,
) -> None:
    """Write the injected model as a plain Hugging Face folder (loads with transformers alone)."""
    from ..injections import export_merged

    export_merged(injection, out, version=version)
    console.print(f"[green]exported[/] {out}: AutoModelForCausalLM.from_pretrained({str(out)!r})")


@user_errors
def demo(
    unrelated: Annotated[str, typer.Option(help="corpus of unrelated sentences ('none' for no regularisation)")]
    = "../shared/data/wikitext2/wiki.test.raw",
    n_pairs: Annotated[int, typer.Option(help="question-answer pairs to generate")] = DEFAULT_N_PAIRS,
    out: Annotated[Optional[Path], typer.Option(help="also save the injection here")] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Inject a short bundled context into the embedded model and show its answers before and after."""
    from ..demo import run_demo

    run_demo(console, unrelated=None if unrelated == "none" else unrelated, n_pairs=n_pairs, out=out,
             device=device, dtype=dtype, seed=seed)


@user_errors
def bench(
    model: ModelOpt = DEFAULT_MODEL,
    method_config: Annotated[Optional[Path], typer.Option(
        help="JSON {\"selfparam\": {...}} of SELF-PARAM settings to time (targets included); default: the defaults")]
    = None,
    n_pairs: Annotated[Optional[int], typer.Option(help=f"pairs for the one context [default: the config's, "
                                                        f"{DEFAULT_N_PAIRS}]")] = None,
    unrelated: Annotated[Optional[str], typer.Option(help="corpus of unrelated sentences ('none' for none) "
                                                          "[default: the config's, else "
                                                          "../shared/data/wikitext2/wiki.test.raw]")] = None,
    epochs: Annotated[Optional[int], typer.Option(help=f"[default: the config's, {TrainConfig.epochs}]")] = None,
    skip_naive: Annotated[bool, typer.Option(help="skip the naive reference run")] = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
) -> None:
    """Time one whole SELF-PARAM injection of a SQuAD paragraph (generation, answers, teacher, training)
    against the naive path; ends with one JSON line."""
    from ..bench import bench_config, run_bench

    config = bench_config(method_config, n_pairs=n_pairs, unrelated=unrelated, epochs=epochs)
    run_bench(console, model=model, config=config, naive=not skip_naive, device=device, dtype=dtype)
