"""Bootstrap statistics over questions: how sure a score, a difference or a recovered share is.

Pure functions of per-question scores (numpy, seeded, vectorised): every function takes aligned arrays
(position j is the same question for every method) and returns an `Estimate` — the value on the data and
the percentile interval over `resamples` bootstrap draws of the questions. Comparisons resample the
questions *together* (paired), so what two methods share (an easy question) cancels out.

    >>> mean_ci([0.0, 1.0, 1.0, 1.0]).value
    0.75
    >>> paired_difference([1.0, 1.0], [0.0, 1.0]).value   # a - b
    0.5

`groups` (optional, aligned with the scores: e.g. each question's context id) resamples whole groups
instead of questions (a cluster bootstrap): a context's questions share a paragraph and, for a weight
method, one update, so they are not independent, and intervals over contexts are the honest ones when a
context has several questions. Without `groups` the draws are exactly the question-level ones.

    >>> mean_ci([0.0, 0.0, 1.0, 1.0], groups=["a", "a", "b", "b"], resamples=200).ci
    [0.0, 1.0]

A statistic that is undefined on the data (no questions; Base(C+Q) no better than Base(Q) for recovery;
no question Base(C+Q) answers well for in-context recall) is `None` with a `None` interval. Resamples on
which it is undefined are left out of the interval.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95
SEED = 0
WELL = 0.5  # an answer with F1 >= this counts as answered well (in-context recall)


class Estimate(NamedTuple):
    """A statistic and its bootstrap interval `ci = [lo, hi]` (both None when undefined)."""

    value: float | None
    ci: list[float] | None


def _array(values: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a flat list of per-question scores, got shape {a.shape}")
    return a


def _aligned(**arrays: Sequence[float]) -> list[np.ndarray]:
    out = [_array(v, k) for k, v in arrays.items()]
    sizes = {k: len(a) for k, a in zip(arrays, out)}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"per-question scores must be aligned (same questions, same order), got lengths {sizes}")
    return out


def resample_indices(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, n) question indices drawn with replacement; the same for the same (n, resamples, seed)."""
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _resampled_means(arrays: Sequence[np.ndarray], groups: Sequence | None, resamples: int,
                     seed: int) -> list[np.ndarray]:
    """Each array's mean on every resample, (resamples,) each: the questions resampled together, or with
    `groups` the groups (each resample's mean is over the questions of the groups it drew)."""
    n = arrays[0].size
    if groups is None:
        idx = resample_indices(n, resamples, seed)
        return [a[idx].mean(axis=1) for a in arrays]
    if len(groups) != n:
        raise ValueError(f"groups: {len(groups)} labels for {n} per-question scores (they must be aligned)")
    _, codes = np.unique(np.asarray([str(g) for g in groups]), return_inverse=True)
    n_groups = int(codes.max()) + 1
    counts = np.bincount(codes, minlength=n_groups).astype(float)
    gidx = resample_indices(n_groups, resamples, seed)
    size = counts[gidx].sum(axis=1)
    return [np.bincount(codes, weights=a, minlength=n_groups)[gidx].sum(axis=1) / size for a in arrays]


def _interval(draws: np.ndarray, level: float) -> list[float] | None:
    """Percentile interval of the finite draws (undefined resamples are nan and left out)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None
    lo, hi = np.quantile(finite, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def mean_ci(values: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL,
            groups: Sequence | None = None) -> Estimate:
    """The mean over questions with its bootstrap interval."""
    (a,) = _aligned(values=values)
    if a.size == 0:
        return Estimate(None, None)
    (draws,) = _resampled_means([a], groups, resamples, seed)
    return Estimate(float(a.mean()), _interval(draws, level))


def paired_difference(a: Sequence[float], b: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED,
                      level: float = LEVEL, groups: Sequence | None = None) -> Estimate:
    """mean(a) - mean(b) on the same questions, both resampled with the same indices."""
    x, y = _aligned(a=a, b=b)
    return mean_ci(x - y, resamples, seed, level, groups)


def perplexity_change(nll: Sequence[float], nll_ref: Sequence[float], tokens: Sequence[float],
                      resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> Estimate:
    """The relative change of perplexity against a reference on the same text, `ppl / ppl_ref - 1`, from the
    summed NLL of each block of tokens (aligned: block j is the same tokens for both) and the blocks' token
    counts; the blocks are resampled together, so the interval is over the text, paired.

        >>> round(perplexity_change([2.0, 2.0], [1.0, 1.0], [1, 1]).value, 4)   # e**1 - 1
        1.7183
    """
    a, b, n = _aligned(nll=nll, nll_ref=nll_ref, tokens=tokens)
    if a.size == 0 or n.sum() <= 0:
        return Estimate(None, None)
    value = float(np.exp((a.sum() - b.sum()) / n.sum()) - 1)
    ma, mb, mn = _resampled_means([a, b, n], None, resamples, seed)
    return Estimate(value, _interval(np.exp((ma - mb) / mn) - 1, level))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def recovery(f1: Sequence[float], f1_base: Sequence[float], f1_cq: Sequence[float], resamples: int = RESAMPLES,
             seed: int = SEED, level: float = LEVEL, groups: Sequence | None = None) -> Estimate:
    """The recovered share of the in-context gain, `(F1 - F1_base) / (F1_base-cq - F1_base)`.

    1 means the method answers as well as with the context in the prompt, 0 as well as without it. The
    three methods' scores are resampled together; a resample where Base(C+Q) does not beat Base(Q) has no
    gain to recover and is left out (the value itself is None when that holds on the data).
    """
    m, b, c = _aligned(f1=f1, f1_base=f1_base, f1_cq=f1_cq)
    if m.size == 0:
        return Estimate(None, None)
    value = _ratio(np.array(m.mean() - b.mean()), np.array(c.mean() - b.mean()))
    mb, bb, cb = _resampled_means([m, b, c], groups, resamples, seed)
    draws = _ratio(mb - bb, cb - bb)
    return Estimate(float(value) if np.isfinite(value) else None, _interval(draws, level) if np.isfinite(value)
                    else None)


def in_context_recall(f1: Sequence[float], f1_cq: Sequence[float], well: float = WELL, resamples: int = RESAMPLES,
                      seed: int = SEED, level: float = LEVEL, groups: Sequence | None = None) -> Estimate:
    """Among the questions Base(C+Q) answers well (F1 >= `well`), the share the method answers well.

    A figure that does not depend on how well the model reads: questions the model cannot answer even
    with the context in view do not count against a method. Questions are resampled with the pairs.
    """
    m, c = _aligned(f1=f1, f1_cq=f1_cq)
    known = c >= well
    if not known.any():
        return Estimate(None, None)
    hit = (m >= well) & known
    hits, knowns = _resampled_means([hit.astype(float), known.astype(float)], groups, resamples, seed)
    draws = _ratio(hits, knowns)  # a ratio of means over the same questions: the ratio of the counts
    return Estimate(float(hit.sum() / known.sum()), _interval(draws, level))
