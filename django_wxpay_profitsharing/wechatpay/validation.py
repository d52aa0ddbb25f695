"""Local validation of request fields, as WeChat Pay documents them (returns, refunds,
unfreezes, queries).

Runs before anything is sent, so that a malformed request never reaches WeChat Pay
(and never costs an attempt). Each function returns the cleaned value or raises
:class:`~.errors.InvalidRequest` naming the field. The Django app's forms and
serializers call the same functions, so the rules live here only.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidRequest

#: out_order_no / out_return_no: ``[0-9A-Za-z_*@|-]`` (older docs allow ``|``), 1..64.
OUT_NO_RE = re.compile(r"[0-9A-Za-z_*@|\-]{1,64}")
ORDER_ID_RE = re.compile(r"[0-9A-Za-z]{1,64}")
#: transaction_id (微信支付订单号), refund_id: string(32) in every SDK; digits in practice.
TRANSACTION_ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")
#: out_trade_no (商户订单号): string(32) of ``[0-9A-Za-z_*@|-]``.
OUT_TRADE_NO_RE = re.compile(r"[0-9A-Za-z_*@|\-]{1,32}")
#: A debit card number (发起异常退款 ``bank_account``, before encryption).
BANK_ACCOUNT_RE = re.compile(r"[0-9]{8,32}")
#: A bank type as WeChat Pay spells them (``CMB_DEBIT``...).
BANK_TYPE_RE = re.compile(r"[A-Z0-9_]{1,16}")
MCHID_RE = re.compile(r"[0-9]{1,32}")
#: ASCII's control characters, DEL included (the fast path for ASCII text).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
#: Unicode categories a description may not contain: control (Cc: C0, DEL, C1 such as
#: U+0085) is one message; format (Cf: U+200B, bidi overrides U+202A-U+202E and
#: isolates U+2066-U+2069, U+FEFF...) and the line/paragraph separators (Zl U+2028,
#: Zp U+2029) another. Invisible text that reads one way on the admin page and
#: another in WeChat's merchant platform has no place in a money record.
CONTROL_CATEGORIES = frozenset({"Cc"})
INVISIBLE_CATEGORIES = frozenset({"Cf", "Zl", "Zp"})
#: The largest amount (fen) a ``PositiveBigIntegerField`` holds on every database.
MAX_AMOUNT = 2**63 - 1
MAX_DESCRIPTION = 80
#: ``reason`` of a refund: at most 80 *bytes* of UTF-8 (it is cut there, not refused).
MAX_REASON_BYTES = 80
MAX_NOTIFY_URL = 256
LOOPBACK_HOSTS = frozenset({"localhost"})

# What a refused field is told. Plain English here (this package has no Django); the
# app translates them (``validation_messages.py``, zh_Hans shipped).
NOT_TEXT = "must be a string"
NOT_UTF8 = "must be valid UTF-8 text"
BAD_OUT_NO = "must be 1-64 characters of digits, letters and _ - | * @ only"
BAD_ORDER_ID = "must be 1-64 digits or letters"
BAD_MCHID = "must be a merchant id of 1-32 digits"
BAD_TRANSACTION_ID = "must be 1-32 digits or letters"
NOT_FEN = "must be an integer number of fen"
TOO_LITTLE = "must be at least 1 fen"
TOO_MUCH = "must be at most 9223372036854775807 fen"
BLANK = "must not be blank"
TOO_LONG = "must be at most 80 characters"
CONTROL_CHARACTERS = "must not contain control characters"
INVISIBLE_CHARACTERS = "must not contain invisible format or line separator characters"
ONE_ORDER_REFERENCE = "give exactly one of order_id and out_order_no"
UNKNOWN_FIELD = "is not a field of a return request"
BAD_OUT_TRADE_NO = "must be 1-32 characters of digits, letters and _ - | * @ only"
ONE_PAYMENT_REFERENCE = "give exactly one of transaction_id and out_trade_no"
OVER_TOTAL = "must not exceed the order total"
NOT_CNY = "must be CNY"
NO_EMOJI = "must not contain emoji or other characters beyond the Basic Multilingual Plane"
BAD_NOTIFY_URL = (
    "must be an https:// URL of at most 256 characters without a query string "
    "(plain http only to a loopback address)"
)
BAD_FROM_ACCOUNT = "must be AVAILABLE or UNAVAILABLE"
FROM_REPEATED = "must not name an account twice"
FROM_NOT_REFUND = "must add up to the refund amount"
BAD_ABNORMAL_TYPE = "must be USER_BANK_CARD or MERCHANT_BANK_CARD"
CARD_NEEDED = "a refund to the user's bank card needs bank_type, bank_account and real_name"
CARD_REFUSED = "only a refund to the user's bank card takes card details"
BAD_BANK_TYPE = "must be a bank type such as CMB_DEBIT"
BAD_BANK_ACCOUNT = "must be a card number of 8-32 digits"
UNKNOWN_REFUND_FIELD = "is not a field of this request"
MESSAGES = (
    NOT_TEXT,
    NOT_UTF8,
    BAD_OUT_NO,
    BAD_ORDER_ID,
    BAD_MCHID,
    BAD_TRANSACTION_ID,
    NOT_FEN,
    TOO_LITTLE,
    TOO_MUCH,
    BLANK,
    TOO_LONG,
    CONTROL_CHARACTERS,
    INVISIBLE_CHARACTERS,
    ONE_ORDER_REFERENCE,
    UNKNOWN_FIELD,
    BAD_OUT_TRADE_NO,
    ONE_PAYMENT_REFERENCE,
    OVER_TOTAL,
    NOT_CNY,
    NO_EMOJI,
    BAD_NOTIFY_URL,
    BAD_FROM_ACCOUNT,
    FROM_REPEATED,
    FROM_NOT_REFUND,
    BAD_ABNORMAL_TYPE,
    CARD_NEEDED,
    CARD_REFUSED,
    BAD_BANK_TYPE,
    BAD_BANK_ACCOUNT,
    UNKNOWN_REFUND_FIELD,
)


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(field, NOT_TEXT)
    if not value.isascii():  # ASCII is UTF-8; otherwise only lone surrogates fail
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(field, NOT_UTF8) from None
    return value


def validate_out_no(value: Any, field: str = "out_return_no") -> str:
    text = _text(value, field)
    if not OUT_NO_RE.fullmatch(text):
        raise InvalidRequest(field, BAD_OUT_NO)
    return text


def validate_order_id(value: Any) -> str:
    text = _text(value, "order_id")
    if not ORDER_ID_RE.fullmatch(text):
        raise InvalidRequest("order_id", BAD_ORDER_ID)
    return text


def validate_mchid(value: Any, field: str = "return_mchid") -> str:
    text = _text(value, field)
    if not MCHID_RE.fullmatch(text):
        raise InvalidRequest(field, BAD_MCHID)
    return text


def validate_transaction_id(value: Any) -> str:
    return validate_wechat_id(value, "transaction_id")


def validate_wechat_id(value: Any, field: str) -> str:
    """One of WeChat Pay's own ids (transaction_id, refund_id): 1-32 digits or letters."""
    text = _text(value, field)
    if not TRANSACTION_ID_RE.fullmatch(text):
        raise InvalidRequest(field, BAD_TRANSACTION_ID)
    return text


