"""申请分账账单 (``GET /v3/profitsharing/bills``) and its download: the rules, no HTTP.

Why apart from ``client.py``: the client's two bill methods are thin (one signed,
verified GET; one signed GET whose answer is a file); what makes a bill trustworthy
lives here, each rule once (wxpay-neighbours.md §1c):

* **Dates.** Only the last three months can be asked for; a date before that, or after
  today (Beijing), is refused before anything is sent (:func:`check_bill_date`).
  Today is allowed: WeChat Pay answers "请求的账单正在生成中" until about 10:00 the
  next day, the simulator serves it (a documented convenience).
* **The link.** The answer names ``download_url``, ``hash_type`` (``SHA1``) and
  ``hash_value``; the URL is valid for 30 seconds, so it is fetched at once.
* **The download.** Signed like every request (over the full path with its query);
  its answer carries no ``Wechatpay-Signature`` and is not verified as an answer
  ("需要跳过验签的流程"). The URL must point at the configured base URL's scheme, host
  and port (:func:`download_target`): the signed request goes nowhere else.
* **The file.** GZIP is decompressed (bounded: :data:`MAX_BILL_BYTES`), then the SHA1
  of the *uncompressed* bytes must equal ``hash_value`` (case-insensitively), or
  :class:`~.errors.BillHashMismatch` is raised and nothing is parsed
  (:func:`checked_bill`). Parsing is ``bill_parser.py``'s job.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import re
import zlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import BillError, BillFormatError, BillHashMismatch, BillURLRefused, InvalidRequest
from .validation import validate_mchid

BILLS_PATH = "/v3/profitsharing/bills"
#: WeChat Pay's bills are dated in Beijing time.
BEIJING = dt.timezone(dt.timedelta(hours=8))
#: How far back a bill may be asked for, in calendar months.
HISTORY_MONTHS = 3
TAR_TYPES = ("GZIP",)
HASH_TYPE = "SHA1"
#: The largest uncompressed bill this client reads (a gzip bomb stops here).
MAX_BILL_BYTES = 256 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"
_SHA1_HEX = re.compile(r"[0-9A-Fa-f]{40}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class BillLink:
    """Where to download one bill, and the SHA1 its uncompressed bytes must have."""

    download_url: str
    hash_type: str
    hash_value: str

    @classmethod
    def from_dict(cls, data: Any) -> BillLink:
        """Read a verified answer; raises ``ValueError`` naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        url, kind, value = (data.get(n) for n in ("download_url", "hash_type", "hash_value"))
        if not isinstance(url, str) or not url:
            raise ValueError("download_url is missing")
        if not isinstance(kind, str) or kind.upper() != HASH_TYPE:
            raise ValueError(f"hash_type must be {HASH_TYPE}")
        if not isinstance(value, str) or not _SHA1_HEX.fullmatch(value):
            raise ValueError("hash_value is not a SHA1 hex digest")
        return cls(url, kind.upper(), value)


def beijing_today(now: float) -> dt.date:
    """The Beijing date at POSIX time ``now``."""
    return dt.datetime.fromtimestamp(now, BEIJING).date()


def earliest_bill_date(today: dt.date) -> dt.date:
    """The oldest date WeChat Pay still has a bill for: the same day three months ago."""
    month_index = today.year * 12 + today.month - 1 - HISTORY_MONTHS
    year, month = divmod(month_index, 12)
    day = min(today.day, calendar.monthrange(year, month + 1)[1])
    return dt.date(year, month + 1, day)


