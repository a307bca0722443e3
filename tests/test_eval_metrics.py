"""The metrics on hand-worked strings: SQuAD normalisation, F1/EM, edit distance, title parsing, r1-r4."""

from __future__ import annotations

import pytest

from selfparam.eval.metrics import (
    TitleMatch,
    best_contains,
    best_em,
    best_f1,
    catalogue_name,
    clean_title,
    contains_answer,
    edit_distance,
    exact_match,
    f1_score,
    filtered_predictions,
    mean,
    nearest_title,
    normalize_answer,
    parse_titles,
    recall_at_k,
)


def test_normalize_answer_lowercases_strips_punctuation_articles_and_space():
    assert normalize_answer("The  Denver Broncos!") == "denver broncos"
    assert normalize_answer("an apple, a pear") == "apple pear"
    assert normalize_answer("Theory of the Atom") == "theory of atom"  # "the" only as a whole word
    assert normalize_answer("  ") == ""


def test_f1_hand_worked():
    # pred {denver, broncos, won}, gold {denver, broncos}: P = 2/3, R = 1, F1 = 0.8
    assert f1_score("Denver Broncos won", "the Denver Broncos") == pytest.approx(0.8)
    # repeated tokens count with multiplicity: pred "a b b", gold "b": P = 1/3... after article removal
    # "a" goes away: pred tokens [b, b], gold [b], overlap 1: P = 1/2, R = 1, F1 = 2/3
    assert f1_score("a b b", "b") == pytest.approx(2 / 3)
    assert f1_score("Paris", "London") == 0.0
    assert f1_score("", "London") == 0.0


def test_exact_match_and_best_over_golds():
    assert exact_match("The Broncos.", "broncos") == 1.0
    assert exact_match("Broncos won", "broncos") == 0.0
    golds = ["Denver Broncos", "Broncos", "the Denver Broncos team"]
    assert best_em("broncos", golds) == 1.0
    # against "Denver Broncos": P = 1, R = 1/2 -> 2/3; against "Broncos": 1.0 -> best is 1.0
    assert best_f1("Broncos", golds) == 1.0
    # "Denver" vs "Denver Broncos": 2/3; vs "Broncos": 0; vs "Denver Broncos team": P 1, R 1/3 -> 0.5
    assert best_f1("Denver", golds) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no gold"):
        best_f1("x", [])


def test_contains_answer_takes_whole_words_in_order_after_normalisation():
    assert contains_answer("The collection was created in the year 1887.", "1887") == 1.0
    # SQuAD's normalisation deletes the apostrophe, so a possessive is another word ("muybridges"), as in F1
    assert contains_answer("It was Eadweard Muybridge's work", "Eadweard Muybridge") == 0.0
    assert contains_answer("It was Eadweard Muybridge, in 1887", "Eadweard Muybridge") == 1.0
    assert contains_answer("18870 bricks", "1887") == 0.0  # a whole word, not a substring
    assert contains_answer("Muybridge Eadweard", "Eadweard Muybridge") == 0.0  # in order
    assert contains_answer("The Denver Broncos won", "the Denver Broncos") == 1.0  # articles dropped on both sides
    assert contains_answer("anything", "the") == 0.0  # a gold that normalises to nothing is never contained
    golds = ["the Pax Mongolica (Mongol Peace)", "Pax Mongolica"]
    assert best_contains("They called it the Pax Mongolica.", golds) == 1.0
    assert best_contains("The Mongol Peace", golds) == 0.0
    with pytest.raises(ValueError, match="no gold"):
        best_contains("x", [])


def test_mean_of_nothing_is_none():
    assert mean([]) is None
    assert mean([1.0, 0.0, 0.5]) == pytest.approx(0.5)


def test_edit_distance_hand_worked():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3
    assert edit_distance("abc", "abc") == 0
    assert edit_distance("flaw", "lawn") == 2
    # with a limit the search may stop early but never reports a distance within the limit wrongly
    assert edit_distance("kitten", "sitting", limit=1) > 1
    assert edit_distance("kitten", "sitting", limit=3) == 3


