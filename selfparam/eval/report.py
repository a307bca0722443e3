"""A run's folder: the resolved config, per-example predictions, the summary table and the plots.

Layout of `--out DIR`:
    config.json         the resolved settings, library versions and git revision
    predictions.jsonl   one record per (method, question) (per step for sequential runs)
    summary.json        per method: status, metrics (f1/em or r1-r4), storage, timings, retention matrix
    summary.md          the same as tables, plus every failure's error
    *.png               bars (single, batch, recommendation); retention heatmap and F1 curve (sequential)
Every file is written to a temporary name and renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..provenance import provenance
from .comparison import BOOTSTRAP, QA_TASKS, is_statistic, level, report_statistics
from .general import general_change
from .progress import LOG_NAME, RESUMABLE
from .tasks import GENERAL_FIGURES, MethodOutcome, TaskResult

REC_COLUMNS = ("r1", "r2", "r3", "r4", "r1@5", "r2@5", "r3@5", "r4@5")


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in rows))


def write_config(out: Path, config: dict[str, Any]) -> None:
    """`config.json`: what was asked, resolved, plus versions and the git revision (written before the run).

    A run that goes on in a folder with a run log keeps what its earlier config recorded beyond this command:
    the configs of methods it ran that this command does not name (so they are still compared when one of them
    resumes) and, from `merge_runs`, the record of the runs it was merged from."""
    path = Path(out) / "config.json"
    if path.is_file() and (Path(out) / LOG_NAME).is_file():  # a resumed run: `open_run_log` has read it already
        old = json.loads(path.read_text(encoding="utf-8"))
        named = set(config.get("settings", {}).get("methods") or ()) | set(config.get("method_configs") or {})
        carried = {k: v for k, v in (old.get("method_configs") or {}).items() if k not in named}
        if carried:
            config = {**config, "method_configs": {**carried, **config.get("method_configs", {})}}
        if "merged_from" in old:
            config = {**config, "merged_from": old["merged_from"]}
    write_json(path, {**config, **provenance()})


def _not_ok(result: TaskResult) -> list[str]:
    """The report's closing sections: methods that failed (with their error) and, in a report-only run,
    those the run log holds only part of."""
    lines = []
    for status, heading in (("failed", "Failures"), ("partial", "Not finished yet (partial: the units logged so far)")):
        outcomes = [o for o in result.outcomes if o.status == status]
        if outcomes:
            lines += ["", f"## {heading}", "", *(f"- `{o.name}`: {_logged(o)}{o.error}" for o in outcomes)]
    return lines


def _logged(o: MethodOutcome) -> str:
    """How much of a partial method the run log holds, so its row's figures can be read (failed: nothing)."""
    if o.status != "partial":
        return ""
    return f"{o.n_injections} injections and {o.n_questions} questions logged; "


def outcome_dict(o: MethodOutcome, statistics: dict[str, Any] | None = None) -> dict[str, Any]:
    """A method's summary entry: metrics (and their statistics) flattened beside its costs, so
    `summary["methods"][m]["f1"]` works."""
    row: dict[str, Any] = {"status": o.status, **o.metrics, **(statistics or {}), "storage_bytes": o.storage_bytes,
                           "inject_seconds": o.inject_seconds, "answer_latency": o.answer_latency,
                           "n_injections": o.n_injections, "n_questions": o.n_questions}
    if o.retention is not None:
        row["retention"] = o.retention
    row.update(o.extra)
    if o.status != "ok":
        row["error"] = o.error
        row["traceback"] = o.traceback
    return row


def result_statistics(result: TaskResult) -> dict[str, dict[str, Any]]:
    """Per finished (or, in a report-only run, partial) method, the bootstrap statistics of its records (QA
    tasks; see `comparison`: comparisons use the questions both methods scored)."""
    names = [o.name for o in result.outcomes if o.status in ("ok", "partial")]
    return report_statistics(result.task, result.records, names)


def general_changes(result: TaskResult) -> dict[str, dict[str, Any]]:
    """Per method, how its general ability moved from the base model's (`general_before`), with paired
    intervals (`general.general_change`): after its last injection at the top level, and with `--general-every`
    per measured step under `by_step`. Empty where the run measured none or lacks the per-item figures."""
    before = result.extra.get("general_before")
    if not isinstance(before, dict):
        return {}
    out: dict[str, dict[str, Any]] = {}
    for o in result.outcomes:
        change: dict[str, Any] = general_change(before, o.extra)
        by_step = {step: general_change(before, figures)
                   for step, figures in (o.extra.get("general_by_step") or {}).items()
                   if step != "0" and isinstance(figures, dict)}
        if any(by_step.values()):
            change["by_step"] = by_step
        if change:
            out[o.name] = change
    return out