def validate_out_trade_no(value: Any) -> str:
    text = _text(value, "out_trade_no")
    if not OUT_TRADE_NO_RE.fullmatch(text):
        raise InvalidRequest("out_trade_no", BAD_OUT_TRADE_NO)
    return text


def validate_amount(value: Any, field: str = "amount") -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(field, NOT_FEN)
    if value < 1:
        raise InvalidRequest(field, TOO_LITTLE)
    if value > MAX_AMOUNT:
        raise InvalidRequest(field, TOO_MUCH)
    return value


def validate_description(value: Any) -> str:
    """A return's or an unfreeze's reason: 1-80 characters of visible text.

    Blank means nothing but whitespace and format characters (a lone U+200B is
    blank). Any control character (Cc) or format/separator character (Cf, Zl, Zp) is
    refused: they are invisible or reorder what the operator sees.
    """
    return _visible_text(value, "description", MAX_DESCRIPTION)


def _visible_text(value: Any, field: str, max_chars: int | None = None) -> str:
    """Text with something visible in it, no control or invisible character, and (when
    ``max_chars`` is given) not longer than that; the length is told before the rest."""
    text = _text(value, field)
    if text.isascii():  # no format or separator character exists in ASCII
        if not text.strip():
            raise InvalidRequest(field, BLANK)
        problem = CONTROL_CHARACTERS if CONTROL_RE.search(text) else None
    else:
        categories = [unicodedata.category(ch) for ch in text]
        visible = [
            ch
            for ch, category in zip(text, categories, strict=True)
            if category not in INVISIBLE_CATEGORIES and not ch.isspace()
        ]
        if not visible:
            raise InvalidRequest(field, BLANK)
        problem = _category_problem(categories)
    if max_chars is not None and len(text) > max_chars:
        raise InvalidRequest(field, TOO_LONG)
    if problem is not None:
        raise InvalidRequest(field, problem)
    return text


def validate_reason(value: Any) -> str:
    """A refund's ``reason``: visible text without emoji, cut to 80 bytes of UTF-8.

    WeChat Pay counts the limit in bytes and shows the reason to the user; a longer
    reason is cut at the last whole character within 80 bytes rather than refused, so
    what is sent (and recorded) is what the user will read.
    """
    text = _visible_text(value, "reason")
    if any(ord(ch) > 0xFFFF for ch in text):
        raise InvalidRequest("reason", NO_EMOJI)
    return cut_to_bytes(text, MAX_REASON_BYTES)


