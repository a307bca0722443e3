"""An ablation table: the same method run with one lever changed, one labelled row per run, in one table.

A lever that is a run-wide setting (`--questions facts`, a `--method-config` of SELF-PARAM's) needs its own
run, so `selfparam` appears in several runs; `merge` refuses that, `ablate` labels it instead:

    selfparam eval ablate runs/paper:paper runs/facts:facts --reference 'selfparam[paper]' --out runs/ablation

Every method `m` of the run labelled `L` becomes `m[L]`, except the baselines `base` and `base-cq`, which are
the same in every run (greedy decoding, same draw) and are taken once, so recovery and in-context recall
mean the same for every row. The paired difference of F1 is taken against `reference` on the same questions.
The runs must share task, data, draw, seed, model and decoding (`report.SAME`); the settings that differ
between them are listed per label, so the table says what each lever is.

Output in `out/`: `ablation.json` (the figures, the runs and what differs, provenance) and `ablation.md`.
Sequential runs give the figures after the last injection, and beside them the gold log-prob recovery right
after each context's own injection (the diagonal), the share of it still there at the end, and every row's
retention matrices (F1 and gold log-prob) drawn side by side: `retention.png`, `retention_logprob.png`.
`--at-step N` takes them all after the N-th update instead, so a run stopped part-way (its report written with
`eval sequential --report-only`) is compared with complete ones where both stand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..atomic import atomic_write_text
from ..provenance import provenance
from .comparison import BASE, QA_TASKS, UPPER, level, report_statistics
from .configs import recorded_method_configs
from .general import general_change
from .report import SAME, with_ci, write_json
from .tasks import GENERAL_FIGURES, MethodOutcome, TaskResult, retention_from_records

BASELINES = (BASE, UPPER)
# settings that differ between any two runs without being a lever (where the run went, how it was shown)
_NOT_LEVERS = ("out", "targets_dir", "command", "progress", "methods")
_FIGURES = ("f1", "recovery", "in_context_recall", "diff_vs_reference", "contains", "diff_contains_vs_reference",
            "logprob_recovery", "diff_logprob_vs_reference")
_SOURCE = {"diff_vs_reference": "diff_vs_selfparam", "diff_contains_vs_reference": "diff_contains_vs_selfparam",
           "diff_logprob_vs_reference": "diff_logprob_vs_selfparam"}


def parse_run_spec(text: str) -> tuple[Path, str]:
    """`"runs/facts:facts"` -> (Path("runs/facts"), "facts"): a run folder and its label."""
    folder, sep, label = str(text).rpartition(":")
    if not sep or not folder or not label.strip():
        raise ValueError(f"ablate: {text!r} needs a label: give RUN_DIR:LABEL, e.g. runs/facts:facts")
    if any(c in label for c in "[]"):
        raise ValueError(f"ablate: label {label!r} may not contain [ or ]")
    return Path(folder), label.strip()


def labelled(method: str, label: str) -> str:
    """The name of `method` of the run labelled `label` in the table (baselines keep their name)."""
    return method if method in BASELINES else f"{method}[{label}]"


def _load(folder: Path) -> dict[str, Any]:
    for name in ("config.json", "summary.json", "predictions.jsonl"):
        if not (folder / name).is_file():
            raise ValueError(f"ablate: {folder} is not a run folder (no {name})")
    return {"config": json.loads((folder / "config.json").read_text(encoding="utf-8")),
            "summary": json.loads((folder / "summary.json").read_text(encoding="utf-8")),
            "records": [json.loads(line) for line in (folder / "predictions.jsonl").read_text(encoding="utf-8")
                        .splitlines() if line.strip()]}


def _check_same(folders: Sequence[Path], runs: Sequence[dict]) -> None:
    """Refuse runs that differ in task, data, draw, seed, model or decoding (the runs' shared ground)."""
    first = runs[0]["config"]
    if first.get("settings", {}).get("task") not in QA_TASKS:
        raise ValueError(f"ablate: {folders[0]} is a {first.get('settings', {}).get('task')!r} run; ablations "
                         f"compare QA runs ({', '.join(QA_TASKS)})")
    for folder, run in zip(folders[1:], runs[1:]):
        config = run["config"]
        differ = [k for k in SAME if config.get("settings", {}).get(k) != first["settings"].get(k)]
        if config.get("items") != first.get("items"):
            differ.append("items")
        if differ:
            raise ValueError(f"ablate: {folder} differs from {folders[0]} in {', '.join(differ)}; an ablation "
                             f"compares runs of the same task, data, draw, seed and decoding")


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def differing_settings(configs: Sequence[dict]) -> list[dict[str, Any]]:
    """Per run, {setting: its value} for the settings whose values are not the same in every run: run
    settings (dotted for nested ones) and `method_configs.<method>.<field>`, a method's config compared
    among the runs that ran that method."""
    flats = []
    for config in configs:
        settings = {k: v for k, v in config.get("settings", {}).items() if k not in _NOT_LEVERS}
        flats.append({"settings": _flat(settings, ""),
                      "methods": {m: _flat(c, f"method_configs.{m}")
                                  for m, c in (recorded_method_configs(config.get("method_configs")) or {}).items()}})
    differing: list[dict[str, Any]] = [{} for _ in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f["settings"]))
    for key in keys:
        values = [f["settings"].get(key) for f in flats]
        if any(v != values[0] for v in values):
            for out, v in zip(differing, values):
                out[key] = v
    methods = list(dict.fromkeys(m for f in flats for m in f["methods"]))
    for method in methods:
        having = [(out, f["methods"][method]) for out, f in zip(differing, flats) if method in f["methods"]]
        for key in dict.fromkeys(k for _, fields in having for k in fields):
            values = [fields.get(key) for _, fields in having]
            if any(v != values[0] for v in values):
                for out, v in zip((o for o, _ in having), values):
                    out[key] = v
    return differing


