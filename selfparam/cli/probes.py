"""`selfparam eval conflicts` and `selfparam eval boundary`: thin shells over `selfparam.eval.conflicts` and
`selfparam.eval.boundary` (mounted on the eval sub-app by `cli/eval.py`).

    selfparam eval conflicts --data ../shared/data/counterfact_recipe/counterfact-edit-public.json \\
        --methods selfparam,ft-s,ft-c,recipe,rag-bm25 --n 50 --seed 0 --out runs/conflicts
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from .errors import user_errors
from .eval import Articles, Device, Dtype, MethodConfig, Model, NPairs, Out, Questions, Seed, TargetsDir, Unrelated

ProbeMethods = Annotated[str, typer.Option("--methods", help="comma list of method names, e.g. "
                                                             "selfparam,ft-s,ft-c,recipe,rag-bm25")]
MaxNew = Annotated[int, typer.Option("--max-new-tokens", help="greedy answer length")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="progress bars")]
# The probes keep the paper's questions: on CounterFact conflicts fact questions were level with them (later_wins
# 0.15 [0.05, 0.28] against 0.23 [0.10, 0.35], docs/results/conflicts-counterfact-facts), and the recorded probe
# runs use them. SQuAD tasks default to facts (cli/eval.py), where they were measured better.
PROBE_QUESTIONS = "paper"
ReportOnly = Annotated[bool, typer.Option("--report-only", help="load no model: write OUT's report again from its "
                                                                "predictions.jsonl (e.g. after the report gained a "
                                                                "column); other options are ignored")]
PairSamples = Annotated[Optional[int], typer.Option("--pair-samples", help="completions sampled per round to generate "
                                                                          "a fact's pairs (default 16)")]
PairTokens = Annotated[Optional[int], typer.Option("--pair-tokens", help="tokens per sampled completion (default 160; "
                                                                        "a one-sentence fact needs fewer)")]


def _command(word: str) -> str:
    return shlex.join(["selfparam", "eval", *sys.argv[sys.argv.index(word):]]) if word in sys.argv \
        else shlex.join(sys.argv)


def _builder(names: list[str], model: str, device: str, dtype: str, seed: int, n_pairs: int | None,
             unrelated: Path | None, targets_dir: Path, method_config: Path | None, pair_samples: int | None,
             pair_tokens: int | None, questions: str, progress: bool) -> tuple[Callable[[str], Any], str]:
    """Methods by name from the registry on one loaded model, sharing one target-set builder."""
    from ..eval.configs import method_configs
    from ..eval.run import shared_target_resources
    from ..lm import load_lm
    from ..methods.registry import build_method, method_class
    from ..targets import TargetConfig

    TargetConfig(questions=questions)  # a bad --questions fails before the model loads
    for name in names:
        method_class(name)  # unknown names fail before the model loads
    configs = method_configs(method_config, names)
    if unrelated is not None and not unrelated.is_file():
        raise ValueError(f"--unrelated: corpus {unrelated} does not exist")
    lm = load_lm(model, device=device, dtype=dtype)
    resources = shared_target_resources(lm, seed=seed, unrelated=unrelated, n_pairs=n_pairs, targets_dir=targets_dir,
                                        generator_samples=pair_samples, generator_max_new_tokens=pair_tokens,
                                        questions=questions, progress=progress)
    return (lambda name: build_method(name, lm, configs.get(name), resources, progress=progress)), lm.name


def _rewrite_report(out: Path, summarize, write_report) -> None:
    """`--report-only`: the summary written again from the run's recorded answers (no model), then shown."""
    from ..eval.conflicts import rewrite_report

    rewrite_report(out, summarize, write_report)
    typer.echo((out / "summary.md").read_text())


def _names(methods: str) -> list[str]:
    names = [m.strip() for m in methods.split(",") if m.strip()]
    if not names:
        raise ValueError("--methods: name at least one method")
    return names


