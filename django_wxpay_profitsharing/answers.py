"""Does a verified answer of WeChat Pay fit the request and the record it is written to?

Why: a signed answer is WeChat Pay's, but it can still name another resource than the
one asked about, or carry values no column holds (a 100-character id, a time 20 hours
off UTC, an amount past 64 bits). Written as it came, it would be stored as the asked
one, or fail in the database with a 500 halfway. One rule for every answer: such an
answer is a mismatch; nothing of it is written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import models

from .wechatpay.validation import MAX_AMOUNT

#: The largest UTC offset a real time carries (RFC 3339 allows more; databases do not).
MAX_OFFSET = timedelta(hours=14)


class AnswerMismatch(Exception):
    """A verified answer that contradicts the request or does not fit the record.

    ``fields`` names what is wrong; nothing of the answer was written.
    """

    def __init__(self, fields: list[str]) -> None:
        super().__init__(f"the answer does not fit: {', '.join(fields)}")
        self.fields = fields


def time_problem(value: datetime | None) -> bool:
    """Whether ``value`` is a time no database column can hold as the same instant."""
    if value is None:
        return False
    offset = value.utcoffset()
    if offset is None or abs(offset) > MAX_OFFSET:
        return True
    try:
        value.astimezone(UTC)
    except OverflowError:
        return True
    return False


def fits(model: type[models.Model], field: str, value: Any) -> bool:
    """Whether ``value`` fits the column ``model.field`` (its length, or amount range)."""
    if value is None:
        return True
    if isinstance(value, int):
        return 0 <= value <= MAX_AMOUNT
    limit = getattr(model._meta.get_field(field), "max_length", None)
    return limit is None or len(str(value)) <= limit


def misfits(model: type[models.Model], values: dict[str, Any]) -> list[str]:
    """The names among ``values`` that do not fit ``model``'s columns (times included)."""
    return [
        name
        for name, value in values.items()
        if (time_problem(value) if isinstance(value, datetime) else not fits(model, name, value))
    ]
