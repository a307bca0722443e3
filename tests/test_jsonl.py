"""The one JSONL reader behind every loader: line numbers, blank lines, and errors naming file and line."""

from __future__ import annotations

import pytest

from selfparam.jsonl import read_jsonl


class Custom(ValueError):
    pass


def test_rows_with_line_numbers_skipping_blanks(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n   \n{"a": 2}\n')
    assert list(read_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]


@pytest.mark.parametrize("content, why", [
    (b'{"a": 1}\n{"a": \n', "a.jsonl:2: not valid JSON"),
    (b'{"a": 1}\n[1, 2]\n', "a.jsonl:2: expected a JSON object, got list"),
    (b'{"a": 1}\n{"a": "caf\xe9"}\n', "a.jsonl:2: not valid UTF-8"),
])
def test_bad_lines_name_file_and_line(tmp_path, content, why):
    path = tmp_path / "a.jsonl"
    path.write_bytes(content)
    with pytest.raises(Custom, match=why):
        list(read_jsonl(path, Custom))


def test_read_json_names_the_file_and_what_it_is(tmp_path):
    from selfparam.jsonl import read_json

    (tmp_path / "ok.json").write_text('{"a": [1, 2]}')
    assert read_json(tmp_path / "ok.json", "settings") == {"a": [1, 2]}
    with pytest.raises(FileNotFoundError, match=r"settings .*missing.json does not exist"):
        read_json(tmp_path / "missing.json", "settings")
    with pytest.raises(ValueError, match=r"settings .*missing.json does not exist"):
        read_json(tmp_path / "missing.json", "settings", missing=ValueError)
    (tmp_path / "bad.json").write_bytes(b'{"a": ')
    with pytest.raises(ValueError, match=r"settings .*bad.json: not valid JSON"):
        read_json(tmp_path / "bad.json", "settings")