@user_errors
def conflicts(
    data: Annotated[Path, typer.Option("--data", help="CounterFact JSON (RECIPE release, with ground_truth)")],
    out: Out, methods: ProbeMethods = "selfparam,ft-s,ft-c,recipe,rag-bm25",
    n: Annotated[int, typer.Option("--n", help="CounterFact records drawn with --seed")] = 50, seed: Seed = 0,
    model: Model = "smollm2-135m", device: Device = "auto", dtype: Dtype = "auto", max_new_tokens: MaxNew = 16,
    n_pairs: NPairs = None, unrelated: Unrelated = None, targets_dir: TargetsDir = None,
    method_config: MethodConfig = None, pair_samples: PairSamples = None, pair_tokens: PairTokens = None,
    questions: Questions = PROBE_QUESTIONS, progress: Progress = True, report_only: ReportOnly = False,
) -> None:
    """Inject a fact, then a context contradicting it (both orders); share of answers where the later wins.

    Methods whose model reads a context are also asked, between the updates, with the later fact in the prompt."""
    from ..eval.conflicts import (
        ConflictConfig,
        draw,
        load_fact_cases,
        run_conflicts,
        summarize,
        write_report,
    )

    if report_only:
        return _rewrite_report(out, summarize, write_report)

    names = _names(methods)
    cfg = ConflictConfig(max_new_tokens=max_new_tokens, seed=seed)
    cases = draw(load_fact_cases(data), n, seed)  # bad data fails here, before the model loads
    build, model_name = _builder(names, model, device, dtype, seed, n_pairs, unrelated, targets_dir or out / "targets",
                                 method_config, pair_samples, pair_tokens, questions, progress)
    run_conflicts(cases, names, build, cfg, out, data_name=str(data), model_name=model_name,
                  command=_command("conflicts"), progress=progress)
    typer.echo((out / "summary.md").read_text())


@user_errors
def boundary(
    data: Annotated[Path, typer.Option("--data", help="CounterFact JSON, or SQuAD JSON / PwC JSONL contexts")],
    out: Out, methods: ProbeMethods = "selfparam,ft-s,ft-c,recipe,rag-bm25",
    n: Annotated[int, typer.Option("--n", help="facts (CounterFact records) or contexts drawn with --seed")] = 50,
    seed: Seed = 0, per_kind: Annotated[int, typer.Option("--per-kind", help="near misses of each kind per fact")] = 2,
    questions_per_context: Annotated[int, typer.Option("--questions-per-context",
                                                       help="SQuAD: questions per context")] = 3,
    articles: Articles = None, model: Model = "smollm2-135m", device: Device = "auto", dtype: Dtype = "auto",
    max_new_tokens: MaxNew = 16, n_pairs: NPairs = None, unrelated: Unrelated = None, targets_dir: TargetsDir = None,
    method_config: MethodConfig = None, pair_samples: PairSamples = None, pair_tokens: PairTokens = None,
    questions: Questions = PROBE_QUESTIONS, progress: Progress = True, report_only: ReportOnly = False,
) -> None:
    """Near-miss pollution: after injecting a fact, how often look-alike questions get its object.

    Methods whose model reads a context are also asked with the fact in the prompt (SELF-PARAM: its teacher's view)."""
    from ..eval.boundary import BoundaryConfig, load_items, run_boundary, summarize, write_report
    from ..eval.loaders import parse_articles

    if report_only:
        return _rewrite_report(out, summarize, write_report)

    names = _names(methods)
    cfg = BoundaryConfig(per_kind=per_kind, max_new_tokens=max_new_tokens, seed=seed)
    items = load_items(data, n, seed, per_kind, questions_per_context,
                       parse_articles(articles) if articles is not None else None)
    build, model_name = _builder(names, model, device, dtype, seed, n_pairs, unrelated, targets_dir or out / "targets",
                                 method_config, pair_samples, pair_tokens, questions, progress)
    run_boundary(items, names, build, cfg, out, data_name=str(data), model_name=model_name,
                 command=_command("boundary"), progress=progress)
    typer.echo((out / "summary.md").read_text())