def _question_key(r: dict) -> tuple:
    return r["context_id"], r["question"], r.get("step")


def _check_baseline(method: str, kept: tuple[Path, list[dict]], other: tuple[Path, list[dict]]) -> None:
    """A baseline run twice must have scored every question both runs asked the same (greedy decoding)."""
    first = {_question_key(r): r["f1"] for r in kept[1]}
    differ = [k for k, f1 in ((_question_key(r), r["f1"]) for r in other[1]) if k in first and first[k] != f1]
    if differ:
        context, question, _ = differ[0]
        raise ValueError(f"ablate: {method!r} scores differently in {other[0]} and {kept[0]} on {len(differ)} "
                         f"question(s) (first: {context} {question!r}); the baselines must be the same in every run "
                         f"(greedy decoding of the same draw): rerun them, or leave them out of one of the runs")


def _inject_seconds_per_context(row: dict[str, Any], records: Sequence[dict]) -> float | None:
    """Mean injection seconds per context: all injection time (seconds per update x updates) over the
    contexts the method was asked about (a batch update holds several)."""
    per_update, updates = row.get("inject_seconds"), row.get("n_injections") or 0
    contexts = len({r["context_id"] for r in records})
    if per_update is None or not updates or not contexts:
        return None
    return per_update * updates / contexts


