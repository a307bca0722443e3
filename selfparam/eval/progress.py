"""The run log that makes long runs resumable: `OUT/progress.jsonl`, one line per finished unit of work.

A unit is what a task does between two points where nothing is lost by stopping: one context (single),
one group (batch), one step (sequential), one dialogue turn (recommendation). Its line carries the unit's
per-question records and its costs (and any figures measured within it, e.g. general ability after a
sequential step); a method's last line (`"kind": "method"`) carries its finished row.
Run the same command again and every logged unit is taken from the log instead of being run again: a
finished method is not even built, a single/batch/recommendation method skips its scored units, and a
sequential method replays the logged steps' injections (its weights are not saved between steps) without
asking their questions or measuring their figures again.

Lines are appended and flushed to disk as each unit ends, so an interruption loses at most the unit in
flight. A torn last line (the process died mid-write) is dropped when the log is opened again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..atomic import atomic_write_text

if TYPE_CHECKING:
    from .tasks import Meter, MethodOutcome

LOG_NAME = "progress.jsonl"

# settings that may change between an interrupted run and its resumption (they change no figure): how it is shown
# and written down (the method config file's contents are compared as `method_configs`, not its path), where its
# folder now is (a run folder moved, say from a scratch folder into docs/results, is the same run) and where its
# target-set cache is (keyed by content, so a set is found wherever it lies; by default it moves with the folder),
# and which methods run (each method's units are its own; the configs of those the run already has are compared)
RESUMABLE = ("progress", "command", "method_config", "out", "targets_dir", "methods")


class RunLog:
    """The finished units of one run, read from and appended to `path` (None: kept in memory only)."""

    def __init__(self, path: Path | None = None, n_items: int | None = None):
        """`n_items`: the number of items the run draws, for runs that grow (single, recommendation). A method's
        finished row records it, and a row written over another number (a smaller `--n`, or before rows recorded
        it) is forgotten, so the method runs the units it has not logged and finishes again over all of them.
        That holds however the run got there: grown in one command, or grown, interrupted and resumed with the
        larger `--n` (whose config already says it)."""
        self.path = Path(path) if path is not None else None
        self.n_items = n_items
        self.units: dict[tuple[str, str], dict] = {}
        self.methods: dict[str, dict] = {}
        if self.path is not None and self.path.is_file():
            self._read()
        if n_items is not None:
            self.methods = {m: e for m, e in self.methods.items() if e.get("n_items") == n_items}

    def _read(self) -> None:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        entries = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                if n != len(lines):
                    raise ValueError(f"{self.path}:{n}: not valid JSON; the run log is damaged (move it away to "
                                     f"start the run afresh)") from None
                # the process died while writing the last line: drop it for good
                atomic_write_text(self.path, "".join(json.dumps(e) + "\n" for e in entries))
        for entry in entries:
            if entry.get("kind") == "method":
                self.methods[entry["method"]] = entry
            else:
                self.units[(entry["method"], entry["unit"])] = entry

    def _append(self, entry: dict) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finished(self, method: str) -> dict | None:
        """The logged row of a method that finished (its outcome and records), None otherwise."""
        return self.methods.get(method)

    def records(self, method: str) -> list[dict]:
        """Every logged record of `method`, in the order its units were logged."""
        return [r for (m, _), e in self.units.items() if m == method for r in e["records"]]

    def finish(self, outcome: "MethodOutcome") -> None:
        row = {k: v for k, v in dataclasses.asdict(outcome).items() if k != "traceback"}
        entry = {"kind": "method", "method": outcome.name, "outcome": row}
        if self.n_items is not None:
            entry["n_items"] = self.n_items
        self.methods[outcome.name] = entry
        self._append(entry)

    def replay(self, method: str, unit: str, meter: "Meter", records: list[dict]) -> bool:
        """If `unit` of `method` is logged: add its records and costs and return True (skip the work)."""
        entry = self.units.get((method, unit))
        if entry is None:
            return False
        records.extend(entry["records"])
        meter.add(entry["costs"])
        return True

    def figures(self, method: str, unit: str) -> dict[str, Any]:
        """The figures a logged unit's block stored beside its records (see `unit`); {} if none or not logged."""
        entry = self.units.get((method, unit))
        return dict(entry.get("figures", {})) if entry is not None else {}

    @contextlib.contextmanager
    def unit(self, method: str, unit: str, meter: "Meter", records: list[dict]) -> Iterator[dict[str, Any]]:
        """Log `unit` when the block ends without error: the records it added, the costs it metered, and the
        figures it put in the dict the block is given (e.g. general ability measured after a sequential step;
        `figures` returns them to a resumed run, which then need not measure them again), and the stats of the
        weight updates it ran (`Meter.updates`), where its method trains."""
        before, start, figures, n_updates = meter.costs(), len(records), {}, len(meter.updates)
        yield figures
        after = meter.costs()
        costs = {k: after[k] - before[k] for k in after if k != "storage"} | {"storage": after["storage"]}
        entry = {"kind": "unit", "method": method, "unit": unit, "records": records[start:], "costs": costs}
        if figures:  # absent otherwise: the log lines of runs without figures stay as they were
            entry["figures"] = figures
        if len(meter.updates) > n_updates:  # the unit's weight updates: steps, seconds, the loss left per kind
            entry["updates"] = meter.updates[n_updates:]
        self.units[(method, unit)] = entry
        self._append(entry)


def resume_differences(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """`key.path: old -> new` for every (nested) value that differs, both read as JSON, except top-level
    keys in `ignore`. A key the old record does not have at all was added by a newer version of the code
    since the run started: it is not a difference here (`added_values` lists such keys, and the run's
    resumption refuses those whose value behaves otherwise than the code the run started with).

    >>> resume_differences({"seed": 0, "train": {"lr": 1}}, {"seed": 1, "train": {"lr": 2}, "new": 3})
    ['seed: 0 -> 1', 'train.lr: 1 -> 2']
    """
    return [f"{where}: {_short(a)} -> {_short(b)}" for where, a, b in _walk_differences(old, new, ignore)
            if a is not _MISSING]


def added_values(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """`{key.path: value}` for every (nested) key `new` has and `old` lacks altogether, read as JSON.

    >>> added_values({"train": {"lr": 1}}, {"train": {"lr": 2, "copies": 10}})
    {'train.copies': 10}
    """
    return {where: b for where, a, b in _walk_differences(old, new, ignore) if a is _MISSING}


def added_settings(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...] = ()) -> list[str]:
    """The (nested) keys `new` has and `old` lacks altogether, as `key.path=value`."""
    return [f"{where}={_short(value)}" for where, value in added_values(old, new, ignore).items()]


_MISSING = object()


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _walk_differences(old: dict[str, Any], new: dict[str, Any], ignore: tuple[str, ...]) -> list[tuple[str, Any, Any]]:
    """(key.path, old value or _MISSING, new value) for every (nested) value that differs, both read as JSON."""
    norm = lambda x: json.loads(json.dumps(x, default=str))  # noqa: E731 - Paths and tuples as written

    def walk(a: Any, b: Any, where: str) -> list[tuple[str, Any, Any]]:
        if a is _MISSING:
            return [(where, a, b)]
        if isinstance(a, dict) and isinstance(b, dict):
            return [d for k in sorted(set(a) | set(b)) if not (where == "" and k in ignore)
                    for d in walk(a.get(k, _MISSING), b.get(k), f"{where}.{k}" if where else k)]
        return [] if a == b else [(where, a, b)]

    return walk(norm(old), norm(new), "")
