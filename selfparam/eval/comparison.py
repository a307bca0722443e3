"""The statistics of a QA report, computed from its per-question records (so a merge recomputes them).

Per method (records matched across methods by context id and question):
- `f1`, `em` with `f1_ci`, `em_ci`: the mean over questions and its 95% bootstrap interval;
- `contains` (`_ci`): the share of answers that contain a gold answer as whole words (`metrics.contains_answer`),
  which credits an answer given in a sentence as F1 does not, with `contains_recovery` (the recovered share of
  the in-context gain on it) and `diff_contains_vs_selfparam` (`_ci`), paired;
  computed from each record's prediction and golds, so runs logged before the figure existed have it too;
- `recovery` (`recovery_ci`): the recovered share of the in-context gain, when `base` and `base-cq` ran;
- `in_context_recall` (`_ci`): among questions Base(C+Q) answers with F1 >= 0.5, the share the method
  answers that well, when `base-cq` ran;
- `diff_vs_selfparam` (`_ci`): the method's F1 minus SELF-PARAM's on the same questions, when `selfparam` ran
  (or minus another `reference` method's, e.g. `selfparam[paper]` in an ablation; the key keeps its name);
- `logprob`, `logprob_recovery`, `diff_logprob_vs_selfparam` (each with `_ci`): the same three on the mean
  per-token log-probability of the best gold answer (teacher-forced, asked the way the method answers), a
  continuous figure that does not depend on how the model phrases its answers (recommendation runs get these
  three alone, on the best gold title of each turn). Records of runs made before
  it was recorded have no `logprob`: these use only the questions every method involved has it for, and
  are None when there are none.
Every `_ci` has a twin `_ci_by_context`: the interval of a cluster bootstrap that resamples contexts with
all their questions (`stats`' `groups`), wider where a context's questions move together, as they do
after one update. Sequential runs give these on the last step's row and, with the suffix `_diagonal`, on each
context right after its own injection (`f1_diagonal`, `recovery_diagonal_ci`, ...).

The three reference names below are the report's conventions (what "recovery" and "versus SELF-PARAM"
are measured against), not dispatch: every method is run and scored the same way.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from . import stats
from .metrics import best_contains

BASE, UPPER, REFERENCE = "base", "base-cq", "selfparam"
QA_TASKS = ("single", "batch", "sequential")
_STATISTICS = ("f1", "em", "contains", "contains_recovery", "recovery", "in_context_recall", "diff_vs_selfparam",
               "diff_contains_vs_selfparam", "logprob", "logprob_recovery", "diff_logprob_vs_selfparam")
BOOTSTRAP = {"resamples": stats.RESAMPLES, "level": stats.LEVEL, "seed": stats.SEED, "well_f1": stats.WELL}


def is_statistic(key: str) -> bool:
    """Whether a summary key is one this module computes (and a merge must recompute)."""
    key = key.removesuffix("_by_context").removesuffix("_ci").removesuffix("_diagonal")
    return key in _STATISTICS


Key = tuple[str, str]


def _table(records: Iterable[dict]) -> dict[Key, dict]:
    """Each question's record by (context, question), with `contains` (whether the answer holds a gold one)
    computed from its prediction and golds where the record has them: runs logged before the figure existed get
    it too, from what they logged."""
    return {(r["context_id"], r["question"]): _with_contains(r) for r in records}


def _with_contains(record: dict) -> dict:
    if "contains" in record or record.get("prediction") is None or not record.get("golds"):
        return record
    return {**record, "contains": best_contains(record["prediction"], record["golds"])}


def _common(*tables: dict[Key, dict], field: str = "f1") -> list[Key]:
    """Questions every table scored with `field` present, in the first table's order."""
    return [k for k, r in tables[0].items() if r.get(field) is not None
            and all(k in t and t[k].get(field) is not None for t in tables[1:])]


