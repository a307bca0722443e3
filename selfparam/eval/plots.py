"""PNG plots of a run (matplotlib, Agg backend: no display needed): bars per method for single, batch and
recommendation runs; for sequential runs a retention heatmap per method, F1 versus injections and (with
`--general-every`) general ability versus injections."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..atomic import atomic_write_bytes  # noqa: E402
from .tasks import GENERAL_FIGURES, TaskResult  # noqa: E402


def _save(fig, path: Path) -> Path:
    """Save atomically (`atomic_write_bytes`) and close the figure."""
    try:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())


def _upper(values) -> float:
    """A y-limit (or colour-scale top) that fits the data: scores of a small model sit near 0.1, and on a
    0-1 axis every method would look the same. At least 0.1, at most 1."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(min(1.0, max(0.1, 1.15 * max(finite, default=0.0))))


def plot_bars(result: TaskResult, keys: tuple[str, ...], path: Path, ylabel: str) -> Path:
    """Grouped bars: one group per method that finished, one bar per metric key."""
    ok = [o for o in result.outcomes if o.status == "ok"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(ok) * max(1, len(keys)) / 2 + 2), 3.6))
    width = 0.8 / len(keys)
    x = np.arange(len(ok))
    top = _upper([o.metrics.get(key) for o in ok for key in keys])
    for j, key in enumerate(keys):
        values = [o.metrics.get(key) or 0.0 for o in ok]
        bars = ax.bar(x + (j - (len(keys) - 1) / 2) * width, values, width, label=key)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(x, [o.name for o in ok], rotation=20)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, top)
    ax.set_title(f"{result.task}: {result.extra.get('n_contexts', result.extra.get('n_turns', ''))} "
                 f"{'turns' if result.task == 'recommendation' else 'contexts'}")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_retention(result: TaskResult, path: Path, logprob: bool = False) -> Path:
    """One heatmap per method: row t = after injection t, column i = context i (upper triangle blank), each
    cell labelled with its F1 (or, with `logprob`, the gold answers' mean log-probability) when the matrix is
    small enough to read; one colour scale for all methods."""
    def matrix(o):
        return o.extra.get("retention_logprob") if logprob else o.retention

    rows = [o for o in result.outcomes if matrix(o) is not None]
    matrices = [np.array([[np.nan if v is None else v for v in row] for row in matrix(o)], dtype=float)
                for o in rows]
    finite = [v for m in matrices for v in m.ravel() if np.isfinite(v)]
    if logprob:
        bottom, top = (min(finite), max(finite)) if finite else (-1.0, 0.0)
    else:
        bottom, top = 0.0, _upper(finite)
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(3.6 * max(1, len(rows)), 3.5), squeeze=False)
    image = None
    for k, (ax, o, m) in enumerate(zip(axes[0], rows, matrices)):
        image = ax.imshow(m, vmin=bottom, vmax=top, cmap="viridis")
        ax.set_title(o.name + ("" if o.status == "ok" else " (failed)"), fontsize=9)
        ax.set_xlabel("context i")
        if k == 0:
            ax.set_ylabel("after step t")
        ticks = np.arange(len(m))
        ax.set_xticks(ticks, ticks + 1, fontsize=6)
        ax.set_yticks(ticks, ticks + 1, fontsize=6)
        if len(m) <= 12:
            for (t, i), v in np.ndenumerate(m):
                if np.isfinite(v):
                    ax.text(i, t, f"{v:.2f}"[1:] if 0 <= v < 1 else f"{v:.1f}", ha="center", va="center",
                            fontsize=5, color="white" if v < bottom + 0.6 * (top - bottom) else "black")
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8,
                     label="gold log-prob (nats/token)" if logprob else "QA-F1")
    return _save(fig, path)


def plot_curve(result: TaskResult, path: Path) -> Path:
    """Mean F1 over contexts 1..t after each injection t, and the first context's F1, per method."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    plotted: list[float] = []
    for o in result.outcomes:
        curve = o.extra.get("curve")
        if not curve:
            continue
        steps = np.arange(1, len(curve) + 1)
        plotted += list(curve) + list(o.extra.get("first_context") or [])
        line, = ax.plot(steps, [np.nan if v is None else v for v in curve], marker="o", ms=3, label=o.name)
        first = o.extra.get("first_context")
        if first:
            ax.plot(steps, [np.nan if v is None else v for v in first], ls=":", color=line.get_color(), alpha=0.7)
    ax.set_xlabel("number of injections")
    ax.set_ylabel("QA-F1 (solid: contexts so far;\ndotted: first context)")
    ax.set_ylim(0, _upper(plotted))
    ax.legend(fontsize=8)
    return _save(fig, path)


def general_points(o, key: str) -> list[tuple[int, float]]:
    """(injections, value) of one method's `general_by_step` figure `key`, in step order (numbers only)."""
    by_step = o.extra.get("general_by_step") or {}
    return sorted((int(s), float(f[key])) for s, f in by_step.items() if isinstance(f.get(key), (int, float)))


def plot_general_by_step(result: TaskResult, path: Path) -> Path:
    """WikiText-2 perplexity and MMLU accuracy against the number of injections (0: the base model), one
    line per method; one panel per figure the run measured."""
    figures = [(key, label) for key, label in GENERAL_FIGURES
               if any(general_points(o, key) for o in result.outcomes)]
    fig, axes = plt.subplots(1, max(1, len(figures)), figsize=(5.0 * max(1, len(figures)), 3.6), squeeze=False)
    for ax, (key, label) in zip(axes[0], figures):
        for o in result.outcomes:
            points = general_points(o, key)
            if points:
                ax.plot(*zip(*points), marker="o", ms=3, label=o.name + ("" if o.status == "ok" else " (failed)"))
        ax.set_xlabel("number of injections")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_lifelong(result: TaskResult, path: Path) -> Path:
    """Reliability, generality and locality against the number of edits (log scale), one line per method."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, metric in zip(axes, ("reliability", "generality", "locality")):
        for o in result.outcomes:
            ts = sorted(int(k) for k in o.extra if k.isdigit())
            if ts:
                ax.plot(ts, [o.extra[str(t)][metric] for t in ts], marker="o", label=o.name)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(metric)
        ax.set_xlabel("edits")
    axes[0].legend()
    fig.tight_layout()
    return _save(fig, path)


def plot_result(result: TaskResult, out: Path) -> dict[str, Path]:
    """The plots that fit the task, written into `out`."""
    out = Path(out)
    if result.task == "lifelong":
        return {"lifelong_png": plot_lifelong(result, out / "lifelong.png")}
    if result.task == "sequential":
        paths = {"retention_png": plot_retention(result, out / "retention.png"),
                 "curve_png": plot_curve(result, out / "f1_vs_injections.png")}
        if any(v is not None for o in result.outcomes for row in o.extra.get("retention_logprob") or [] for v in row):
            paths["retention_logprob_png"] = plot_retention(result, out / "retention_logprob.png", logprob=True)
        if any(len(general_points(o, key)) >= 2 for o in result.outcomes for key, _ in GENERAL_FIGURES):
            paths["general_by_step_png"] = plot_general_by_step(result, out / "general_by_step.png")
        return paths
    if result.task == "recommendation":
        return {"bars_png": plot_bars(result, ("r1", "r2", "r3", "r4"), out / "recall.png", "Recall@1")}
    return {"bars_png": plot_bars(result, ("f1", "em"), out / "scores.png", "score")}