def ablate(runs: Sequence[tuple[Path, str]], out: Path, reference: str, title: str | None = None,
           at_step: int | None = None) -> dict[str, Path]:
    """Write `ablation.json` and `ablation.md` into `out` for the labelled run folders `runs` [(folder,
    label)], with the paired F1 difference against the labelled method `reference` (e.g.
    `selfparam[paper]`). Checks everything before writing anything; returns the paths written.

    `at_step` N (sequential runs): every figure after the N-th update, the rows and columns of the first N
    contexts, so a run stopped part-way (reported with `--report-only`) is compared with complete ones where
    both stand; every compared method must have reached it."""
    runs = [(Path(folder), label) for folder, label in runs]
    if len(runs) < 2:
        raise ValueError("ablate: give at least two labelled run folders (RUN_DIR:LABEL)")
    labels = [label for _, label in runs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"ablate: each run needs its own label, got {', '.join(labels)}")
    folders = [folder for folder, _ in runs]
    out = Path(out)
    if any(out.resolve() == f.resolve() for f in folders):
        raise ValueError(f"ablate: --out {out} is one of the run folders; choose another")
    loaded = [_load(folder) for folder in folders]
    _check_same(folders, loaded)
    task = loaded[0]["config"]["settings"]["task"]
    if at_step is not None:
        if task != "sequential":
            raise ValueError(f"ablate: --at-step compares sequential runs after a number of updates; these are {task}")
        if at_step < 1:
            raise ValueError(f"ablate: --at-step counts updates from 1, got {at_step}")
        for folder, run in zip(folders, loaded):
            short = [m for m in run["summary"]["methods"]
                     if m not in BASELINES and not any(r.get("method") == m and r.get("step") == at_step - 1
                                                       for r in run["records"])]
            if short:
                raise ValueError(f"ablate: {', '.join(short)} in {folder} did not reach update {at_step}")

    rows: dict[str, dict[str, Any]] = {}  # labelled method -> its summary row, label and folder
    records: list[dict] = []
    records_of: dict[str, list[dict]] = {}
    baseline_from: dict[str, tuple[Path, list[dict]]] = {}
    for (folder, label), run in zip(runs, loaded):
        for method, row in run["summary"]["methods"].items():
            own = [r for r in run["records"] if r.get("method") == method]
            name = labelled(method, label)
            if method in BASELINES and method in baseline_from:
                _check_baseline(method, baseline_from[method], (folder, own))
                continue
            if method in BASELINES:
                baseline_from[method] = (folder, own)
            rows[name] = {"row": row, "label": None if method in BASELINES else label, "folder": folder,
                          "before": run["summary"].get("general_before")}
            records_of[name] = own
            records += [{**r, "method": name} for r in own]
    # a method that failed part-way keeps the contexts it finished (a generator that could not write enough
    # pairs for one paragraph, say): its rows count, and every figure is taken on the same questions below
    finished = [m for m, v in rows.items() if v["row"].get("status") in ("ok", "partial")
                or (v["row"].get("status") == "failed" and records_of[m])]
    if reference not in rows:
        raise ValueError(f"ablate: unknown reference {reference!r}; the labelled methods are {', '.join(rows)}")
    if reference not in finished:
        raise ValueError(f"ablate: the reference {reference!r} did not finish ({rows[reference]['row'].get('status')})")
    questions = {"scored": None, "left_out": 0}
    asked = dict(records_of)  # every context each method injected, for its seconds per context
    if at_step is not None:  # the first `at_step` updates' rows
        records = [r for r in records if (r.get("step") or 0) < at_step]
        records_of = {m: [r for r in rs if (r.get("step") or 0) < at_step] for m, rs in records_of.items()}
    if task != "sequential":  # every row on the questions every compared method scored
        scored = [{(r["context_id"], r["question"]) for r in records_of[m]} for m in finished]
        common = set.intersection(*scored)
        questions = {"scored": len(common), "left_out": len(set.union(*scored) - common)}
        records = [r for r in records if (r["context_id"], r["question"]) in common]
        records_of = {m: [r for r in rs if (r["context_id"], r["question"]) in common] for m, rs in records_of.items()}
    statistics = report_statistics(task, records, finished, reference=reference)
    step = {m: max((r.get("step") or 0 for r in rs), default=0) for m, rs in records_of.items()}

    methods: dict[str, dict[str, Any]] = {}
    order = [reference] + [m for m in rows if m != reference and m not in BASELINES] + \
        [m for m in rows if m in BASELINES and m != reference]
    for name in order:
        row, s = rows[name]["row"], statistics.get(name, {})
        final = [r for r in records_of[name] if (r.get("step") or 0) == step[name]]
        entry: dict[str, Any] = {"label": rows[name]["label"], "status": row.get("status")}
        for key in _FIGURES:
            source = _SOURCE.get(key, key)  # the statistics' key name
            entry[key], entry[key + "_ci"] = s.get(source), s.get(source + "_ci")
            entry[key + "_ci_by_context"] = s.get(source + "_ci_by_context")
        entry["level"] = level(entry["diff_vs_reference_ci"]) if entry["diff_vs_reference"] is not None else None
        entry["logprob_level"] = (level(entry["diff_logprob_vs_reference_ci"])
                                  if entry["diff_logprob_vs_reference"] is not None else None)
        if task == "sequential":
            for key in ("logprob_recovery_diagonal", "logprob_recovery_diagonal_ci"):
                entry[key] = s.get(key)
            entry["retention"] = retention_from_records(records_of[name], "f1")
            entry["retention_logprob"] = retention_from_records(records_of[name], "logprob")
        general = _general_entry(rows[name], rows[reference], at_step, is_reference=name == reference)
        if general:
            entry["general"] = general
        entry["inject_seconds_per_context"] = _inject_seconds_per_context(row, asked[name])
        entry["n_questions"] = len(final) if name in statistics else 0
        if row.get("error"):
            entry["error"] = row["error"]
        methods[name] = entry
    differing = differing_settings([run["config"] for run in loaded])
    ablation = {"task": task, "reference": reference, "at_step": at_step,
                "settings": {k: loaded[0]["config"]["settings"].get(k) for k in SAME},
                "runs": {label: {"folder": str(folder), "differs": d}
                         for (folder, label), d in zip(runs, differing)},
                "methods": methods, "questions": questions, "bootstrap": loaded[0]["summary"].get("bootstrap"),
                **provenance()}
    paths = {"ablation_json": out / "ablation.json", "ablation_md": out / "ablation.md"}
    text = ablation_markdown(ablation, title)
    write_json(paths["ablation_json"], ablation)
    atomic_write_text(paths["ablation_md"], text)
    if task == "sequential":
        paths.update(_plot_retention(methods, out))
    return paths