def check_bill_date(bill_date: dt.date | str, today: dt.date) -> dt.date:
    """The bill date as a ``date``, within the last three months; else ``InvalidRequest``."""
    if isinstance(bill_date, dt.datetime):
        raise InvalidRequest("bill_date", "must be a date, not a date and time")
    if isinstance(bill_date, str):
        if not _DATE.fullmatch(bill_date):
            raise InvalidRequest("bill_date", "must be a date written YYYY-MM-DD")
        try:
            bill_date = dt.date.fromisoformat(bill_date)
        except ValueError:
            raise InvalidRequest("bill_date", "is not a calendar date") from None
    if not isinstance(bill_date, dt.date):
        raise InvalidRequest("bill_date", "must be a date or a YYYY-MM-DD string")
    earliest = earliest_bill_date(today)
    if bill_date < earliest:
        raise InvalidRequest(
            "bill_date",
            f"{bill_date.isoformat()} is older than three months: "
            f"bills are kept from {earliest.isoformat()} on",
        )
    if bill_date > today:
        raise InvalidRequest(
            "bill_date", f"{bill_date.isoformat()} is after today ({today.isoformat()}, Beijing)"
        )
    return bill_date


def bill_query(bill_date: dt.date, sub_mchid: str | None, tar_type: str | None) -> dict[str, str]:
    """The query of ``GET /v3/profitsharing/bills``, in the documented order."""
    query = {"bill_date": bill_date.isoformat()}
    if sub_mchid is not None:
        query["sub_mchid"] = validate_mchid(sub_mchid, "sub_mchid")
    if tar_type is not None:
        if tar_type not in TAR_TYPES:
            raise InvalidRequest("tar_type", "must be GZIP, or None for an uncompressed file")
        query["tar_type"] = tar_type
    return query


def download_target(base_url: str, download_url: str) -> str:
    """The request target (path?query) of a download URL on ``base_url``'s origin.

    Raises :class:`~.errors.BillURLRefused` for any other scheme, host or port, and
    for credentials or a fragment in the URL: the signed request is never sent there.
    """
    base, url = urlsplit(base_url), urlsplit(download_url)
    try:
        same_port = (url.port or DEFAULT_PORTS.get(url.scheme)) == (
            base.port or DEFAULT_PORTS.get(base.scheme)
        )
    except ValueError:  # a port that is not a number
        same_port = False
    same_origin = (
        url.scheme == base.scheme
        and (url.hostname or "").lower() == (base.hostname or "").lower()
        and same_port
    )
    if not same_origin or url.username is not None or url.password is not None:
        raise BillURLRefused(
            "download_url", f"must be on {base.scheme}://{base.netloc}, the configured base URL"
        )
    if url.fragment or not url.path.startswith("/"):
        raise BillURLRefused("download_url", "must be a plain path and query on the base URL")
    return url.path + (f"?{url.query}" if url.query else "")


def decompress(data: bytes, max_size: int = MAX_BILL_BYTES) -> bytes:
    """The bill's plain bytes: GZIP (one or more members) undone, never over ``max_size``."""
    if not data.startswith(GZIP_MAGIC):
        if len(data) > max_size:
            raise BillError(f"the bill is larger than {max_size} bytes")
        return data
    out = bytearray()
    rest = data
    while rest:
        if not rest.startswith(GZIP_MAGIC):
            raise BillFormatError("bytes after the end of the GZIP stream")
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += inflater.decompress(rest, max_size - len(out) + 1)
        except zlib.error as exc:
            raise BillFormatError(f"the GZIP stream is corrupt: {exc}") from None
        if len(out) > max_size:
            raise BillError(f"the bill is larger than {max_size} bytes uncompressed")
        if not inflater.eof:
            raise BillFormatError("the GZIP stream is truncated")
        rest = inflater.unused_data
    return bytes(out)


def check_hash(plain: bytes, hash_value: str) -> None:
    """SHA1 of the uncompressed bill against the announced digest (case-insensitive)."""
    actual = hashlib.sha1(plain).hexdigest()  # noqa: S324 - the hash_type WeChat Pay uses
    expected = hash_value.strip().lower()
    if not hmac.compare_digest(actual, expected):
        raise BillHashMismatch(expected, actual)


def checked_bill(raw: bytes, hash_value: str, max_size: int = MAX_BILL_BYTES) -> bytes:
    """Decompress, then check the hash: the only way bill bytes leave the client."""
    plain = decompress(raw, max_size)
    check_hash(plain, hash_value)
    return plain
