"""Loaders on the real shared files, and clear errors on malformed ones."""

from __future__ import annotations

import json

import pytest

from selfparam.eval.loaders import (
    DataError,
    load_crs,
    load_pwc_jsonl,
    load_qa,
    load_squad,
    sample_contexts,
    sample_turns,
)


def test_squad_dev_public_file(shared_data):
    contexts = load_squad(shared_data / "squad_v1.1/dev-v1.1-public.json")
    assert len(contexts) == 1379  # paragraphs listed in the data README
    assert sum(len(c.questions) for c in contexts) == 7235
    first = contexts[0]
    assert first.context.id == "Super_Bowl_50/0"
    assert first.questions[0].question == "Which NFL team represented the AFC at Super Bowl 50?"
    assert first.questions[0].answers == ("Denver Broncos",)  # three identical spans folded into one
    assert len({c.context.id for c in contexts}) == len(contexts)


def test_sampling_is_seeded_and_even(shared_data):
    contexts = load_qa(shared_data / "squad_v1.1/dev-v1.1-public.json")
    a = sample_contexts(contexts, 20, seed=0, questions_per_context=3)
    b = sample_contexts(contexts, 20, seed=0, questions_per_context=3)
    c = sample_contexts(contexts, 20, seed=1, questions_per_context=3)
    assert [x.context.id for x in a] == [x.context.id for x in b]
    assert [x.context.id for x in a] != [x.context.id for x in c]
    assert all(len(x.questions) == 3 for x in a)
    ten = sample_contexts(contexts, 10, seed=0, questions_per_context=3)
    assert [x.context.id for x in ten] == [x.context.id for x in a[:10]]  # runs of different n share contexts
    with pytest.raises(DataError, match="only"):
        sample_contexts(contexts, 10_000, seed=0, questions_per_context=3)


def test_excluded_contexts_are_passed_over_and_the_rest_keep_their_place(shared_data):
    contexts = load_qa(shared_data / "squad_v1.1/dev-v1.1-public.json", articles=tuple(range(1, 17)))
    six = [x.context.id for x in sample_contexts(contexts, 6, seed=0, questions_per_context=3)]
    dropped = six[3]
    five = sample_contexts(contexts, 5, seed=0, questions_per_context=3, exclude=(dropped,))
    assert [x.context.id for x in five] == six[:3] + six[4:]  # the next one moves up, nothing else moves
    with pytest.raises(DataError, match="no eligible context .* Nowhere/1"):
        sample_contexts(contexts, 5, seed=0, questions_per_context=3, exclude=("Nowhere/1",))
    with pytest.raises(DataError, match="once 1 are excluded"):
        sample_contexts(contexts[:4], 4, seed=0, questions_per_context=1, exclude=(contexts[0].context.id,))


