"""The covered/uncovered split of a single run's questions (`selfparam.eval.coverage`)."""

import pytest

from selfparam.eval.coverage import coverage_split, is_covered, markdown


def record(method, cid, question, golds, prediction, f1, logprob):
    return {"method": method, "step": None, "context_id": cid, "question": question, "golds": golds,
            "prediction": prediction, "f1": f1, "em": float(f1 == 1.0), "logprob": logprob}


def test_a_question_is_covered_when_a_trained_answer_holds_a_gold():
    assert is_covered(["the Roman Empire"], ["during the Roman Empire", "Jerusalem"])  # articles normalised away
    assert not is_covered(["1887"], ["in 1888", "Rome"])
    assert not is_covered(["Rome"], [])


def test_split_puts_each_question_in_one_stratum_with_its_methods_figures():
    trained = {"c1": ["Quenby", "in May"], "c2": ["a fisherwoman"]}
    rows = []
    # covered: c1/q1 (Quenby), c2/q3 (fisherwoman); uncovered: c1/q2 (1987)
    for q, cid, golds in [("q1", "c1", ["Quenby"]), ("q2", "c1", ["1987"]), ("q3", "c2", ["fisherwoman"])]:
        covered = q != "q2"
        rows.append(record("selfparam", cid, q, golds, f"It is {golds[0]}." if not covered else "I do not know", 0.2,
                           -2.0))
        rows.append(record("ft-s", cid, q, golds, golds[0] if covered else "Quenby", 1.0 if covered else 0.0,
                           -1.0 if covered else -8.0))
    split = coverage_split(rows, trained)
    covered, uncovered = split["strata"]["covered"], split["strata"]["uncovered"]
    assert (covered["n_questions"], uncovered["n_questions"], split["n_questions"]) == (2, 1, 3)
    assert covered["methods"]["ft-s"]["contains"] == 1.0
    assert covered["methods"]["selfparam"]["contains"] == 0.0
    assert covered["methods"]["ft-s"]["diff_contains_vs_selfparam"] == 1.0
    assert covered["methods"]["ft-s"]["diff_logprob_vs_selfparam"] == pytest.approx(1.0)
    assert uncovered["methods"]["selfparam"]["contains"] == 1.0
    assert uncovered["methods"]["ft-s"]["diff_logprob_vs_selfparam"] == pytest.approx(-6.0)
    assert "diff_vs_selfparam" not in uncovered["methods"]["selfparam"]
    table = markdown(split)
    assert "| covered (2 q) | ft-s |" in table and "| uncovered (1 q) | selfparam |" in table


def test_a_context_without_answers_or_a_sequential_run_is_refused():
    rows = [record("selfparam", "c1", "q", ["x"], "x", 1.0, -1.0)]
    with pytest.raises(ValueError, match="no target answers for 1 context"):
        coverage_split(rows, {})
    with pytest.raises(ValueError, match="single-injection"):
        coverage_split([{**rows[0], "step": 0}], {"c1": ["x"]})