def _general_figures(row: dict[str, Any], at_step: int | None) -> dict[str, Any] | None:
    """A summary row's general ability after its last injection, or after update `at_step` where measured."""
    figures = row if at_step is None else (row.get("general_by_step") or {}).get(str(at_step))
    if isinstance(figures, dict) and any(k in figures for k, _ in GENERAL_FIGURES):
        return figures
    return None


def _general_entry(this: dict[str, Any], ref: dict[str, Any], at_step: int | None,
                   is_reference: bool) -> dict[str, Any] | None:
    """A row's perplexity and MMLU with their paired changes against the base model of its run (`vs_base`) and
    against the reference row (`vs_reference`, the same items; `general.general_change`)."""
    figures = _general_figures(this["row"], at_step)
    if figures is None:
        return None
    out: dict[str, Any] = {k: figures.get(k) for k, _ in GENERAL_FIGURES}
    if isinstance(this["before"], dict):
        out["vs_base"] = general_change(this["before"], figures)
    reference = _general_figures(ref["row"], at_step)
    if reference is not None and not is_reference:
        out["vs_reference"] = general_change(reference, figures)
    return out


def _general_markdown(ablation: dict[str, Any]) -> list[str]:
    """Each row's general ability with paired intervals, where the runs measured it (`--general`)."""
    rows = [(name, m["general"]) for name, m in ablation["methods"].items() if m.get("general")]
    if not rows:
        return []
    lines = [f"## General ability after {_after(ablation)}", "",
             "| method | WikiText-2 perplexity | change vs base | change vs reference | MMLU | − base | − reference |",
             "|" + "---|" * 7]
    for name, g in rows:
        base, ref = g.get("vs_base") or {}, g.get("vs_reference") or {}
        is_ref = name == ablation["reference"]

        def cell(change: dict[str, Any], key: str, is_ref: bool = False) -> str:
            return "reference" if is_ref else with_ci(change.get(key), change.get(key + "_ci"), signed=True)

        lines.append(f"| {name} | {_fmt(g.get('wikitext_ppl'), 2)} | {cell(base, 'wikitext_ppl_change')} | "
                     f"{cell(ref, 'wikitext_ppl_change', is_ref)} | {_fmt(g.get('mmlu_acc'), 3)} | "
                     f"{cell(base, 'mmlu_change')} | {cell(ref, 'mmlu_change', is_ref)} |")
    return lines + ["", "Paired 95% bootstrap intervals: perplexity as a relative change (+0.050 = 5% higher) with "
                    "the WikiText-2 blocks of 64 tokens resampled together; MMLU as accuracy minus accuracy on the "
                    "same questions. – where a run predates the per-item figures (recorded since 2026-12-07) or "
                    "measured other items.", ""]