def test_pwc_jsonl_groups_rows_by_context(tmp_path):
    path = tmp_path / "pwc.jsonl"
    rows = [{"context": "Ann lives in Oslo.", "question": "Where does Ann live?", "answer": "Oslo"},
            {"context": "Bob is 40.", "question": "How old is Bob?", "answer": ["40", "forty"]},
            {"context": "Ann lives in Oslo.", "question": "Who lives in Oslo?", "answer": "Ann"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    contexts = load_qa(path)
    assert [c.context.text for c in contexts] == ["Ann lives in Oslo.", "Bob is 40."]
    assert [q.question for q in contexts[0].questions] == ["Where does Ann live?", "Who lives in Oslo?"]
    assert contexts[1].questions[0].answers == ("40", "forty")


@pytest.mark.parametrize("content, message", [
    ('{"context": "x", "question": "q"}\n', "expected an object"),
    ("not json\n", "not valid JSON"),
    ('{"context": "", "question": "q", "answer": "a"}\n', "empty"),
    ("", "no rows"),
])
def test_pwc_jsonl_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load_pwc_jsonl(path)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_qa(tmp_path / "nope.json")
    other = tmp_path / "data.csv"
    other.write_text("a,b\n")
    with pytest.raises(DataError, match="unknown data format"):
        load_qa(other)
    squad_like = tmp_path / "x.json"
    squad_like.write_text('{"version": "1.1"}')
    with pytest.raises(DataError, match="not SQuAD JSON"):
        load_qa(squad_like)
    undecodable = tmp_path / "y.json"
    undecodable.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match="UTF-8"):
        load_qa(undecodable)


@pytest.mark.parametrize("name, turns, items", [("inspired", 228, 1123), ("redial", 3552, 6281)])
def test_crs_sets(shared_data, name, turns, items):
    data = load_crs(shared_data / "crs_selfparam" / name)
    assert len(data.turns) == turns  # every test turn has a gold item
    assert len(data.catalogue) <= items  # titles de-duplicated (remakes share a name)
    assert len(data.catalogue) > 0.9 * items
    catalogue = set(data.catalogue)
    assert all(g in catalogue for t in data.turns for g in t.gold)
    assert all(s in catalogue for t in data.turns for s in t.seen)
    assert not any(t.dialogue.endswith("System:") for t in data.turns)


def test_inspired_first_turn(shared_data):
    data = load_crs(shared_data / "crs_selfparam/inspired")
    turn = data.turns[0]
    assert turn.gold == ("Hustlers",)
    assert "Hustlers" in turn.seen  # the user named it: a "discussion" item that r2/r4 exclude
    assert turn.dialogue.startswith("System: Hi! I'm here to help you chose a movie!")
    assert turn.dialogue.endswith("I generally like comedy, drama and documentaries")
    drawn = sample_turns(data, 5, seed=0)
    assert [t.id for t in drawn] == [t.id for t in sample_turns(data, 5, seed=0)]


def test_crs_folder_errors(tmp_path):
    with pytest.raises(DataError, match="missing test.jsonl"):
        load_crs(tmp_path)


def test_parse_articles():
    from selfparam.eval.loaders import parse_articles

    assert parse_articles("17-19,25") == (17, 18, 19, 25)
    assert parse_articles(" 3 , 1-2,2") == (1, 2, 3)
    for bad in ("17-", "a-b", "0-3", "5-2", "", "1,,2"):
        with pytest.raises(ValueError, match="articles"):
            parse_articles(bad)


def test_squad_articles_select_contexts_of_those_articles_only(shared_data, tmp_path):
    path = shared_data / "squad_v1.1/dev-v1.1-public.json"
    doc = json.loads(path.read_text())
    titles = [a["title"] for a in doc["data"]]
    report = load_qa(path, articles=tuple(range(17, 33)))
    assert report and {c.context.id.rsplit("/", 1)[0] for c in report} == set(titles[16:32])
    tuning = load_qa(path, articles=tuple(range(1, 17)))
    assert not {c.context.id for c in report} & {c.context.id for c in tuning}
    with pytest.raises(DataError, match=f"has {len(titles)} articles.*\\[{len(titles) + 1}\\]"):
        load_squad(path, articles=(1, len(titles) + 1))
    jsonl = tmp_path / "pwc.jsonl"
    jsonl.write_text(json.dumps({"context": "c", "question": "q", "answer": "a"}) + "\n")
    with pytest.raises(DataError, match="SQuAD JSON only"):
        load_qa(jsonl, articles=(1,))


def test_a_squad_file_is_parsed_once_until_it_changes(tmp_path):
    def squad(answer: str) -> str:
        return json.dumps({"data": [{"title": "T", "paragraphs": [
            {"context": "Zorblat is in May.", "qas": [{"question": "When?", "answers": [{"text": answer}]}]}]}]})

    path = tmp_path / "squad.json"
    path.write_text(squad("May"))
    first = load_squad(path)
    second = load_squad(path)
    assert first == second and first is not second       # the same items, each caller its own list
    first.clear()
    assert load_squad(path) == second                       # what a caller does to its list stays there
    path.write_text(squad("in May!"))                       # another size: parsed again
    assert load_squad(path)[0].questions[0].answers == ("in May!",)
