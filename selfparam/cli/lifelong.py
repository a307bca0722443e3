"""`selfparam eval lifelong`: sequential editing with every named method on the same edits (mounted by the
eval sub-app as a plain function)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .eval import NPairs, Progress, TargetsDir, Unrelated
from .probes import PROBE_QUESTIONS


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{what}: expected comma-separated integers, got {text!r}") from None


def _own_args(argv: list[str]) -> list[str]:
    """The arguments after the `lifelong` command word, for the report's command line."""
    return argv[argv.index("lifelong") + 1:] if "lifelong" in argv else argv[1:]


def lifelong(
    data: Annotated[Path, typer.Option(help="CounterFact (RECIPE release) or zsRE (KnowEdit) JSON")],
    methods: Annotated[str, typer.Option(help="comma-separated method names, e.g. recipe,rag-bm25,selfparam")]
    = "recipe",
    edits: Annotated[str, typer.Option(help="edit counts to score at; 'all': every distinct edit of the data "
                                            "(public CounterFact: 7,998 of its 8,000 records)")] = "1,10,100,1000",
    out: Annotated[Path, typer.Option(help="report folder: summary.json, summary.md, lifelong.png")]
    = Path("runs/lifelong"),
    model: Annotated[str, typer.Option(help="the LLM")] = "smollm2-135m",
    max_edits: Annotated[Optional[str], typer.Option(help="per-method caps, e.g. selfparam=100,ft-s=100")] = None,
    method_config: Annotated[Optional[Path], typer.Option(help="JSON of per-method settings keyed by name")] = None,
    eval_sample: Annotated[int, typer.Option(help="score at most this many of the edits so far")] = 200,
    gen_sample: Annotated[int, typer.Option(help="of those, this many by greedy generation too")] = 100,
    max_new_tokens: Annotated[int, typer.Option(help="greedy answer length for the greedy_* figures")] = 16,
    mmlu: Annotated[Optional[Path], typer.Option(help="MMLU folder: accuracy before and after the last count")] = None,
    mmlu_questions: Annotated[int, typer.Option(help="MMLU questions")] = 50,
    n_pairs: NPairs = None,
    unrelated: Unrelated = None,
    targets_dir: TargetsDir = None,
    pair_samples: Annotated[Optional[int], typer.Option(help="completions sampled per round to generate an "
                                                             "edit's pairs (default 16)")] = None,
    pair_tokens: Annotated[Optional[int], typer.Option(help="tokens per sampled completion (default 160; a "
                                                            "one-sentence edit needs fewer)")] = None,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option()] = "auto",
    dtype: Annotated[str, typer.Option()] = "auto",
    progress: Progress = True,
) -> None:
    """Lifelong knowledge editing: reliability, generality, locality and edit time after each edit count."""
    try:
        summary = _lifelong(**locals())
    except ValueError as e:  # bad input (unknown method, malformed data or settings): one line, no traceback
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo((Path(out) / "summary.md").read_text())
    failed = [name for name, row in summary["methods"].items() if row["status"] != "ok"]
    if failed:
        typer.echo(f"failed methods: {', '.join(failed)} (errors in {Path(out) / 'summary.md'})")
        raise typer.Exit(1)


def _lifelong(data: Path, methods: str, edits: str, out: Path, model: str, max_edits: str | None,
              method_config: Path | None, eval_sample: int, gen_sample: int, max_new_tokens: int, mmlu: Path | None,
              mmlu_questions: int, n_pairs: int | None, unrelated: Path | None, targets_dir: Path | None,
              pair_samples: int | None, pair_tokens: int | None, seed: int, device: str, dtype: str,
              progress: bool = True) -> dict:
    from ..eval.editing_data import distinct_edits, load_edits
    from ..eval.lifelong import LifelongConfig, run_lifelong
    from ..eval.run import shared_target_resources
    from ..eval.seeds import seeded_method_configs
    from ..lm import load_lm
    from ..methods.registry import method_class, preflight

    names = [m.strip() for m in methods.split(",") if m.strip()]
    for name in names:
        method_class(name)  # unknown names fail before the model loads
    caps = {}
    for item in (max_edits.split(",") if max_edits else []):
        key, _, value = item.partition("=")
        if key.strip() not in names:
            raise typer.BadParameter(f"max-edits: {key!r} is not among the methods run ({', '.join(names)})")
        caps[key.strip()] = _ints(value, "max-edits")[0] if value.strip() else 0
    records, repeated = distinct_edits(load_edits(data))
    counts = [len(records) if x.strip().lower() == "all" else x for x in edits.split(",") if x.strip()]
    counts = _ints(",".join(str(c) for c in counts), "edits")
    cfg = LifelongConfig(edits=tuple(counts), max_edits=caps, eval_sample=eval_sample,
                         gen_sample=gen_sample, max_new_tokens=max_new_tokens,
                         mmlu_dir=str(mmlu) if mmlu else None, mmlu_questions=mmlu_questions, seed=seed)
    configs = seeded_method_configs(method_config, names, seed)  # --seed reaches training too
    if unrelated is not None and not unrelated.is_file():
        raise typer.BadParameter(f"unrelated: corpus {unrelated} does not exist")
    if repeated:
        typer.echo(f"{data}: {repeated} repeated edits dropped (first kept); {len(records)} distinct edits", err=True)
    if max(cfg.edits) > len(records):
        raise typer.BadParameter(f"edits: {max(cfg.edits)} asked for, but {data} holds {len(records)} distinct edits "
                                 f"(ask for {len(records)} or 'all')")
    records = records[:max(cfg.edits)]
    for name in names:
        preflight(name, configs.get(name), model)  # e.g. RECIPE's trained editor, before the model loads
    lm = load_lm(model, device=device, dtype=dtype)
    # each edit is one context: SELF-PARAM and FT(S) share its generated target set
    resources = shared_target_resources(lm, seed=seed, unrelated=unrelated, n_pairs=n_pairs,
                                        targets_dir=targets_dir or Path(out) / "targets",
                                        generator_samples=pair_samples, generator_max_new_tokens=pair_tokens,
                                        questions=PROBE_QUESTIONS)  # one-sentence edits, as the probes'
    return run_lifelong(lm, {n: configs.get(n) for n in names}, records, cfg, out, data_name=str(data),
                        command="selfparam eval lifelong " + shlex.join(_own_args(sys.argv)), resources=resources,
                        progress=progress)