def test_nearest_title_is_case_insensitive_and_reports_distance():
    catalogue = ["Deadpool", "Zombieland", "The Hangover"]
    assert nearest_title("deadpol", catalogue) == TitleMatch("deadpol", "Deadpool", 1)
    assert nearest_title("ZOMBIELAND", catalogue) == TitleMatch("ZOMBIELAND", "Zombieland", 0)
    far = nearest_title("Casablanca", catalogue)
    assert far.distance > 2


def test_title_cleaning_and_parsing():
    assert clean_title('2. "Deadpool" (2016)') == "Deadpool"
    assert clean_title("- The Hangover.") == "The Hangover"
    assert parse_titles("1. Deadpool (2016)\n2. Zombieland\n\n3) Up") == ["Deadpool", "Zombieland", "Up"]
    assert parse_titles("Deadpool, Zombieland") == ["Deadpool", "Zombieland"]
    assert parse_titles("") == []


def test_catalogue_name_from_dbpedia_uri():
    assert catalogue_name("<http://dbpedia.org/resource/Hoffa_(film)>") == "Hoffa"
    assert catalogue_name("<http://dbpedia.org/resource/Addicted_(2014_film)>") == "Addicted"
    assert catalogue_name("<http://dbpedia.org/resource/Spider-Man>") == "Spider Man"


def test_recall_filters_r1_to_r4_hand_worked():
    # Turn 1: predictions "Casablanka" (1 edit from Casablanca, kept by the OOV filter), then
    # "Hustlers" (seen in the dialogue), then "Up". Gold: Up. Seen: Hustlers.
    # Turn 2: first prediction "Qwertyuiop" is far from everything (OOV), then "Deadpool". Gold: Deadpool.
    catalogue = ["Casablanca", "Hustlers", "Up", "Deadpool"]
    turn1 = [nearest_title(t, catalogue) for t in ["Casablanka", "Hustlers", "Up"]]
    turn2 = [nearest_title(t, catalogue) for t in ["Qwertyuiop", "Deadpool"]]
    # "qwertyuiop" is 8 edits from "up" and "deadpool", 9 from "hustlers", 10 from "casablanca": the first
    # of the nearest ("Up") is its catalogue title, far beyond the threshold of 2
    assert turn2[0] == TitleMatch("Qwertyuiop", "Up", 8)
    golds = [["Up"], ["Deadpool"]]
    seen = [["Hustlers"], []]
    r = recall_at_k([turn1, turn2], golds, seen, k=1)
    # r1 (no filter): turn 1 top is Casablanca (miss), turn 2 top is Up (miss) -> 0
    assert r["r1"] == 0.0
    # r2 (drop seen): turn 1 -> [Casablanca, Up]: miss; turn 2 unchanged: miss
    assert r["r2"] == 0.0
    # r3 (drop OOV): turn 1 -> Casablanca first: miss; turn 2 -> [Deadpool]: hit -> 1/2
    assert r["r3"] == pytest.approx(0.5)
    # r4: same as r3 here
    assert r["r4"] == pytest.approx(0.5)
    # at k=3 turn 1 recalls Up in every setting
    r3k = recall_at_k([turn1, turn2], golds, seen, k=3)
    assert r3k["r3"] == pytest.approx(1.0) and r3k["r4"] == pytest.approx(1.0)


def test_seen_filter_changes_the_top_item():
    matches = [TitleMatch("Hustlers", "Hustlers", 0), TitleMatch("Up", "Up", 0)]
    assert filtered_predictions(matches, ["Hustlers"], drop_oov=False, drop_seen=True) == ["Up"]
    r = recall_at_k([matches], [["Up"]], [["Hustlers"]], k=1)
    assert r == {"r1": 0.0, "r2": 1.0, "r3": 0.0, "r4": 1.0}
    # two gold items in one turn count as two (turn, gold) pairs
    r = recall_at_k([matches], [["Up", "Hustlers"]], [[]], k=1)
    assert r["r1"] == pytest.approx(0.5)


def test_recall_rejects_mismatched_lengths_and_bad_k():
    with pytest.raises(ValueError, match="differ in length"):
        recall_at_k([[]], [], [[]])
    with pytest.raises(ValueError, match="k must be"):
        recall_at_k([[]], [["x"]], [[]], k=0)