def cut_to_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 takes at most ``limit`` bytes."""
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore")


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback addresses: where plain HTTP may go (a simulator)."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_notify_url(value: Any) -> str:
    """An https URL of at most 256 characters, no query string, no fragment, no login.

    Plain http only to a loopback host: the simulator calls such a URL on the same
    machine; WeChat Pay itself calls https only.
    """
    text = _text(value, "notify_url")
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        _port = parts.port
    except ValueError:
        raise InvalidRequest("notify_url", BAD_NOTIFY_URL) from None
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))
    if (
        len(text) > MAX_NOTIFY_URL
        or not secure
        or not host
        or parts.query
        or "?" in text
        or parts.fragment
        or parts.username is not None
        or CONTROL_RE.search(text)
        or not text.isascii()
    ):
        raise InvalidRequest("notify_url", BAD_NOTIFY_URL)
    return text


def validate_bank_type(value: Any) -> str:
    text = _text(value, "bank_type")
    if not BANK_TYPE_RE.fullmatch(text):
        raise InvalidRequest("bank_type", BAD_BANK_TYPE)
    return text


def validate_bank_account(value: Any) -> str:
    """A card number before encryption (never echoed in the error)."""
    text = _text(value, "bank_account")
    if not BANK_ACCOUNT_RE.fullmatch(text):
        raise InvalidRequest("bank_account", BAD_BANK_ACCOUNT)
    return text


def validate_real_name(value: Any) -> str:
    """The card holder's name before encryption: 1-80 characters of visible text."""
    return _visible_text(value, "real_name", MAX_DESCRIPTION)


def _category_problem(categories: list[str]) -> str | None:
    """The message for the first refused category among ``categories``, or None."""
    for category in categories:
        if category in CONTROL_CATEGORIES:
            return CONTROL_CHARACTERS
        if category in INVISIBLE_CATEGORIES:
            return INVISIBLE_CHARACTERS
    return None


#: The fields of a create call in WeChat's body order, each with its check.
CREATE_FIELDS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("sub_mchid", lambda value: validate_mchid(value, "sub_mchid")),
    ("order_id", validate_order_id),
    ("out_order_no", lambda value: validate_out_no(value, "out_order_no")),
    ("out_return_no", lambda value: validate_out_no(value, "out_return_no")),
    ("return_mchid", lambda value: validate_mchid(value, "return_mchid")),
    ("amount", validate_amount),
    ("description", validate_description),
)
REQUIRED_CREATE_FIELDS = frozenset({"out_return_no", "return_mchid", "amount", "description"})


def check_create_fields(
    fields: Mapping[str, Any], required: Collection[str] = REQUIRED_CREATE_FIELDS
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every field of a create call checked: (clean body, problems by field name).

    A field given as None is absent (left out of the body) unless it is required;
    exactly one of ``order_id`` and ``out_order_no`` must be present. The request
    type (``models.ReturnRequest``) stops at the first problem; the app's forms and
    serializers show them all.
    """
    body: dict[str, Any] = {}
    problems: dict[str, list[str]] = {}
    if (fields.get("order_id") is None) == (fields.get("out_order_no") is None):
        problems["out_order_no"] = [ONE_ORDER_REFERENCE]
    for name, check in CREATE_FIELDS:
        value = fields.get(name)
        if value is None and name not in required:
            continue
        try:
            body[name] = check(value)
        except InvalidRequest as exc:
            problems.setdefault(exc.field, []).append(exc.message)
    return body, problems


def validate_query_request(
    *, out_return_no: Any, out_order_no: Any, sub_mchid: Any = None
) -> dict[str, str]:
    """The parameters of a query call (``out_order_no`` is required by WeChat Pay)."""
    params = {
        "out_return_no": validate_out_no(out_return_no, "out_return_no"),
        "out_order_no": validate_out_no(out_order_no, "out_order_no"),
    }
    if sub_mchid is not None:
        params["sub_mchid"] = validate_mchid(sub_mchid, "sub_mchid")
    return params


def validate_order_query_request(
    *, out_order_no: Any, transaction_id: Any, sub_mchid: Any = None
) -> dict[str, str]:
    """The parameters of 查询分账结果 (``transaction_id`` is required by WeChat Pay)."""
    params = {
        "out_order_no": validate_out_no(out_order_no, "out_order_no"),
        "transaction_id": validate_transaction_id(transaction_id),
    }
    if sub_mchid is not None:
        params["sub_mchid"] = validate_mchid(sub_mchid, "sub_mchid")
    return params
