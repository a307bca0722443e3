"""Reading JSON and JSONL files with errors that name the file (and the line).

    >>> for lineno, row in read_jsonl(path, DataError):
    ...     row["question"]

Blank lines are skipped; a line that is not UTF-8, not JSON, or not a JSON object raises `error` (any
exception class taking a message) as `<path>:<line>: <why>`. Checking the fields is the caller's job.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator


def read_jsonl(path: str | Path, error: type[Exception] = ValueError) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of `path`."""
    path = Path(path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise error(f"{path}:{lineno}: not valid UTF-8 (byte {e.start} of the line); save the file as UTF-8") \
                    from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise error(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def read_json(path: str | Path, what: str, missing: type[Exception] = FileNotFoundError) -> Any:
    """The parsed content of the JSON file `path`; `what` names it in the errors (`missing` for an absent
    file, ValueError for bytes that are not UTF-8 JSON).

    >>> read_json("runs/x/config.json", "method config file")
    """
    path = Path(path)
    if not path.is_file():
        raise missing(f"{what} {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{what} {path}: not valid JSON ({e})") from None
