"""Reading WeChat Pay's JSON into typed values: one strict reader per kind of field.

Why strict: an answer has passed its signature check before it is read, so a field of
the wrong type is not a network accident but an answer this client does not
understand; each reader raises ``ValueError`` naming the field, and the caller turns
that into "the verified answer is not a refund" (never a half-read value). Why
forgiving about *absent* optional fields: WeChat Pay leaves fields out (``success_time``
before success, ``amount`` in some partner notifications), and adds new ones, which
are ignored here and kept in each result's ``raw``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 with or without milliseconds (``2015-05-20T13:29:35.120+08:00``)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))  # 3.11+: "Z" and any fraction accepted
    if parsed.tzinfo is None:
        raise ValueError(f"time without an offset: {value!r}")
    return parsed


def mapping(data: Any, what: str = "the answer") -> Mapping[str, Any]:
    """``data`` itself when it is a JSON object; ``ValueError`` otherwise."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{what} is not a JSON object")
    return data


def text(data: Mapping[str, Any], name: str, *, required: bool = False) -> str:
    """A string field (absent optional ones as ""); ``ValueError`` when of another type."""
    value = data.get(name)
    if value is None:
        if required:
            raise ValueError(f"missing {name}")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    return value


def fen(data: Mapping[str, Any], name: str) -> int:
    """A required integer amount in fen (a JSON integer; ``true`` is not one)."""
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} is not an integer")
    return value


def optional_fen(data: Mapping[str, Any], name: str) -> int | None:
    """An integer amount that may be absent (None), never of another type."""
    return None if data.get(name) is None else fen(data, name)


def time(data: Mapping[str, Any], name: str) -> datetime | None:
    """An RFC 3339 time that may be absent (None)."""
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    try:
        return parse_time(value)
    except ValueError:
        raise ValueError(f"{name} is not an RFC 3339 time") from None


def items(data: Mapping[str, Any], name: str) -> Sequence[Any]:
    """A list field (absent as an empty list); ``ValueError`` when it is not a list."""
    value = data.get(name, [])
    if value is None:
        return []
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise ValueError(f"{name} is not a list")
    return value
