"""The training record of a RECIPE editor: what it was trained on, for how long, at which commit, and its
loss curve, written as `training.json` and `loss_curve.png` beside the run (atomically), and as the
`training` entry of the editor's own `editor.json` (so a shipped editor says where it came from).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ...atomic import atomic_write_bytes, atomic_write_text
from ...provenance import provenance

CURVE_KEYS = ("loss", "edit", "edit_ce", "locality_kl", "contrastive")


def loss_curve(rows: Sequence[dict], every: int) -> list[dict]:
    """Means of each window of `every` logged steps: [{"step": last step of the window, "loss": ...}, ...].

    >>> loss_curve([{"step": 1, "loss": 2.0}, {"step": 2, "loss": 4.0}, {"step": 3, "loss": 1.0}], 2)
    [{'step': 2, 'loss': 3.0}, {'step': 3, 'loss': 1.0}]
    """
    if every < 1:
        raise ValueError(f"every: must be >= 1, got {every}")
    out = []
    for start in range(0, len(rows), every):
        window = rows[start:start + every]
        point: dict[str, Any] = {"step": window[-1]["step"]}
        for key in CURVE_KEYS:
            values = [r[key] for r in window if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
            if values:
                point[key] = round(sum(values) / len(values), 5)
        out.append(point)
    return out


def file_sha256(path: str | Path) -> str | None:
    path = Path(path)
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


INVOCATIONS = "invocations.json"  # in the checkpoint folder: the history a resumed run extends


def invocation(config: Any, from_step: int, to_step: int, seconds: float) -> dict:
    """One invocation of `train_recipe` on a run: the steps it trained, its own seconds, its config and commit.

    A run trained in several invocations (`--max-seconds`, then resumed, perhaps with other settings such as
    `--retrieval-steps`) keeps one of these each, so its record says which settings trained which steps.
    """
    return {"from_step": from_step, "to_step": to_step, "seconds": round(seconds, 1),
            "commit": provenance()["git_revision"], "train_config": asdict(config)}


def read_invocations(checkpoint: Path, step: int, seconds: float) -> list[dict]:
    """The invocations recorded with a checkpoint. A checkpoint written before they were kept gets one entry
    for all its steps, its settings unknown (`train_config` null)."""
    path = Path(checkpoint) / INVOCATIONS
    if not path.is_file():
        return [{"from_step": 0, "to_step": step, "seconds": round(seconds, 1), "commit": None, "train_config": None,
                 "note": "trained before invocations were recorded: its settings are not known"}]
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); delete it to resume with the history unknown") from None
    if not isinstance(rows, list) or not rows or rows[-1].get("to_step") != step:
        raise ValueError(f"{path} does not end at the checkpoint's step {step}; delete it to resume with the "
                         f"history unknown")
    return rows


def training_summary(config: Any, records: Sequence[Any], validation: Sequence[Any], llm: str, encoder: str,
                     step: int, seconds: float, data_sha256: str | None, invocations: Sequence[dict] = ()) -> dict:
    """What the editor was trained on, for how long, at which commit (no curve: it goes in editor.json).

    `train_config` is the latest invocation's; `invocations` lists every invocation with its own config."""
    prov = provenance()
    return {
        "data": {"path": config.data, "sha256": data_sha256, "records": len(records),
                 "first_id": records[0].id if records else None, "last_id": records[-1].id if records else None,
                 "validation_records": len(validation)},
        "llm": llm, "encoder": encoder, "steps": step, "seconds": round(seconds, 1),
        "records_through_llm": step * config.batch_size,
        "commit": prov["git_revision"], "versions": prov["versions"],
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "train_config": asdict(config),
        "invocations": list(invocations),
    }


def read_log(path: Path) -> list[dict]:
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def write_training_record(out: Path, summary: dict, rows: Sequence[dict], every: int) -> dict:
    """Write `out/training.json` (the summary plus the loss curve every `every` steps) and
    `out/loss_curve.png`, each atomically. Returns the record."""
    record = {**summary, "curve_every": every, "loss_curve": loss_curve(rows, every)}
    atomic_write_text(out / "training.json", json.dumps(record, indent=2))
    plot_loss_curve(record["loss_curve"], out / "loss_curve.png",
                    f"RECIPE editor, {summary['steps']} steps, {summary['seconds'] / 60:.0f} min")
    return record


def plot_loss_curve(curve: Sequence[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for key in ("edit", "edit_ce", "locality_kl", "contrastive"):
        points = [(p["step"], p[key]) for p in curve if key in p]
        if points:
            ax.plot(*zip(*points), marker=".", label=key)
    ax.set_xlabel("joint step")
    ax.set_ylabel("loss (window mean)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if curve:
        ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
