"""Typed results of the client: the return order WeChat Pay answers, and call records."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class ReturnResult(enum.StrEnum):
    """WeChat Pay's ``result`` of a return (values it may add later are kept as text)."""

    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 with or without milliseconds (``2015-05-20T13:29:35.120+08:00``)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))  # 3.11+: "Z" and any fraction accepted
    if parsed.tzinfo is None:
        raise ValueError(f"time without an offset: {value!r}")
    return parsed


@dataclass(frozen=True)
class ReturnOrder:
    """A ``ReturnOrdersEntity``: the answer of both the create and the query call."""

    order_id: str
    out_order_no: str
    out_return_no: str
    return_id: str
    return_mchid: str
    amount: int
    description: str
    result: str
    create_time: datetime | None
    finish_time: datetime | None
    sub_mchid: str | None = None
    fail_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReturnOrder:
        """Build from WeChat's JSON; raises ``ValueError`` on a malformed entity.

        Every field is given, so the instance's ``__dict__`` is filled in one step
        instead of through the generated ``__init__``: a frozen dataclass sets each
        of its 13 fields with ``object.__setattr__``, which was the largest single
        share of the client's own work per call. The result is the same object
        ``cls(**fields)`` would make, and as frozen.
        """
        try:
            amount = data["amount"]
            if not isinstance(amount, int) or isinstance(amount, bool):
                raise ValueError("amount is not an integer")
            fields = {
                "order_id": str(data.get("order_id", "")),
                "out_order_no": str(data.get("out_order_no", "")),
                "out_return_no": str(data["out_return_no"]),
                "return_id": str(data.get("return_id", "")),
                "return_mchid": str(data["return_mchid"]),
                "amount": amount,
                "description": str(data.get("description", "")),
                "result": str(data["result"]),
                "create_time": parse_time(data.get("create_time")),
                "finish_time": parse_time(data.get("finish_time")),
                "sub_mchid": data.get("sub_mchid") or None,
                "fail_reason": data.get("fail_reason") or None,
                "raw": data,  # freshly parsed JSON, owned by this object
            }
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a return order: missing or bad {exc}") from None
        order = object.__new__(cls)
        order.__dict__.update(fields)
        return order

    @property
    def is_final(self) -> bool:
        return self.result in (ReturnResult.SUCCESS.value, ReturnResult.FAILED.value)


@dataclass(frozen=True)
class CallInfo:
    """One HTTP attempt, for the audit trail (never headers, keys or signatures)."""

    method: str
    path: str
    status: int | None
    request_id: str
    error_code: str
    duration_ms: float
    outcome: str  # "ok" | "api_error" | "transport_error" | "signature_error"
    retry_index: int = 0