def summary_dict(result: TaskResult) -> dict[str, Any]:
    statistics = result_statistics(result)
    summary = {"task": result.task, **result.extra}
    if result.task in QA_TASKS or result.task == "recommendation":
        summary["bootstrap"] = BOOTSTRAP
    summary["methods"] = {o.name: outcome_dict(o, statistics.get(o.name)) for o in result.outcomes}
    for name, change in general_changes(result).items():  # recomputed on every write (a merged row's copy replaced)
        summary["methods"][name]["general_change"] = change
    return summary


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _bytes(n: int | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def with_ci(value: Any, ci: list[float] | None, signed: bool = False) -> str:
    """`0.123 [0.100, 0.150]`; a signed difference whose interval holds 0 reads `level (...)`."""
    if value is None:
        return "–"
    f = "{:+.3f}" if signed else "{:.3f}"
    text = f.format(value) + (f" [{f.format(ci[0])}, {f.format(ci[1])}]" if ci else "")
    return f"level ({text})" if signed and level(ci) else text


_STAT_COLUMNS = (("F1 [95% CI]", "f1", False), ("EM [95% CI]", "em", False), ("contains a gold", "contains", False),
                 ("recovery", "recovery", False), ("in-context recall", "in_context_recall", False),
                 ("F1 − SELF-PARAM", "diff_vs_selfparam", True),
                 ("contains − SELF-PARAM", "diff_contains_vs_selfparam", True),
                 ("log-prob recovery", "logprob_recovery", False))


_REC_STAT_COLUMNS = (("gold-title log-prob [95% CI]", "logprob", False),
                     ("log-prob recovery", "logprob_recovery", False),
                     ("log-prob − SELF-PARAM (nats/token)", "diff_logprob_vs_selfparam", True))


def _stat_cells(row: dict[str, Any], suffix: str = "", columns=_STAT_COLUMNS) -> list[str]:
    return [with_ci(row.get(key + suffix), row.get(key + suffix + "_ci"), signed) for _, key, signed in columns]


LIFELONG_COLUMNS = ("reliability", "generality", "locality",  # teacher-forced, then by greedy generation
                    "greedy_reliability", "greedy_generality", "greedy_locality")
# lifelong.retrieval_figures, for methods that retrieve
RETRIEVAL_COLUMNS = ("retrieval_reliability", "retrieval_generality", "retrieval_locality",
                     "reliability_when_retrieved", "reliability_when_missed")


def lifelong_markdown(result: TaskResult, title: str | None = None) -> str:
    """One row per method and edit count, then latency / MMLU per method and failures."""
    extra = result.extra
    lines = [f"# {title or 'Lifelong editing on ' + str(extra.get('data', ''))}", "",
             f"Model {extra.get('model')}; command: `{extra.get('command')}`", "",
             "| method | edits | " + " | ".join(LIFELONG_COLUMNS) + " | edit ms | storage KB |",
             "|" + "---|" * (len(LIFELONG_COLUMNS) + 4)]
    notes = []
    for o in result.outcomes:
        for t in sorted((k for k in o.extra if k.isdigit()), key=int):
            m = o.extra[t]
            lines.append(f"| {o.name} | {t} | " + " | ".join(_fmt(m.get(k)) for k in LIFELONG_COLUMNS)
                         + f" | {_fmt(m.get('edit_ms'), 1)} | {_fmt(m['storage_bytes'] / 1024, 0)} |")
        lat = o.extra.get("latency_ms", {})
        if lat:
            notes.append(f"- {o.name}: answer latency (ms/query, {extra.get('config', {}).get('max_new_tokens')} new "
                         "tokens): " + ", ".join(f"{k} {v:.0f}" for k, v in lat.items())
                         + (f"; MMLU {o.extra['mmlu_before']:.3f} before, {o.extra['mmlu_after']:.3f} after "
                            f"{o.extra['mmlu_after_edits']} edits" if "mmlu_after" in o.extra else ""))
    lines += ["", *notes]
    retrieval = [(o.name, t, o.extra[t]) for o in result.outcomes
                 for t in sorted((k for k in o.extra if k.isdigit()), key=int) if "retrieval_reliability" in o.extra[t]]
    if retrieval:
        lines += ["", "Where a retrieving method's reliability goes (`retrieval_*`: the edit prompt / rephrase "
                  "retrieves its own edit first, a locality prompt retrieves nothing; reliability among the edit "
                  "prompts that did and did not retrieve their edit):", "",
                  "| method | edits | " + " | ".join(RETRIEVAL_COLUMNS) + " |",
                  "|" + "---|" * (len(RETRIEVAL_COLUMNS) + 2)]
        lines += [f"| {name} | {t} | " + " | ".join(_fmt(m.get(k)) for k in RETRIEVAL_COLUMNS) + " |"
                  for name, t, m in retrieval]
    return "\n".join(lines + _not_ok(result)) + "\n"


def summary_markdown(result: TaskResult, title: str | None = None) -> str:
    """The summary as Markdown tables: one row per method (QA tasks: with bootstrap intervals), then
    retention matrices and failures."""
    if result.task == "lifelong":
        return lifelong_markdown(result, title)
    qa = result.task in QA_TASKS
    rec = result.task == "recommendation"
    statistics = result_statistics(result) if qa or rec else {}
    columns = REC_COLUMNS if rec else ()
    if result.task == "sequential":
        columns = ("f1_all",)
    general_keys = sorted({k for o in result.outcomes for k in o.extra if k in ("mmlu_acc", "wikitext_ppl")})
    lines = [f"# {title or result.task}", ""]
    lines += [f"- {k}: {v}" for k, v in result.extra.items() if not isinstance(v, (dict, list))]
    lines.append("")
    stat_columns = _STAT_COLUMNS if qa else _REC_STAT_COLUMNS if rec else ()
    stat_headers = [h for h, _, _ in stat_columns]
    header = ["method", "status", *stat_headers, *columns, *general_keys, "storage at inference", "inject s/update",
              "answer s/question"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for o in result.outcomes:
        stat_cells = _stat_cells(statistics.get(o.name, {}), columns=stat_columns)
        cells = [o.name, o.status, *stat_cells, *(_fmt(o.metrics.get(c)) for c in columns),
                 *(_fmt(o.extra.get(k), 2) for k in general_keys), _bytes(o.storage_bytes),
                 _fmt(o.inject_seconds, 2), _fmt(o.answer_latency, 2)]
        lines.append("| " + " | ".join(cells) + " |")
    if qa:
        lines += ["", "Intervals: 95% bootstrap over questions. recovery = (F1 − F1 Base(Q)) / (F1 Base(C+Q) − "
                  "F1 Base(Q)); in-context recall: among questions Base(C+Q) answers with F1 >= 0.5, the share the "
                  "method answers as well; contains a gold: the share of answers that hold a gold answer as whole "
                  "words (an answer in a sentence counts as a bare span does); F1 − SELF-PARAM, contains − "
                  "SELF-PARAM: paired differences on the same questions, `level` when the interval contains 0; "
                  "log-prob recovery: recovery on the mean per-token log-probability of the best gold answer "
                  "(teacher-forced), which does not depend on how the model phrases its answers (summary.json also "
                  "has `logprob`, `diff_logprob_vs_selfparam` and `contains_recovery`)."]
        lines += _by_context_lines(result, statistics)
    if rec:
        lines += ["", "Intervals: 95% bootstrap over turns. gold-title log-prob: the mean per-token log-probability of "
                  "the turn's best gold title as the answer (teacher-forced), which does not need the model to list "
                  "titles; its recovery = (LP − LP Base(Q)) / (LP Base(C+Q) − LP Base(Q)); − SELF-PARAM: paired "
                  "difference on the same turns, `level` when its interval contains 0. r1–r4: the paper's recall."]
    before = result.extra.get("general_before")
    changes = general_changes(result)  # bootstrap intervals: computed once for both tables below
    if isinstance(before, dict):
        lines += ["", "General ability of the base model before any injection: "
                  + ", ".join(f"{k} {_fmt(before[k], 3)}" for k, _ in GENERAL_FIGURES if k in before)]
        lines += _general_change_lines(changes)
    if result.task == "sequential":
        lines += ["", "Columns above: after the last injection, over all contexts; `f1_all` every cell of the "
                  "retention matrix.", "", "## Right after each context's own injection (the diagonal)", "",
                  "| method | " + " | ".join(h for h, _, _ in _STAT_COLUMNS) + " |",
                  "|" + "---|" * (len(_STAT_COLUMNS) + 1)]
        for o in result.outcomes:
            if o.name in statistics:
                lines.append(f"| {o.name} | " + " | ".join(_stat_cells(statistics[o.name], "_diagonal")) + " |")
        lines += _general_by_step_lines(result, changes)
        for o in result.outcomes:
            if o.retention is not None:
                lines += _matrix_lines(f"Retention F1[t][i]: {o.name}", o.retention)
        for o in result.outcomes:
            matrix = o.extra.get("retention_logprob")
            if matrix and any(v is not None for row in matrix for v in row):
                lines += _matrix_lines(f"Retention of the gold answers' log-probability (nats/token) LP[t][i]: "
                                       f"{o.name}", matrix)
    return "\n".join(lines + _not_ok(result)) + "\n"


_BY_CONTEXT_COLUMNS = (("F1", "f1", False), ("recovery", "recovery", False),
                       ("F1 − SELF-PARAM", "diff_vs_selfparam", True),
                       ("contains − SELF-PARAM", "diff_contains_vs_selfparam", True),
                       ("log-prob recovery", "logprob_recovery", False),
                       ("log-prob − SELF-PARAM (nats/token)", "diff_logprob_vs_selfparam", True))


def _by_context_lines(result: TaskResult, statistics: dict[str, dict[str, Any]]) -> list[str]:
    """The main figures again with intervals that resample contexts (all of a context's questions together)."""
    rows = [(o.name, statistics[o.name]) for o in result.outcomes if o.name in statistics]
    if not rows:
        return []
    lines = ["", "Intervals over contexts (a cluster bootstrap: each resample draws contexts with all their questions, "
             "so questions that moved together with one update count once; `_ci_by_context` in summary.json)"
             + (", after the last injection" if result.task == "sequential" else "") + ":", "",
             "| method | " + " | ".join(h for h, _, _ in _BY_CONTEXT_COLUMNS) + " |",
             "|" + "---|" * (len(_BY_CONTEXT_COLUMNS) + 1)]
    for name, row in rows:
        lines.append(f"| {name} | " + " | ".join(with_ci(row.get(key), row.get(key + "_ci_by_context"), signed)
                                                 for _, key, signed in _BY_CONTEXT_COLUMNS) + " |")
    return lines


def _general_by_step_lines(result: TaskResult, changes: dict[str, dict[str, Any]]) -> list[str]:
    """Sequential runs with `--general-every`: a row per method and measured step (0 = the base model)."""
    rows = [(o.name, steps, figures) for o in result.outcomes
            for steps, figures in (o.extra.get("general_by_step") or {}).items()]
    if not rows:
        return []
    keys = [k for k, _ in GENERAL_FIGURES if any(k in figures for _, _, figures in rows)] or ["general"]
    by_steps = {name: change.get("by_step", {}) for name, change in changes.items()}  # (`general_changes`)
    shown = [(key, head) for key, head in _CHANGE_COLUMNS
             if any(key in step for by_step in by_steps.values() for step in by_step.values())]
    header = [*keys, *(head for _, head in shown)]
    lines = ["", "## General ability by number of injections (0: the base model)", "",
             "| method | injections | " + " | ".join(header) + " |", "|" + "---|" * (len(header) + 2)]
    for name, steps, figures in rows:
        change = by_steps.get(name, {}).get(steps, {})
        cells = [_fmt(figures.get(k), 3) for k in keys] if "general_error" not in figures \
            else [str(figures["general_error"])] + [""] * (len(keys) - 1)
        cells += [with_ci(change.get(key), change.get(key + "_ci"), signed=True) for key, _ in shown]
        lines.append(f"| {name} | {steps} | " + " | ".join(cells) + " |")
    if shown:
        lines += ["", _CHANGE_NOTE]
    return lines


_CHANGE_COLUMNS = (("wikitext_ppl_change", "perplexity change vs base [95% CI]"),
                   ("mmlu_change", "MMLU − base [95% CI]"))
_CHANGE_NOTE = ("Changes against the base model, paired: perplexity as a relative change (+0.050 = 5% higher) with "
                "the WikiText-2 blocks of 64 tokens resampled together, MMLU as accuracy after minus before with the "
                "same questions resampled together (`general_change` in summary.json).")


def _general_change_lines(changes: dict[str, dict[str, Any]]) -> list[str]:
    """After the last injection, each method's general ability against the base model, with paired intervals."""
    rows = [(name, change) for name, change in changes.items()
            if any(key in change for key, _ in _CHANGE_COLUMNS)]
    if not rows:
        return []
    lines = ["", "| method (after its last injection) | " + " | ".join(h for _, h in _CHANGE_COLUMNS) + " |",
             "|" + "---|" * (len(_CHANGE_COLUMNS) + 1)]
    for name, change in rows:
        lines.append(f"| {name} | " + " | ".join(with_ci(change.get(key), change.get(key + "_ci"), signed=True)
                                                 for key, _ in _CHANGE_COLUMNS) + " |")
    return lines + ["", _CHANGE_NOTE]


def _matrix_lines(heading: str, matrix: list[list[float | None]]) -> list[str]:
    """A retention matrix as a Markdown table under its own heading: a row per step, a column per context."""
    lines = ["", f"## {heading}", "", "| after step | " + " | ".join(f"c{i + 1}" for i in range(len(matrix))) + " |",
             "|" + "---|" * (len(matrix) + 1)]
    for s, row in enumerate(matrix):
        lines.append(f"| {s + 1} | " + " | ".join(_fmt(v, 2) if v is not None else "" for v in row) + " |")
    return lines


def plots_wanted() -> bool:
    """Whether reports draw their PNG plots: yes, unless the environment says `SELFPARAM_PLOTS=0` (headless
    batch runs that read only the tables, and the fast test tier)."""
    value = os.environ.get("SELFPARAM_PLOTS", "1")
    if value not in ("0", "1"):
        raise ValueError(f"SELFPARAM_PLOTS: must be 0 (no plots) or 1 (plots), got {value!r}")
    return value == "1"


def write_report(out: Path, result: TaskResult, title: str | None = None, plots: bool | None = None) -> dict[str, Path]:
    """Write predictions, summaries and plots (unless `plots` is False, by default `plots_wanted()`) into
    `out`; returns the paths written by name."""
    plots = plots_wanted() if plots is None else plots
    out = Path(out)
    paths = {"predictions": out / "predictions.jsonl", "summary_json": out / "summary.json",
             "summary_md": out / "summary.md"}
    write_jsonl(paths["predictions"], result.records)
    write_json(paths["summary_json"], summary_dict(result))
    atomic_write_text(paths["summary_md"], summary_markdown(result, title))
    if plots:
        from .plots import plot_result

        paths.update(plot_result(result, out))
    return paths


# ---------------------------------------------------------------- merging runs

METRIC_KEYS = ("f1", "em", "f1_diagonal", "f1_all", *REC_COLUMNS)
_COST_KEYS = ("status", "storage_bytes", "inject_seconds", "answer_latency", "n_injections", "n_questions",
              "retention", "error", "traceback")
# settings that must agree for two runs' rows to share a table (lifelong: the edits are the data file's first T
# records, so the same file means the same edits, and each method may stop at another count)
SAME = ("task", "data", "n", "seed", "model", "questions_per_context", "max_new_tokens", "k", "dataset", "articles")
_SAME_LIFELONG = ("task", "data", "model", "eval_sample", "gen_sample", "max_new_tokens", "seed")


def outcome_from_dict(name: str, row: dict[str, Any]) -> MethodOutcome:
    """The inverse of `outcome_dict`."""
    return MethodOutcome(
        name=name, status=row["status"], error=row.get("error"), traceback=row.get("traceback"),
        metrics={k: row[k] for k in METRIC_KEYS if k in row}, storage_bytes=row.get("storage_bytes"),
        inject_seconds=row.get("inject_seconds"), answer_latency=row.get("answer_latency"),
        n_injections=row.get("n_injections", 0), n_questions=row.get("n_questions", 0),
        retention=row.get("retention"),
        # the statistics are recomputed from the merged records, never carried over
        extra={k: v for k, v in row.items() if k not in METRIC_KEYS and k not in _COST_KEYS and not is_statistic(k)})


def merge_runs(folders: list[Path], out: Path, title: str | None = None,
               may_differ: tuple[str, ...] = ()) -> dict[str, Path]:
    """One report from several run folders of the same task, data, draw and decoding (for example the
    cheap baselines and the weight methods run apart). Refuses runs whose settings or drawn items differ,
    and a method that appears in two runs.

    Where every folder holds its run log and all their other settings agree too (but for those in
    `RESUMABLE`, which include the methods, and the ones named in `may_differ`: settings the caller vouches
    change none of the merged methods, e.g. the target questions for FT(C), which reads no target set), the
    merged folder also gets one run log of every method's logged units and a `config.json` naming every
    method with its config: the `selfparam eval` command then grows or resumes it like any run, with these
    methods and others beside them (the report says whether it can: `growable`). The merged runs are
    recorded in `config.json` as `merged_from`, kept when the run grows."""
    if len(folders) < 2:
        raise ValueError("merge: give at least two run folders")
    if (Path(out) / LOG_NAME).exists():
        raise ValueError(f"merge: {out} already holds a run log ({LOG_NAME}); choose another --out")
    configs, summaries, records = [], [], []
    for folder in map(Path, folders):
        for name in ("config.json", "summary.json", "predictions.jsonl"):
            if not (folder / name).is_file():
                old_lifelong = name == "config.json" and (folder / "summary.json").is_file()
                raise ValueError(f"merge: {folder} is not a run folder (no {name})" + (
                    "; lifelong reports written before the shared harness cannot be merged: run them again"
                    if old_lifelong else ""))
        configs.append(json.loads((folder / "config.json").read_text(encoding="utf-8")))
        summaries.append(json.loads((folder / "summary.json").read_text(encoding="utf-8")))
        records += [json.loads(line) for line in (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
                    if line.strip()]
    first = configs[0]["settings"]
    same = _SAME_LIFELONG if first.get("task") == "lifelong" else SAME
    for folder, config in zip(folders[1:], configs[1:]):
        differ = [k for k in same if config["settings"].get(k) != first.get(k)]
        if config.get("items") != configs[0].get("items"):
            differ.append("items")
        if differ:
            raise ValueError(f"merge: {folder} differs from {folders[0]} in {', '.join(differ)}")
    outcomes, seen = [], set()
    for folder, summary in zip(folders, summaries):
        for name, row in summary["methods"].items():
            if name in seen:
                raise ValueError(f"merge: method {name!r} appears in more than one run ({folder})")
            seen.add(name)
            outcomes.append(outcome_from_dict(name, row))
    extra: dict[str, Any] = {}
    for summary in summaries:  # e.g. general ability before injection, measured by whichever run had it
        for k, v in summary.items():
            if k not in ("task", "methods", "wall_seconds"):
                extra.setdefault(k, v)
    extra["merged_from"] = [str(f) for f in folders]
    out = Path(out)
    names = {str(f): list(summary["methods"]) for f, summary in zip(folders, summaries)}
    log, why_not = _merged_log(folders, configs, names, may_differ)
    extra["growable"] = why_not or True
    result = TaskResult(summaries[0]["task"], outcomes, records, extra)
    # the settings the runs share (so a merged folder merges again, and grows where it has a run log), and each
    # run's own config
    config = {"settings": {**first, "methods": [n for f in map(str, folders) for n in names[f]]},
              "items": configs[0].get("items"), "merged_from": {str(f): c for f, c in zip(folders, configs)}}
    if log is not None:
        config["method_configs"] = {n: c["method_configs"][n] for f, c in zip(map(str, folders), configs)
                                    for n in names[f] if n in c.get("method_configs", {})}
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / LOG_NAME, "".join(json.dumps(e, default=str) + "\n" for e in log))
    write_json(out / "config.json", {**config, **provenance()})
    return write_report(out, result, title)


def _merged_log(folders: list[Path], configs: list[dict[str, Any]], names: dict[str, list[str]],
                may_differ: tuple[str, ...]) -> tuple[list[dict] | None, str | None]:
    """Every merged method's run-log lines, each from its own run (`merge_runs`), or None and why not."""
    missing = [str(f) for f in folders if not (Path(f) / LOG_NAME).is_file()]
    if missing:
        return None, f"no run log in {', '.join(missing)}"
    first = configs[0]["settings"]
    free = set(RESUMABLE) | set(may_differ)
    for folder, config in zip(folders[1:], configs[1:]):
        differ = sorted(k for k in set(first) | set(config["settings"])
                        if k not in free and config["settings"].get(k) != first.get(k))
        if differ:
            return None, (f"{folder} differs from {folders[0]} in {', '.join(differ)} (name the settings that change "
                          f"none of the merged methods with --may-differ)")
    lines = []
    for folder in folders:
        path = Path(folder) / LOG_NAME
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                entry = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                raise ValueError(f"merge: {path}:{n} is not valid JSON (resume that run once to drop a torn last "
                                 f"line, then merge)") from None
            if entry is not None and entry.get("method") in names[str(folder)]:
                lines.append(entry)
    return lines, None
