"""Reading JSONL files with errors that name the file and the line.

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
