"""Lifelong (sequential) knowledge editing: edits arrive one by one; after 1, 10, 100, 1000... of them every
method is scored on the edits so far, as in RECIPE's table 1.

Per method and edit count T:
- reliability / generality: teacher-forced token accuracy of the new target after the edit prompt / its
  rephrase (the papers' metric), and `*_gen`: the share whose greedy answer contains the target;
- locality: teacher-forced agreement with the unedited method on the locality prompt: the target is the
  method's own greedy answer before any edit, so the unedited model scores (about) 1; `locality_gen`:
  the share of greedy answers unchanged;
- edit_ms: mean wall time of one `inject` over the first T edits; storage_bytes after T edits.
Beyond T = `eval_sample` the scores are over a seeded sample of the edits so far (all T are injected).
Methods are built with `build_method` and used through the protocol only.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tqdm.auto import tqdm

from ..lm import LM
from ..methods.base import Context, Query, Resources
from ..methods.registry import build_method
from .editing_data import EditRecord

METRICS = ("reliability", "generality", "locality", "reliability_gen", "generality_gen", "locality_gen")


@dataclass
class LifelongConfig:
    edits: tuple[int, ...] = field(default=(1, 10, 100, 1000), metadata={"help": "edit counts to score at"})
    max_edits: dict[str, int] = field(default_factory=dict, metadata={"help": "per-method cap on the edit count"})
    eval_sample: int = field(default=200, metadata={"help": "score at most this many of the edits so far"})
    gen_sample: int = field(default=100, metadata={"help": "of those, this many also by greedy generation"})
    max_new_tokens: int = field(default=8, metadata={"help": "greedy answer length"})
    latency_queries: int = field(default=16, metadata={"help": "queries timed for answer latency"})
    mmlu_dir: str | None = field(default=None, metadata={"help": "MMLU folder: accuracy before/after the last count"})
    mmlu_questions: int = field(default=50, metadata={"help": "MMLU questions (10 per default subject)"})
    seed: int = 0

    def __post_init__(self):
        self.edits = tuple(sorted(set(int(e) for e in self.edits)))
        if not self.edits or self.edits[0] < 1:
            raise ValueError(f"edits: need positive edit counts, got {self.edits}")
        for name in ("eval_sample", "gen_sample", "max_new_tokens", "latency_queries", "mmlu_questions"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for m, n in self.max_edits.items():
            if n < 1:
                raise ValueError(f"max_edits: {m}={n} must be >= 1")


def contains_answer(answer: str, target: str) -> bool:
    """Whether the greedy `answer` contains `target`, ignoring case and punctuation spacing.

    >>> contains_answer("The mother tongue is English.", "English")
    True
    """
    from .metrics import normalize_answer

    a, t = f" {normalize_answer(answer)} ", f" {normalize_answer(target)} "
    return t.strip() != "" and t in a


def _sample(n: int, k: int, seed: int) -> list[int]:
    return list(range(n)) if n <= k else sorted(random.Random(seed + n).sample(range(n), k))


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def mmlu_by_protocol(method: Any, folder: Path, n: int, seed: int) -> float:
    """MMLU accuracy through the method's own `score`: the standard prompt as the question, the gold letter
    as the target, counted right when it is the model's argmax over the whole vocabulary (so a retrieval
    method answers with whatever its retriever adds)."""
    from .general import DEFAULT_SUBJECTS, LETTERS, load_mmlu, mmlu_prompt

    per = max(1, n // len(DEFAULT_SUBJECTS))
    questions = []
    for subject in DEFAULT_SUBJECTS:
        qs = load_mmlu(folder, subject, "test")
        questions += random.Random(seed).sample(qs, min(per, len(qs)))
    scores = method.score([Query(mmlu_prompt(q)) for q in questions], [LETTERS[q.answer] for q in questions])
    return _mean(scores)


def _answers(method: Any, queries: Sequence[Query], max_new_tokens: int) -> list[str]:
    """Greedy answers, one query per call: a query's answer must not depend on which other queries share
    its batch (left padding changes bf16 argmaxes), or the unedited model would seem to drift between
    edit counts. Latency is timed on batches elsewhere."""
    return [method.answer([q], max_new_tokens)[0] for q in queries]


def _scores(method: Any, queries: Sequence[Query], targets: Sequence[str]) -> list[float]:
    """Teacher-forced target accuracy, one query per call (see `_answers`)."""
    return [method.score([q], [t])[0] for q, t in zip(queries, targets)]


def _time_answers(fn, queries: Sequence[Query], max_new_tokens: int) -> float:
    started = time.perf_counter()
    fn(queries, max_new_tokens)
    return (time.perf_counter() - started) * 1000 / len(queries)


def run_method(lm: LM, name: str, config: Any, records: Sequence[EditRecord], cfg: LifelongConfig,
               resources: Resources | None = None, progress: bool = True) -> dict:
    """Sequential editing with one method; returns {str(T): metrics} plus latency and MMLU entries."""
    from ..generation import generate
    from ..prompts import answer_prompt

    counts = [t for t in cfg.edits if t <= min(len(records), cfg.max_edits.get(name, cfg.edits[-1]))]
    if not counts:
        raise ValueError(f"{name}: no edit count of {cfg.edits} fits {len(records)} records "
                         f"(cap {cfg.max_edits.get(name)})")
    method = build_method(name, lm, config, resources)
    method.reset()
    samples = {t: _sample(t, cfg.eval_sample, cfg.seed) for t in counts}
    needed = sorted(set().union(*samples.values()))
    # the unedited method's greedy answers on the locality prompts: the locality reference
    loc_queries = {i: Query(records[i].locality_prompt) for i in needed}
    base_answers = dict(zip(needed, _answers(method, [loc_queries[i] for i in needed], cfg.max_new_tokens)))
    latency_q = [Query(records[i].prompt) for i in range(min(cfg.latency_queries, len(records)))]
    plain = lambda qs, k: generate(lm, [answer_prompt(lm.tokenizer, q.question) for q in qs], max_new_tokens=k)
    plain(latency_q, 1), method.answer(latency_q, 1)  # warm-up: the first calls pay one-off allocation costs
    result: dict[str, Any] = {"latency_ms": {"base_model": _time_answers(plain, latency_q, cfg.max_new_tokens),
                                             "method_0_edits": _time_answers(method.answer, latency_q, cfg.max_new_tokens)}}
    if cfg.mmlu_dir:
        result["mmlu_before"] = mmlu_by_protocol(method, Path(cfg.mmlu_dir), cfg.mmlu_questions, cfg.seed)
    edit_ms: list[float] = []
    bar = tqdm(total=counts[-1], desc=f"{name}: editing", disable=not progress)
    for t in counts:
        while len(edit_ms) < t:
            rec = records[len(edit_ms)]
            started = time.perf_counter()
            method.inject([Context(rec.id, rec.fact)])
            edit_ms.append((time.perf_counter() - started) * 1000)
            bar.update(1)
        idx = samples[t]
        gen_idx = idx[:cfg.gen_sample]
        rel = _scores(method, [Query(records[i].prompt) for i in idx], [records[i].target for i in idx])
        gen = _scores(method, [Query(records[i].rephrase) for i in idx], [records[i].target for i in idx])
        loc_targets = [base_answers[i] or records[i].locality_target for i in idx]
        loc = _scores(method, [loc_queries[i] for i in idx], loc_targets)
        ans_rel = _answers(method, [Query(records[i].prompt) for i in gen_idx], cfg.max_new_tokens)
        ans_gen = _answers(method, [Query(records[i].rephrase) for i in gen_idx], cfg.max_new_tokens)
        ans_loc = _answers(method, [loc_queries[i] for i in gen_idx], cfg.max_new_tokens)
        result[str(t)] = {
            "reliability": _mean(rel), "generality": _mean(gen), "locality": _mean(loc),
            "reliability_gen": _mean([contains_answer(a, records[i].target) for a, i in zip(ans_rel, gen_idx)]),
            "generality_gen": _mean([contains_answer(a, records[i].target) for a, i in zip(ans_gen, gen_idx)]),
            "locality_gen": _mean([a == base_answers[i] for a, i in zip(ans_loc, gen_idx)]),
            "edit_ms": _mean(edit_ms[:t]), "storage_bytes": method.storage_bytes(),
            "scored": len(idx), "generated": len(gen_idx),
            "examples": [{"id": records[i].id, "target": records[i].target, "answer": a}
                         for a, i in list(zip(ans_rel, gen_idx))[:3]],
        }
        bar.set_postfix(T=t, rel=f"{result[str(t)]['reliability']:.2f}", loc=f"{result[str(t)]['locality']:.2f}")
    bar.close()
    result["latency_ms"][f"method_{counts[-1]}_edits"] = _time_answers(method.answer, latency_q, cfg.max_new_tokens)
    if cfg.mmlu_dir:
        result["mmlu_after"] = mmlu_by_protocol(method, Path(cfg.mmlu_dir), cfg.mmlu_questions, cfg.seed)
        result["mmlu_after_edits"] = counts[-1]
    method.reset()
    return result


def write_report(summary: dict, out: Path) -> None:
    """summary.json, summary.md (one table) and lifelong.png (metrics against edit count), atomically."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, out / "summary.json")
    lines = ["| method | edits | reliability | generality | locality | rel (gen) | gen (gen) | loc (gen) | edit ms | storage KB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    extra = []
    for name, res in summary["methods"].items():
        for t, m in ((k, v) for k, v in res.items() if k.isdigit()):
            lines.append(f"| {name} | {t} | " + " | ".join(f"{m[k]:.3f}" for k in METRICS)
                         + f" | {m['edit_ms']:.1f} | {m['storage_bytes'] / 1024:.0f} |")
        lat = res.get("latency_ms", {})
        extra.append(f"- {name}: answer latency (ms/query, {summary['config']['max_new_tokens']} new tokens): "
                     + ", ".join(f"{k} {v:.0f}" for k, v in lat.items())
                     + (f"; MMLU {res['mmlu_before']:.3f} before, {res['mmlu_after']:.3f} after "
                        f"{res['mmlu_after_edits']} edits" if "mmlu_after" in res else ""))
    md = [f"# Lifelong editing on {summary['data']}", "", f"Model {summary['model']}; command: `{summary['command']}`", "",
          *lines, "", *extra, ""]
    (out / "summary.md.tmp").write_text("\n".join(md))
    os.replace(out / "summary.md.tmp", out / "summary.md")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, metric in zip(axes, ("reliability", "generality", "locality")):
        for name, res in summary["methods"].items():
            ts = sorted(int(k) for k in res if k.isdigit())
            ax.plot(ts, [res[str(t)][metric] for t in ts], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(metric)
        ax.set_xlabel("edits")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(out / "lifelong.png.tmp.png", dpi=110)
    plt.close(fig)
    os.replace(out / "lifelong.png.tmp.png", out / "lifelong.png")


def run_lifelong(lm: LM, methods: dict[str, Any], records: Sequence[EditRecord], cfg: LifelongConfig, out: Path,
                 data_name: str = "", command: str = "", resources: Resources | None = None,
                 progress: bool = True) -> dict:
    """Run every method (name -> its config, None for defaults) on the same edits; write and return the summary."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    summary = {"data": data_name, "model": lm.name, "command": command, "git_revision": rev,
               "config": {**asdict(cfg), "edits": list(cfg.edits)}, "methods": {}}
    for name, config in methods.items():
        started = time.perf_counter()
        summary["methods"][name] = run_method(lm, name, config, records, cfg, resources, progress)
        summary["methods"][name]["seconds"] = round(time.perf_counter() - started, 1)
        write_report(summary, Path(out))  # after every method: a long run leaves its finished part behind
    return summary


# settings two lifelong reports must share to be merged into one table (the edits are the data file's
# first T records, so the same file means the same edits)
_SAME_DATA = ("data", "model")
_SAME_CONFIG = ("eval_sample", "gen_sample", "max_new_tokens", "seed")


def merge_lifelong(folders: Sequence[Path], out: Path) -> dict:
    """One lifelong report from several (say RECIPE to 1000 edits, the weight methods to 100 run apart).
    Refuses reports on other data or model, scored differently, or naming a method twice."""
    if len(folders) < 2:
        raise ValueError("merge: give at least two lifelong report folders")
    summaries = []
    for folder in map(Path, folders):
        if not (folder / "summary.json").is_file():
            raise ValueError(f"merge: {folder} is not a lifelong report (no summary.json)")
        summaries.append(json.loads((folder / "summary.json").read_text(encoding="utf-8")))
    first = summaries[0]
    merged = {**first, "methods": {}, "merged_from": {}}
    for folder, summary in zip(folders, summaries):
        differ = [k for k in _SAME_DATA if summary.get(k) != first.get(k)]
        differ += [k for k in _SAME_CONFIG if summary["config"].get(k) != first["config"].get(k)]
        if differ:
            raise ValueError(f"merge: {folder} differs from {folders[0]} in {', '.join(differ)}")
        for name, result in summary["methods"].items():
            if name in merged["methods"]:
                raise ValueError(f"merge: method {name!r} appears in more than one report ({folder})")
            merged["methods"][name] = result
        merged["merged_from"][str(folder)] = {"command": summary.get("command"), "git_revision": summary.get("git_revision")}
    merged["command"] = "; ".join(s.get("command", "") for s in summaries)
    write_report(merged, Path(out))
    return merged