def _fmt(value: Any, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _plot_retention(methods: dict[str, dict[str, Any]], out: Path) -> dict[str, Path]:
    """Every row's retention matrices side by side, one heatmap each, on one colour scale per figure."""
    from .plots import plot_retention

    result = TaskResult("sequential", [
        MethodOutcome(name, retention=m["retention"], extra={"retention_logprob": m["retention_logprob"]})
        for name, m in methods.items() if m.get("retention")], records=[])
    return {"retention_png": plot_retention(result, out / "retention.png"),
            "retention_logprob_png": plot_retention(result, out / "retention_logprob.png", logprob=True)}


def _kept_markdown(ablation: dict[str, Any]) -> list[str]:
    """Sequential: each row's gold log-prob recovery right after each context's own injection and after the
    last one, and the share kept (after the last / diagonal)."""
    after = _after(ablation)
    lines = [f"## What each injection gave, and what is left after {after}", "",
             f"| method | log-prob recovery right after its own injection | after {after} | kept |",
             "|---|---|---|---|"]
    for name, m in ablation["methods"].items():
        diagonal, final = m.get("logprob_recovery_diagonal"), m.get("logprob_recovery")
        if diagonal is None or m["label"] is None:
            continue
        gained = (m.get("logprob_recovery_diagonal_ci") or [0.0])[0] > 0  # a gain to keep, beyond the noise
        kept = f"{final / diagonal:.2f}" if final is not None and gained else "–"
        lines.append(f"| {name} | {with_ci(diagonal, m.get('logprob_recovery_diagonal_ci'))} | "
                     f"{with_ci(final, m.get('logprob_recovery_ci'))} | {kept} |")
    return lines + ["", f"kept: after {after} / right after its own, where the latter's interval lies "
                    "above 0 (– otherwise: there was no gain to keep). Heatmaps, every row side by side: "
                    "`retention.png` (F1), `retention_logprob.png` (the gold answers' mean log-probability, "
                    "nats/token).", ""]


def _after(ablation: dict[str, Any]) -> str:
    """Where sequential figures are taken: after the last injection, or after update N (`at_step`)."""
    return f"update {ablation['at_step']}" if ablation.get("at_step") else "the last injection"


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def ablation_markdown(ablation: dict[str, Any], title: str | None = None) -> str:
    """The table of `ablation.json`: one row per labelled method, the reference first, then each run's
    settings that differ."""
    settings = ablation["settings"]
    data = f" on {Path(str(settings['data'])).name}" if settings.get("data") else ""
    lines = [f"# {title or 'Ablation: ' + str(ablation['task']) + data}",
             "", "Shared by every run: " + ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)
             + f". Reference: `{ablation['reference']}`.", "",
             "| method | status | F1 [95% CI] | recovery | in-context recall | F1 − reference | contains a gold "
             "| contains − reference | log-prob recovery | log-prob − reference | … over contexts | inject s/context "
             "| questions |", "|" + "---|" * 13]
    for name, m in ablation["methods"].items():
        cells = [name, str(m["status"]), with_ci(m["f1"], m["f1_ci"]), with_ci(m["recovery"], m["recovery_ci"]),
                 with_ci(m["in_context_recall"], m["in_context_recall_ci"]),
                 "reference" if name == ablation["reference"] else with_ci(m["diff_vs_reference"],
                                                                          m["diff_vs_reference_ci"], signed=True),
                 with_ci(m["contains"], m["contains_ci"]),
                 "reference" if name == ablation["reference"] else with_ci(m["diff_contains_vs_reference"],
                                                                          m["diff_contains_vs_reference_ci"],
                                                                          signed=True),
                 with_ci(m["logprob_recovery"], m["logprob_recovery_ci"]),
                 "reference" if name == ablation["reference"] else with_ci(m["diff_logprob_vs_reference"],
                                                                          m["diff_logprob_vs_reference_ci"],
                                                                          signed=True),
                 "reference" if name == ablation["reference"] else with_ci(
                     m["diff_logprob_vs_reference"], m.get("diff_logprob_vs_reference_ci_by_context"), signed=True),
                 _seconds(m["inject_seconds_per_context"]), str(m["n_questions"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Intervals: 95% bootstrap over questions. recovery = (F1 − F1 Base(Q)) / (F1 Base(C+Q) − "
              "F1 Base(Q)); in-context recall: among questions Base(C+Q) answers with F1 >= 0.5, the share the method "
              "answers as well; F1 − reference: paired difference on the same questions, `level` when its interval "
              "contains 0; contains a gold: the share of answers holding a gold answer as whole words (an answer in "
              "a sentence counts as a bare span does), with its paired difference. Log-prob: the mean per-token "
              "log-probability of the best gold answer, teacher-forced "
              "(recovery and paired difference as for F1; – where a run predates it); … over contexts: the same "
              "difference with an interval that resamples contexts with all their questions. "
              "Base(Q) and Base(C+Q) are taken once (identical in every run that has them)."
              + (f" Sequential runs: after {_after(ablation)}." if ablation["task"] == "sequential" else ""),
              *([f"Every row is taken on the {ablation['questions']['scored']} questions every method scored "
                 f"({ablation['questions']['left_out']} left out: a method failed part-way; see Failures)."]
                if ablation.get("questions", {}).get("left_out") else []),
              ""]
    if ablation["task"] == "sequential":
        lines += _kept_markdown(ablation)
    lines += _general_markdown(ablation)
    lines += ["## Runs and what differs between them", ""]
    for label, run in ablation["runs"].items():
        differs = ", ".join(f"`{k}` = {json.dumps(v, default=str)}" for k, v in run["differs"].items())
        lines.append(f"- `{label}` ({run['folder']}): {differs or 'no setting differs from the other runs'}")
    failed = [(n, m["error"]) for n, m in ablation["methods"].items() if m.get("error")]
    if failed:
        lines += ["", "## Failures", "", *(f"- `{n}`: {e}" for n, e in failed)]
    return "\n".join(lines) + "\n"
