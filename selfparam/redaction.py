"""Secrets never reach disk: credentials inside URLs are masked in anything written to a manifest.

>>> redact("https://user:key@host/v1?api_key=abc&x=1")
'https://***@host/v1?api_key=***&x=1'
"""

from __future__ import annotations

import re
from typing import Any

_USERINFO = re.compile(r"(?<=://)[^/@\s?#]+@")
_SECRET_PARAM = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|secret|password)=)[^&#\s]*")


def redact(value: Any) -> Any:
    """`value` with URL user-info and secret query parameters masked, in strings at any depth."""
    if isinstance(value, str):
        return _SECRET_PARAM.sub(r"\1***", _USERINFO.sub("***@", value))
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value