def statistics(records_by_method: dict[str, Sequence[dict]], suffix: str = "",
               reference: str = REFERENCE, logprob_only: bool = False) -> dict[str, dict[str, Any]]:
    """{method: {key: value}} for one set of per-question records per method (see the module doc); with
    `logprob_only`, the three log-prob statistics alone (records without F1)."""
    tables = {m: _table(rs) for m, rs in records_by_method.items()}
    out: dict[str, dict[str, Any]] = {}

    def put(row: dict, name: str, keys: Sequence[Key], statistic: Callable[..., stats.Estimate], *scores) -> None:
        """The statistic on the questions `keys`, with its interval over questions and over contexts."""
        est = statistic(*scores)
        by_context = statistic(*scores, groups=[k[0] for k in keys])
        row[name + suffix], row[name + suffix + "_ci"] = est.value, est.ci
        row[name + suffix + "_ci_by_context"] = by_context.ci

    def put_recovery(row: dict, table: dict[Key, dict], field: str, name: str) -> None:
        if BASE in tables and UPPER in tables:
            keys = _common(table, tables[BASE], tables[UPPER], field=field)
            put(row, name, keys, stats.recovery, [table[k][field] for k in keys],
                [tables[BASE][k][field] for k in keys], [tables[UPPER][k][field] for k in keys])

    def put_difference(row: dict, method: str, table: dict[Key, dict], field: str, name: str) -> None:
        if reference in tables and method != reference:
            keys = _common(table, tables[reference], field=field)
            put(row, name, keys, stats.paired_difference, [table[k][field] for k in keys],
                [tables[reference][k][field] for k in keys])

    for method, table in tables.items():
        row: dict[str, Any] = {}
        every = list(table)
        if not logprob_only:
            put(row, "f1", every, stats.mean_ci, [table[k]["f1"] for k in every])
            put(row, "em", every, stats.mean_ci, [float(table[k]["em"]) for k in every])
            contained = [k for k in every if table[k].get("contains") is not None]
            if contained:
                put(row, "contains", contained, stats.mean_ci, [table[k]["contains"] for k in contained])
                put_recovery(row, table, "contains", "contains_recovery")
            put_recovery(row, table, "f1", "recovery")
            if UPPER in tables:
                keys = _common(table, tables[UPPER])
                put(row, "in_context_recall", keys, stats.in_context_recall, [table[k]["f1"] for k in keys],
                    [tables[UPPER][k]["f1"] for k in keys])
            put_difference(row, method, table, "f1", "diff_vs_selfparam")
            put_difference(row, method, table, "contains", "diff_contains_vs_selfparam")
        scored = [k for k in every if table[k].get("logprob") is not None]
        put(row, "logprob", scored, stats.mean_ci, [table[k]["logprob"] for k in scored])
        put_recovery(row, table, "logprob", "logprob_recovery")
        put_difference(row, method, table, "logprob", "diff_logprob_vs_selfparam")
        out[method] = row
    return out


def report_statistics(task: str, records: Sequence[dict], methods: Sequence[str],
                      reference: str = REFERENCE) -> dict[str, dict[str, Any]]:
    """The statistics of a QA task's report for `methods` (those that finished); for a recommendation run the
    log-prob statistics of the gold titles, turns in the place of questions (each its own context); {} for
    other tasks."""
    if task == "recommendation":
        # keyed by the turn's place in the draw as well as its id: the datasets' turn ids repeat across
        # dialogues (INSPIRED's "test_4" is turn 4 of many a dialogue), and each method logs the draw in order
        turns = {m: [{"context_id": f"{i}: {r['turn_id']}", "question": "", "logprob": r.get("logprob")}
                     for i, r in enumerate(r for r in records if r.get("method") == m)] for m in methods}
        return statistics(turns, reference=reference, logprob_only=True)
    if task not in QA_TASKS:
        return {}
    by_method: dict[str, list[dict]] = {m: [] for m in methods}
    for r in records:
        if r.get("method") in by_method:
            by_method[r["method"]].append(r)
    if task != "sequential":
        return statistics(by_method, reference=reference)
    final, diagonal = {}, {}
    for m, rs in by_method.items():
        last = max((r["step"] for r in rs), default=None)
        final[m] = [r for r in rs if r["step"] == last]
        first_step: dict[str, int] = {}
        for r in rs:  # a context's diagonal cell is the step it was injected at: the first step it is asked
            first_step[r["context_id"]] = min(r["step"], first_step.get(r["context_id"], r["step"]))
        diagonal[m] = [r for r in rs if r["step"] == first_step[r["context_id"]]]
    out = statistics(final, reference=reference)
    for m, row in statistics(diagonal, suffix="_diagonal", reference=reference).items():
        out[m].update(row)
    return out


def level(ci: Sequence[float] | None) -> bool:
    """Whether an interval of a difference contains 0 (the two methods are level)."""
    return ci is not None and ci[0] <= 0 <= ci[1]
