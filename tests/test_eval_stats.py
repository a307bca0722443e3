"""Bootstrap statistics on hand-made per-question scores."""

from __future__ import annotations

import numpy as np
import pytest

from selfparam.eval.stats import Estimate, in_context_recall, mean_ci, paired_difference, recovery, resample_indices


def test_mean_and_interval_of_a_constant_and_a_spread():
    assert mean_ci([0.4] * 10) == Estimate(pytest.approx(0.4), [pytest.approx(0.4), pytest.approx(0.4)])
    est = mean_ci([0.0] * 50 + [1.0] * 50, resamples=4000)
    assert est.value == 0.5
    # the normal approximation for a share of 100: 0.5 +- 1.96 * 0.05 = [0.40, 0.60]
    assert est.ci[0] == pytest.approx(0.40, abs=0.02) and est.ci[1] == pytest.approx(0.60, abs=0.02)
    assert est.ci[0] < est.value < est.ci[1]


def test_seeded_and_reproducible():
    values = np.linspace(0, 1, 30)
    assert mean_ci(values, seed=3) == mean_ci(values, seed=3)
    assert mean_ci(values, seed=3).ci != mean_ci(values, seed=4).ci
    idx = resample_indices(5, resamples=7, seed=1)
    assert idx.shape == (7, 5) and idx.min() >= 0 and idx.max() <= 4


def test_empty_is_undefined():
    assert mean_ci([]) == Estimate(None, None)
    assert recovery([], [], []) == Estimate(None, None)


def test_paired_difference_cancels_what_the_methods_share():
    """Question difficulty varies a lot, but a beats b by exactly 0.1 on every question: the paired interval
    is [0.1, 0.1], while unpaired intervals of the two means overlap widely."""
    b = np.array([0.0, 0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6] * 5)
    a = b + 0.1
    diff = paired_difference(a, b)
    assert diff.value == pytest.approx(0.1)
    assert diff.ci == [pytest.approx(0.1), pytest.approx(0.1)]
    assert mean_ci(a).ci[0] < mean_ci(b).ci[1]  # unpaired: the intervals overlap
    level = paired_difference([1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0])
    assert level.value == 0.0 and level.ci[0] < 0 < level.ci[1]


def test_recovery_by_hand():
    base = [0.0, 0.0, 0.0, 0.0]
    cq = [1.0, 1.0, 1.0, 1.0]
    method = [1.0, 1.0, 0.0, 0.0]
    est = recovery(method, base, cq)
    assert est.value == pytest.approx(0.5)  # (0.5 - 0) / (1 - 0)
    assert 0.0 <= est.ci[0] <= 0.5 <= est.ci[1] <= 1.0
    # the same gain over a Base(Q) of 0.2 and a Base(C+Q) of 0.6: (0.4 - 0.2) / (0.6 - 0.2) = 0.5
    assert recovery([0.4] * 3, [0.2] * 3, [0.6] * 3) == Estimate(pytest.approx(0.5), [pytest.approx(0.5)] * 2)
    # worse than Base(Q): negative
    assert recovery([0.1] * 3, [0.2] * 3, [0.6] * 3).value == pytest.approx(-0.25)
    # no in-context gain: nothing to recover
    assert recovery([0.5, 0.5], [0.3, 0.3], [0.3, 0.3]) == Estimate(None, None)


def test_recovery_resamples_the_three_methods_jointly():
    """Base(C+Q) gains exactly where the method gains: every joint resample recovers exactly 1, while
    resampling the methods apart would scatter the ratio."""
    base = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    cq = [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    est = recovery(cq, base, cq)
    assert est.value == 1.0 and est.ci == [1.0, 1.0]


def test_in_context_recall_by_hand():
    cq = [1.0, 0.8, 0.5, 0.4, 0.0]
    method = [1.0, 0.2, 0.6, 1.0, 1.0]  # well on 2 of the 3 questions Base(C+Q) answers well
    est = in_context_recall(method, cq)
    assert est.value == pytest.approx(2 / 3)
    assert 0.0 <= est.ci[0] <= 2 / 3 <= est.ci[1] <= 1.0
    assert in_context_recall([1.0], [0.3]) == Estimate(None, None)  # Base(C+Q) answers nothing well
    assert in_context_recall([0.6, 0.6], [0.9, 0.9], well=0.7).value == 0.0


def test_misaligned_scores_are_refused():
    with pytest.raises(ValueError, match="aligned"):
        paired_difference([1.0, 0.0], [1.0])
    with pytest.raises(ValueError, match="level"):
        mean_ci([1.0, 0.0], level=1.5)


def test_a_cluster_bootstrap_resamples_contexts_with_all_their_questions():
    # singleton groups in order: exactly the question-level draws
    scores = [0.1, 0.9, 0.4, 0.0, 1.0, 0.3, 0.7]
    assert mean_ci(scores, groups=[f"c{i}" for i in range(7)]).ci == pytest.approx(mean_ci(scores).ci)
    # ten contexts whose three questions move together: over contexts the interval is wider than over questions
    rng = np.random.default_rng(1)
    per_context = rng.random(10)
    values = np.repeat(per_context, 3)
    groups = np.repeat([f"ctx{i}" for i in range(10)], 3)
    by_question, by_context = mean_ci(values), mean_ci(values, groups=groups)
    assert by_question.value == by_context.value
    assert by_context.ci[1] - by_context.ci[0] > 1.3 * (by_question.ci[1] - by_question.ci[0])
    # a resample's mean is over the questions of the contexts it drew, whatever their sizes
    ragged = mean_ci([1.0, 0.0, 0.0, 0.0], groups=["a", "b", "b", "b"], resamples=500)
    assert ragged.value == 0.25 and ragged.ci == [0.0, 1.0]  # all-"a" and all-"b" draws both occur
    # the comparisons take the same groups
    diff = paired_difference(values + 0.1, values, groups=groups)
    assert diff.value == pytest.approx(0.1) and diff.ci == pytest.approx([0.1, 0.1])
    rec = recovery(values * 0.5, np.zeros(30), values, groups=groups)
    assert rec.value == pytest.approx(0.5) and rec.ci == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="groups: 2 labels for 30"):
        mean_ci(values, groups=["a", "b"])
