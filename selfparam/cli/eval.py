"""`selfparam eval TASK ...`: one command per task of the papers, each a thin shell over `selfparam.eval.run`.

    selfparam eval single --data ../shared/data/squad_v1.1/dev-v1.1-public.json \\
        --methods base,base-cq,rag-bm25,selfparam --n 20 --seed 0 --out runs/single
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..methods.registry import METHODS, QA_METHODS
from ..targets.config import DEFAULT_FACT_PHRASINGS

eval_app = typer.Typer(help="Evaluate knowledge methods on the papers' tasks; one folder of results per run.",
                       no_args_is_help=True)

Data = Annotated[Path, typer.Option("--data", help="SQuAD JSON or PwC JSONL "
                                                   "(recommendation: the crs_selfparam folder)")]
Methods = Annotated[str, typer.Option("--methods", help=f"comma list: {', '.join(METHODS)}")]
N = Annotated[int, typer.Option("--n", help="contexts (recommendation: dialogue turns) drawn with --seed")]
Seed = Annotated[int, typer.Option("--seed", help="draws the contexts and seeds every method (LoRA init, "
                                                 "shuffling, dropout, target generation)")]
Seeds = Annotated[Optional[str], typer.Option("--seeds", help="a sweep in one command, e.g. 0,1,2: one run per seed "
                                                             "in OUT/seed-S plus a summary of all (instead of --seed)")]
Out = Annotated[Path, typer.Option("--out", help="run folder: config, predictions, summary.md/json, plots")]
Model = Annotated[str, typer.Option("--model", help="embedded name, .gguf file, HF folder or cached hub id")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1 ...")]
Dtype = Annotated[str, typer.Option("--dtype", help="compute dtype: auto, fp32, bf16, fp16")]
QPC = Annotated[int, typer.Option("--questions-per-context", help="questions asked per context")]
MaxNew = Annotated[Optional[int], typer.Option("--max-new-tokens",
                                               help="answer length (default 32; recommendation 64)")]
NPairs = Annotated[Optional[int], typer.Option("--n-pairs", help="generated QA pairs per context for SELF-PARAM/FT(S)")]
Unrelated = Annotated[Optional[Path], typer.Option("--unrelated", help="text file of unrelated sentences for the "
                                                                       "target sets (e.g. wikitext2/wiki.test.raw)")]
UnrelatedRatio = Annotated[Optional[float], typer.Option("--unrelated-ratio", help="unrelated sentences per pair "
                                                                                  "in the target sets (default 0.5); "
                                                                                  "needs --unrelated")]
TargetsDir = Annotated[Optional[Path], typer.Option("--targets-dir", help="target-set cache (default OUT/targets); "
                                                                          "share it between runs on the same data")]
MethodConfig = Annotated[Optional[Path], typer.Option("--method-config", help='JSON {"method": {setting: value}}')]
General = Annotated[bool, typer.Option("--general/--no-general", help="MMLU and WikiText-2 perplexity before and "
                                                                     "after injection")]
GeneralEvery = Annotated[int, typer.Option("--general-every", help="with --general: measure it also after every N-th "
                                                                    "injection (and the last); 0: only before the "
                                                                    "first and after the last")]
MMLU = Annotated[Optional[Path], typer.Option("--mmlu", help="MMLU folder (test/ and dev/ CSVs)")]
Subjects = Annotated[Optional[str], typer.Option("--mmlu-subjects", help="comma list of MMLU subjects")]
PerSubject = Annotated[int, typer.Option("--mmlu-per-subject", help="questions per MMLU subject")]
Wikitext = Annotated[Optional[Path], typer.Option("--wikitext", help="WikiText-2 raw file for perplexity")]
PplTokens = Annotated[int, typer.Option("--ppl-tokens", help="token budget for perplexity")]
Articles = Annotated[Optional[str], typer.Option("--articles", help="SQuAD: draw contexts only from these articles "
                                                                   "(1-based, file order), e.g. 17-32 or 1-4,9")]
Exclude = Annotated[Optional[list[str]], typer.Option("--exclude", help="a context id the draw passes over (the next "
                                                                   "one takes its place), e.g. Steam_engine/34 "
                                                                   "when no target set can be built for it; "
                                                                   "repeat for more")]
Questions = Annotated[str, typer.Option("--questions", help="target questions: facts (answer-aware, fact-covering) "
                                                             "or paper (the paper's whole-context prompt; runs "
                                                             "recorded before facts became the default)")]
FactPhrasings = Annotated[int, typer.Option("--fact-phrasings", help="--questions facts: questions per fact, the "
                                                                     "rule-built cloze first, then model-written "
                                                                     "ones the teacher checks (1: the cloze alone)")]
FactCycle = Annotated[bool, typer.Option("--fact-cycle/--no-fact-cycle", help="--questions facts: repeat a set with "
                                                                        "fewer than --n-pairs distinct pairs up to "
                                                                        "--n-pairs (the paper's budget), or train "
                                                                        "each distinct pair once")]
FactSpans = Annotated[str, typer.Option("--fact-spans", help="--questions facts: the answer spans asked: rules "
                                                               "(names, numbers with a unit, dates, definitions, "
                                                               "objects) or wide (also counts in words and noun "
                                                               "phrases after an article)")]
FactPronouns = Annotated[str, typer.Option("--fact-pronouns", help="--questions facts: a cloze question whose pronoun "
                                                                   "has no name before it: drop it, or name: ask it "
                                                                   "with the name the pronoun most likely stands for")]
ReportOnly = Annotated[bool, typer.Option("--report-only", help="run nothing: write the report of what OUT's run "
                                                                "log holds so far (unfinished methods: partial)")]
Progress = Annotated[bool, typer.Option("--progress/--no-progress", help="progress bars over contexts")]
TargetsOnly = Annotated[bool, typer.Option("--targets-only", help="run no method: build and cache the target set of "
                                                                  "every drawn context in --targets-dir (share it "
                                                                  "between the runs of one draw)")]


def _run(task: str, data: Path, methods: str, n: int, seed: int, out: Path, model: str, device: str, dtype: str,
         questions_per_context: int, max_new_tokens: int | None, n_pairs: int | None, unrelated: Path | None,
         unrelated_ratio: float | None, targets_dir: Path | None, method_config: Path | None, general: bool,
         mmlu: Path | None, mmlu_subjects: str | None, mmlu_per_subject: int, wikitext: Path | None, ppl_tokens: int,
         progress: bool, seeds: str | None = None, report_only: bool = False, targets_only: bool = False,
         exclude: list[str] | None = None, **task_options) -> None:
    import shlex
    import sys

    from ..eval.general import DEFAULT_SUBJECTS, GeneralConfig
    from ..eval.run import EvalSettings, evaluate, evaluate_seeds, prepare_targets

    try:
        general_config = None
        if general:
            general_config = GeneralConfig(
                mmlu_dir=mmlu, wikitext=wikitext, per_subject=mmlu_per_subject, ppl_tokens=ppl_tokens, seed=seed,
                subjects=tuple(s.strip() for s in mmlu_subjects.split(",") if s.strip()) if mmlu_subjects
                else DEFAULT_SUBJECTS)
        settings = EvalSettings(
            task=task, data=data, out=out, methods=tuple(m.strip() for m in methods.split(",") if m.strip()), n=n,
            seed=seed, model=model, device=device, dtype=dtype, questions_per_context=questions_per_context,
            max_new_tokens=max_new_tokens, n_pairs=n_pairs, unrelated=unrelated, unrelated_ratio=unrelated_ratio,
            targets_dir=targets_dir,
            method_config=method_config, general=general_config, progress=progress,
            exclude=tuple(exclude or ()),
            command=shlex.join(["selfparam", "eval", *sys.argv[sys.argv.index(task):]]) if task in sys.argv
            else shlex.join(sys.argv), **task_options)
        if targets_only:
            if report_only or seeds is not None:
                raise ValueError("--targets-only builds the target sets of one draw: without --report-only or --seeds")
            built = prepare_targets(settings)
            typer.echo(f"{built['contexts']} target sets in {built['folder']} ({built['built']} built now, "
                       f"{built['cached']} already cached, {len(built['failed'])} failed)")
            for failure in built["failed"]:
                typer.echo(f"failed: {failure['context']}: {failure['error']}", err=True)
            return
        if seeds is not None:
            if report_only:
                raise ValueError("--report-only reports one run: give its --seed, not --seeds")
            if seed != 0:
                raise ValueError("give --seed or --seeds, not both")
            results, paths = evaluate_seeds(settings, seeds)
        else:
            result, paths = evaluate(settings, report_only=report_only)
            results = {seed: result}
    except ValueError as e:  # bad input (DataError, unknown names, bad sizes): say why, no traceback
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(paths["summary_md"].read_text())
    failed = sorted({o.name for result in results.values() for o in result.outcomes if o.status == "failed"})
    typer.echo(f"results in {out}" + (f"; failed methods: {', '.join(failed)}" if failed else ""))
    if failed:
        raise typer.Exit(1)


_QA_DEFAULT_METHODS = ",".join(QA_METHODS)


@eval_app.command()
def single(data: Data, out: Out, methods: Methods = _QA_DEFAULT_METHODS, n: N = 20, seed: Seed = 0,
           seeds: Seeds = None,
           model: Model = "smollm2-135m", device: Device = "auto", dtype: Dtype = "auto",
           questions_per_context: QPC = 3, max_new_tokens: MaxNew = None, n_pairs: NPairs = None,
           unrelated: Unrelated = None, unrelated_ratio: UnrelatedRatio = None,
           targets_dir: TargetsDir = None, method_config: MethodConfig = None,
           general: General = False, mmlu: MMLU = None, mmlu_subjects: Subjects = None,
           mmlu_per_subject: PerSubject = 20, wikitext: Wikitext = None, ppl_tokens: PplTokens = 4096,
           articles: Articles = None, exclude: Exclude = None, questions: Questions = "facts",
           fact_phrasings: FactPhrasings = DEFAULT_FACT_PHRASINGS,
           fact_cycle: FactCycle = True, fact_spans: FactSpans = "rules", fact_pronouns: FactPronouns = "drop",
           report_only: ReportOnly = False, targets_only: TargetsOnly = False, progress: Progress = True) -> None:
    """Single-context injection: each context alone into a fresh model, then its questions (QA-F1, EM)."""
    _run("single", **locals())


@eval_app.command()
def batch(data: Data, out: Out, methods: Methods = _QA_DEFAULT_METHODS, n: N = 20,
          k: Annotated[Optional[int], typer.Option("--k", help="contexts per update (default: all n)")] = None,
          seed: Seed = 0, seeds: Seeds = None, model: Model = "smollm2-135m", device: Device = "auto",
          dtype: Dtype = "auto",
          questions_per_context: QPC = 3, max_new_tokens: MaxNew = None, n_pairs: NPairs = None,
          unrelated: Unrelated = None, unrelated_ratio: UnrelatedRatio = None,
          targets_dir: TargetsDir = None, method_config: MethodConfig = None,
          general: General = False, mmlu: MMLU = None, mmlu_subjects: Subjects = None,
          mmlu_per_subject: PerSubject = 20, wikitext: Wikitext = None, ppl_tokens: PplTokens = 4096,
          articles: Articles = None, exclude: Exclude = None, questions: Questions = "facts",
          fact_phrasings: FactPhrasings = DEFAULT_FACT_PHRASINGS,
          fact_cycle: FactCycle = True, fact_spans: FactSpans = "rules", fact_pronouns: FactPronouns = "drop",
          report_only: ReportOnly = False, targets_only: TargetsOnly = False, progress: Progress = True) -> None:
    """Batch injection: K contexts in one update, then all their questions."""
    _run("batch", **locals())


@eval_app.command()
def sequential(data: Data, out: Out, methods: Methods = "selfparam,ft-s,ft-c",
               t: Annotated[int, typer.Option("--t", help="contexts injected one after another")] = 10,
               seed: Seed = 0, seeds: Seeds = None, model: Model = "smollm2-135m", device: Device = "auto",
               dtype: Dtype = "auto",
               questions_per_context: QPC = 3, max_new_tokens: MaxNew = None, n_pairs: NPairs = None,
               unrelated: Unrelated = None, unrelated_ratio: UnrelatedRatio = None,
               targets_dir: TargetsDir = None, method_config: MethodConfig = None,
               general: General = False, general_every: GeneralEvery = 0, mmlu: MMLU = None,
               mmlu_subjects: Subjects = None, mmlu_per_subject: PerSubject = 20, wikitext: Wikitext = None,
               ppl_tokens: PplTokens = 4096, articles: Articles = None, exclude: Exclude = None,
               questions: Questions = "facts", fact_phrasings: FactPhrasings = DEFAULT_FACT_PHRASINGS,
               fact_cycle: FactCycle = True, fact_spans: FactSpans = "rules", fact_pronouns: FactPronouns = "drop",
               report_only: ReportOnly = False, targets_only: TargetsOnly = False,
               progress: Progress = True) -> None:
    """Sequential injection of T contexts; after each step every earlier context is asked (retention matrix).
    With --report-only, a stopped run is reported after its last logged step."""
    options = locals()
    options["n"] = options.pop("t")
    _run("sequential", **options)


@eval_app.command()
def recommendation(data: Data, out: Out, methods: Methods = "base,base-cq,ft-c,ft-s,selfparam,rag-bm25,rag-dense",
                   dataset: Annotated[str, typer.Option("--dataset", help="inspired or redial (subfolder of --data)")]
                   = "inspired",
                   n: N = 20, seed: Seed = 0, seeds: Seeds = None, model: Model = "smollm2-135m",
                   device: Device = "auto",
                   dtype: Dtype = "auto", max_new_tokens: MaxNew = None, n_pairs: NPairs = None,
                   unrelated: Unrelated = None, unrelated_ratio: UnrelatedRatio = None,
                   targets_dir: TargetsDir = None, method_config: MethodConfig = None,
                   general: General = False, mmlu: MMLU = None, mmlu_subjects: Subjects = None,
                   mmlu_per_subject: PerSubject = 20, wikitext: Wikitext = None, ppl_tokens: PplTokens = 4096,
                   report_only: ReportOnly = False, progress: Progress = True) -> None:
    """Conversational recommendation: inject the dialogue so far, recommend without it (Recall@1, r1-r4)."""
    _run("recommendation", questions_per_context=1, **locals())


@eval_app.command()
def merge(folders: Annotated[list[Path], typer.Argument(help="run folders of the same task, data and draw")],
          out: Out,
          may_differ: Annotated[Optional[list[str]], typer.Option(
              "--may-differ", help="a setting the runs may differ in because it changes none of the merged methods "
                                   "(e.g. questions, where only FT(C), which reads no target set, ran with other "
                                   "questions); repeat for more")] = None) -> None:
    """One summary table (and plots) from runs of the same task and draw, e.g. baselines and SELF-PARAM run
    apart, or lifelong runs of the same edits (each method may stop at another edit count). Where every run has
    its run log and the same settings, the merged folder has one too: the eval command with every method grows
    or resumes it (the summary's `growable` says whether it can, or why not)."""
    from ..eval.report import merge_runs

    try:
        summary = merge_runs(folders, out, may_differ=tuple(may_differ or ()))["summary_md"]
    except ValueError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(summary.read_text())


@eval_app.command()
def ablate(runs: Annotated[list[str], typer.Argument(help="RUN_DIR:LABEL per run (same task, data, draw, seed, "
                                                          "decoding), e.g. runs/paper:paper runs/facts:facts")],
           out: Out,
           reference: Annotated[str, typer.Option("--reference", help="the labelled method the F1 differences "
                                                                      "are taken against, e.g. 'selfparam[paper]'")]
           = "selfparam[paper]",
           at_step: Annotated[Optional[int], typer.Option("--at-step", help="sequential runs: the figures after "
                                                                            "this many updates (a stopped run, "
                                                                            "reported with --report-only, against "
                                                                            "complete ones); default: the last")]
           = None) -> None:
    """One ablation table from runs that differ in one lever: every method m of the run labelled L becomes
    m[L] (Base(Q) and Base(C+Q) taken once), with F1, recovery, in-context recall, the gold log-prob's
    recovery, intervals, the paired differences against --reference and injection seconds per context."""
    from ..eval.ablation import ablate as ablate_runs
    from ..eval.ablation import parse_run_spec

    try:
        table = ablate_runs([parse_run_spec(r) for r in runs], out, reference, at_step=at_step)["ablation_md"]
    except ValueError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(table.read_text())


from .probes import boundary, conflicts  # noqa: E402  (they reuse the option types above)

eval_app.command("conflicts")(conflicts)
eval_app.command("boundary")(boundary)

if __name__ == "__main__":  # `python -m selfparam.cli.eval TASK ...`, the same as `selfparam eval TASK ...`
    eval_app()
