"""Seeds: the run seed reaches every method's config, and a sweep over seeds is summarised in one table.

`seeded(config, seed)` sets every field named `seed` of a method's config dataclass, nested ones included
(`train.seed`: LoRA initialisation, shuffling, dropout; a target config's `seed`), so `--seed` changes the
whole run and not just the draw of contexts. `seed_summary` puts the per-seed summaries of a sweep
(`--seeds 0,1,2`, one sub-folder each) side by side with their mean.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..atomic import atomic_write_text
from ..provenance import provenance
from .configs import config_class, method_configs


def seeded(config: Any, seed: int) -> Any:
    """A copy of `config` with every (nested) dataclass field named `seed` set to `seed`.

    >>> from dataclasses import dataclass, field
    >>> @dataclass
    ... class Train: seed: int = 0
    >>> @dataclass
    ... class Method: train: Train = field(default_factory=Train)
    >>> seeded(Method(), 3).train.seed
    3
    """
    if config is None or not dataclasses.is_dataclass(config) or isinstance(config, type):
        return config
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        if not f.init:
            continue
        value = getattr(config, f.name)
        if f.name == "seed":
            changes["seed"] = seed
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes[f.name] = seeded(value, seed)
    return dataclasses.replace(config, **changes)


def seed_settings(raw: Any, where: str = "") -> list[str]:
    """Where a raw method-config object sets a `seed` (the run's `--seed`/`--seeds` sets them all)."""
    if not isinstance(raw, dict):
        return []
    found = []
    for key, value in raw.items():
        path = f"{where}.{key}" if where else key
        if key == "seed":
            found.append(path)
        found += seed_settings(value, path)
    return found


def seeded_method_configs(path: Path | None, names: Sequence[str], seed: int) -> dict[str, Any]:
    """Every named method's config: the settings of the `--method-config` file at `path` (defaults otherwise)
    with every `seed` field set to `seed`. A file that sets a seed itself is refused: the run's seed is the
    one place a seed is chosen."""
    configs = method_configs(path, list(names)) if path is not None else {}
    if path is not None:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        where = [f"{name}.{p}" for name, values in raw.items() for p in seed_settings(values)]
        if where:
            raise ValueError(f"method config file {path}: {', '.join(where)} set a seed; the run's --seed/--seeds "
                             f"sets every method's seed")
    out = {}
    for name in names:
        config = configs.get(name)
        if config is None:
            cls = config_class(name)
            config = cls() if cls is not None else None
        if config is not None:
            out[name] = seeded(config, seed)
    return out


def parse_seeds(text: str) -> tuple[int, ...]:
    """`"0,1,2"` -> (0, 1, 2): distinct integers, in the given order."""
    try:
        seeds = tuple(int(s) for s in str(text).split(","))
    except ValueError:
        raise ValueError(f"seeds: expected comma-separated integers like 0,1,2, got {text!r}") from None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: {text!r} names a seed twice")
    return seeds


def seed_folder(out: Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# per-method keys that are figures of the method (averaged over seeds), not costs or counts
_SKIP = ("storage_bytes", "inject_seconds", "answer_latency", "logprob_seconds", "n_injections", "n_questions")


def seed_summary(summaries: Mapping[int, dict]) -> dict[str, Any]:
    """{method: {key: mean over seeds, key_per_seed: [...], status}} from each seed's `summary.json`.

    A key is averaged when every seed has a number for it (a method that failed in one seed, or a
    statistic undefined in one, gets `None` as its mean and keeps its per-seed figures)."""
    seeds = list(summaries)
    names = list(dict.fromkeys(n for s in summaries.values() for n in s["methods"]))
    methods: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [summaries[s]["methods"].get(name, {}) for s in seeds]
        failed = [s for s, r in zip(seeds, rows) if r.get("status") != "ok"]
        entry: dict[str, Any] = {"status": "ok" if not failed else "failed", "failed_seeds": failed}
        keys = list(dict.fromkeys(k for r in rows for k, v in r.items() if _numeric(v) and k not in _SKIP))
        for key in keys:
            values = [r.get(key) if _numeric(r.get(key)) else None for r in rows]
            entry[key] = sum(values) / len(values) if all(v is not None for v in values) else None
            entry[f"{key}_per_seed"] = values
        methods[name] = entry
    return {"task": next(iter(summaries.values()))["task"], "seeds": seeds, "methods": methods}


def write_seed_report(out: Path, summary: dict[str, Any], config: dict[str, Any], title: str) -> dict[str, Path]:
    """`summary.json`, `summary.md` and `config.json` of a sweep at the top of `out` (seed-S/ hold the runs)."""
    out = Path(out)
    paths = {"summary_json": out / "summary.json", "summary_md": out / "summary.md", "config": out / "config.json"}
    atomic_write_text(paths["config"], json.dumps({**config, **provenance()}, indent=2, default=str) + "\n")
    atomic_write_text(paths["summary_json"], json.dumps(summary, indent=2, default=str) + "\n")
    seeds = summary["seeds"]
    main = ("f1", "em", "contains", "recovery", "in_context_recall", "diff_vs_selfparam", "logprob_recovery",
            "f1_diagonal", "r1", "r2", "r3", "r4")
    keys = [k for k in main if any(k in e for e in summary["methods"].values())]

    def cell(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}"

    lines = [f"# {title}: seeds {', '.join(map(str, seeds))}", "",
             "Each cell: the mean over seeds, then the per-seed figures (each seed's run is in `seed-S/`).", "",
             "| method | status | " + " | ".join(keys) + " |", "|" + "---|" * (len(keys) + 2)]
    for name, e in summary["methods"].items():
        status = e["status"] + (f" (seeds {', '.join(map(str, e['failed_seeds']))})" if e["failed_seeds"] else "")
        cells = [f"{cell(e.get(k))} ({' / '.join(cell(v) for v in e.get(f'{k}_per_seed', []))})" if k in e else "–"
                 for k in keys]
        lines.append(f"| {name} | {status} | " + " | ".join(cells) + " |")
    atomic_write_text(paths["summary_md"], "\n".join(lines) + "\n")
    return paths
