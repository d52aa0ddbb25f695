"""Typed values of the return side: the request it sends, the return order and the
sharing order WeChat Pay answers, and call records.

WeChat's words (results, states, receiver types) are the enums of ``words.py``,
re-exported here; a value this version does not know is kept as the plain string it
was (``words.known_or_text``), so a new value never breaks reading an order, and the
caller's rules (which treat anything unknown as "not returnable") decide what it means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from . import reading, validation
from .errors import InvalidRequest
from .reading import parse_time
from .words import ReceiverResult as ReceiverResult
from .words import ReceiverType as ReceiverType
from .words import ReturnResult as ReturnResult
from .words import SharingOrderState as SharingOrderState
from .words import known_or_text


@dataclass(frozen=True)
class ReturnRequest:
    """The fields of one 请求分账回退, valid by construction.

    Why one type: the same seven fields travel from a form or serializer through the
    service layer's claim to the client's ``create_return``; declaring them once here,
    and checking them when the value is made, means nothing downstream re-lists them
    or sends a request that was not validated. Optional ids are ``None`` when absent
    (they are left out of the JSON body); exactly one of ``order_id`` and
    ``out_order_no`` is given. Making one with a bad field raises
    :class:`~.errors.InvalidRequest` naming it (the first problem);
    :meth:`check` reports every problem instead, for forms.
    """

    out_return_no: str
    return_mchid: str
    amount: int
    description: str
    out_order_no: str | None = None
    order_id: str | None = None
    sub_mchid: str | None = None
    _body: dict[str, Any] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        body, problems = validation.check_create_fields(self.fields())
        if problems:
            name, messages = next(iter(problems.items()))
            raise InvalidRequest(name, messages[0])
        object.__setattr__(self, "_body", body)

    def fields(self) -> dict[str, Any]:
        """The request fields by name (absent optional ids as None)."""
        return {name: getattr(self, name) for name in RETURN_REQUEST_FIELDS}

    def body(self) -> dict[str, Any]:
        """The JSON body of the create call, in WeChat's order, absent ids left out."""
        return dict(self._body)

    @classmethod
    def check(cls, given: Mapping[str, Any]) -> tuple[ReturnRequest | None, dict[str, list[str]]]:
        """Every problem of ``given`` by field name, or the request when there is none.

        Unknown names are problems too (a misspelt field must never be dropped).
        """
        unknown = sorted(set(given) - set(RETURN_REQUEST_FIELDS))
        values: dict[str, Any] = {name: given.get(name) for name in RETURN_REQUEST_FIELDS}
        _body, problems = validation.check_create_fields(values)
        for name in unknown:
            problems.setdefault(name, []).append(validation.UNKNOWN_FIELD)
        if problems:
            return None, problems
        return cls(**values), {}


#: The request's fields, in the order the dataclass declares them.
RETURN_REQUEST_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(ReturnRequest) if not f.name.startswith("_")
)


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
class SharingReceiver:
    """One receiver line of a sharing order (``OrderReceiverDetail``).

    ``detail_id`` (微信分账明细单号) is the line's natural key, also found in the fund
    statement. ``fail_reason`` is set for ``CLOSED`` lines. The line WeChat adds for
    unfrozen money (``description`` "解冻给分账方", ``account`` the payer itself) comes
    through as any other line: telling it apart is the caller's rule.
    """

    type: ReceiverType | str
    account: str
    amount: int
    description: str
    result: ReceiverResult | str
    fail_reason: str | None
    detail_id: str
    create_time: datetime | None
    finish_time: datetime | None

    @classmethod
    def from_dict(cls, data: Any) -> SharingReceiver:
        """Build from one ``receivers[]`` item; raises ``ValueError`` when malformed."""
        data = reading.mapping(data, "a receiver")
        return cls(
            type=known_or_text(ReceiverType, reading.text(data, "type", required=True)),
            account=reading.text(data, "account", required=True),
            amount=reading.fen(data, "amount"),
            description=reading.text(data, "description"),
            result=known_or_text(ReceiverResult, reading.text(data, "result", required=True)),
            fail_reason=reading.text(data, "fail_reason") or None,
            detail_id=reading.text(data, "detail_id"),
            create_time=parse_time(data.get("create_time")),
            finish_time=parse_time(data.get("finish_time")),
        )


@dataclass(frozen=True)
class SharingOrder:
    """A sharing order as 查询分账结果 answers it (``OrdersEntity``)."""

    sub_mchid: str | None
    transaction_id: str
    out_order_no: str
    order_id: str
    state: SharingOrderState | str
    receivers: tuple[SharingReceiver, ...]
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: Any) -> SharingOrder:
        """Build from WeChat's JSON; raises ``ValueError`` on a malformed entity."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        receivers = reading.items(data, "receivers")
        return cls(
            sub_mchid=reading.text(data, "sub_mchid") or None,
            transaction_id=reading.text(data, "transaction_id", required=True),
            out_order_no=reading.text(data, "out_order_no", required=True),
            order_id=reading.text(data, "order_id", required=True),
            state=known_or_text(SharingOrderState, reading.text(data, "state", required=True)),
            receivers=tuple(SharingReceiver.from_dict(item) for item in receivers),
            raw=data,  # freshly parsed JSON, owned by this object
        )


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
