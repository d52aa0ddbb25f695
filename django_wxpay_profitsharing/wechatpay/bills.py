"""申请分账账单 (``GET /v3/profitsharing/bills``) and its download: the rules, no HTTP.

Why apart from ``client.py``: the client's two bill methods are thin (one signed,
verified GET; one signed GET whose answer is a file); what makes a bill trustworthy
lives here, each rule once (WeChat Pay's 申请分账账单 page,
https://pay.weixin.qq.com/doc/v3/merchant/4012529628, and 下载账单,
https://pay.weixin.qq.com/docs/merchant/apis/profit-sharing/download-bill.html):

* **Dates.** Only the last three months can be asked for; a date before that, or after
  today (Beijing), is refused before anything is sent (:func:`check_bill_date`).
  Today is allowed: WeChat Pay answers "请求的账单正在生成中" until about 10:00 the
  next day, the simulator serves it (a documented convenience).
* **The link.** The answer names ``download_url``, ``hash_type`` (``SHA1``) and
  ``hash_value``; the URL is valid for 30 seconds, so it is fetched at once.
* **The download.** Signed like every request (over the full path with its query);
  its answer carries no ``Wechatpay-Signature`` and is not verified as an answer
  ("需要跳过验签的流程"). The URL must point at the configured base URL's scheme, host
  and port (:func:`download_target`): the signed request goes nowhere else, and a
  URL that is not one is refused as such (``BillURLRefused``), never a crash.
* **The file.** A platform's daily bill runs to a million rows, so it is never held
  in memory: the download streams into a temporary file (:class:`BillDownload`),
  under a cap (:data:`MAX_BILL_BYTES`, as sent and uncompressed), GZIP inflated piece
  by piece as it arrives (:class:`Inflater`: bounded, no copies) only to hash the
  *uncompressed* bytes, whose SHA1 must equal ``hash_value`` (case-insensitively)
  before anything reads the file; :class:`~.errors.BillHashMismatch` otherwise.
  Parsing it, row by row, is ``bill_parser.py``'s job.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import hmac
import io
import re
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TextIO
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
#: The largest bill this client reads, as sent and uncompressed (a gzip bomb stops
#: here): 1 GiB, about four million rows. ``BILL_MAX_BYTES`` in the Django settings.
MAX_BILL_BYTES = 1024 * 1024 * 1024
#: The most plain bytes inflated at a time, and the size of a read of the file.
PIECE = 1024 * 1024
#: A download's whole-exchange read deadline: a bill is far larger than an answer.
DOWNLOAD_SECONDS = 600.0
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
    if not isinstance(download_url, str):
        raise BillURLRefused("download_url", "must be a URL")
    try:
        base, url = urlsplit(base_url), urlsplit(download_url)
    except ValueError:  # an unclosed IPv6 bracket, say
        raise BillURLRefused("download_url", "is not a URL") from None
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
    target = url.path + (f"?{url.query}" if url.query else "")
    if not target.isascii() or any(c in target for c in " \r\n\0\t"):
        raise BillURLRefused("download_url", "must be an encoded path and query")
    return target


class Inflater:
    """A bill's plain bytes, piece by piece: GZIP (one or more members) undone, or
    plain bytes passed on; never more than ``max_size`` of them in all.

    Why pieces: a gzip bomb (a few KB inflating to GBs) and a day's bill of a million
    rows alike stay at most :data:`PIECE` bytes in memory, and nothing is copied to
    be checked (``zlib``'s ``max_length`` bounds each piece; the input not yet inflated
    waits in ``unconsumed_tail``). What is not a whole GZIP stream is refused.
    """

    def __init__(self, max_size: int = MAX_BILL_BYTES) -> None:
        self.max_size = max_size
        self.size = 0
        self._gzip: bool | None = None  # undecided until two bytes are seen
        self._waiting = b""  # bytes too few yet to tell (a magic number split by a read)
        self._member: Any = None  # the zlib object of the member being inflated

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The plain bytes ``data`` completes; raises ``BillError``/``BillFormatError``."""
        if self._gzip is None:
            head = self._magic_or_wait(data)
            if head is None:
                return
            data, self._gzip = head, head.startswith(GZIP_MAGIC)
        if not self._gzip:
            yield self._counted(data)
            return
        while data:
            if self._member is None:  # a member starts here: its magic number first
                head = self._magic_or_wait(data)
                if head is None:
                    return
                if not head.startswith(GZIP_MAGIC):
                    raise BillFormatError("bytes after the end of the GZIP stream")
                data, self._member = head, zlib.decompressobj(16 + zlib.MAX_WBITS)
            member = self._member
            while True:
                try:
                    piece = member.decompress(data, PIECE)
                except zlib.error as exc:
                    raise BillFormatError(f"the GZIP stream is corrupt: {exc}") from None
                if piece:
                    yield self._counted(piece)
                data = member.unconsumed_tail
                # A full piece may leave output inside zlib even with no input left.
                if member.eof or (not data and len(piece) < PIECE):
                    break
            data = b""
            if member.eof:
                data, self._member = member.unused_data, None

    def _magic_or_wait(self, data: bytes) -> bytes | None:
        """``data`` after the bytes kept waiting, once it is long enough to show a magic
        number; else None, and it waits for the next read."""
        data, self._waiting = self._waiting + data, b""
        if len(data) < len(GZIP_MAGIC):
            self._waiting = data
            return None
        return data

    def end(self) -> None:
        """After the last byte: refuses a GZIP stream cut short."""
        if self._gzip is None:
            if self._waiting:  # one byte: a plain file of one byte
                self._counted(self._waiting)
            return
        if self._gzip and (self._member is not None or self._waiting):
            raise BillFormatError("the GZIP stream is truncated")

    def _counted(self, piece: bytes) -> bytes:
        self.size += len(piece)
        if self.size > self.max_size:
            raise BillError(f"the bill is larger than {self.max_size} bytes uncompressed")
        return piece


def decompress(data: bytes, max_size: int = MAX_BILL_BYTES) -> bytes:
    """A small bill's plain bytes at once (:class:`Inflater` over ``data``)."""
    inflater = Inflater(max_size)
    plain = b"".join(inflater.feed(data))
    inflater.end()
    return plain


def check_hash(actual: str, hash_value: str) -> None:
    """SHA1 of the uncompressed bill against the announced digest (case-insensitive)."""
    expected = hash_value.strip().lower()
    if not hmac.compare_digest(actual, expected):
        raise BillHashMismatch(expected, actual)


class BillDownload:
    """Where a bill's download streams to: a temporary file, checked on the way.

    The file as sent (GZIP or plain) is written to an anonymous temporary file (in
    ``directory``, else the system's temporary directory), and inflated as it arrives
    only to hash and count the plain bytes; they are not kept. :meth:`verify`, after
    the last byte, raises what was wrong (a corrupt or cut GZIP stream, a bill over
    ``max_size``, a SHA1 that is not ``hash_value``); then :meth:`plain` and
    :meth:`text` read the verified file back, inflating it again piece by piece.
    ``write`` never raises for the bill's content: the transport reading the answer
    is not the place to judge it, so the first problem is kept for :meth:`verify`.
    """

    def __init__(
        self, hash_value: str, max_size: int = MAX_BILL_BYTES, directory: str | None = None
    ) -> None:
        self.hash_value = hash_value
        self.max_size = max_size
        self.file = tempfile.TemporaryFile(prefix="wxpay-bill-", dir=directory)
        self._inflater = Inflater(max_size)
        self._sha1 = hashlib.sha1()  # noqa: S324 - the hash_type WeChat Pay uses
        self._problem: BillError | None = None
        self.verified = False

    def write(self, data: bytes) -> int:
        if self._problem is None:
            self.file.write(data)
            try:
                for piece in self._inflater.feed(data):
                    self._sha1.update(piece)
            except BillError as exc:
                self._problem = exc
        return len(data)

    def verify(self) -> None:
        """Raise what is wrong with the bill received; else it may be read."""
        if self._problem is None:
            try:
                self._inflater.end()
            except BillError as exc:
                self._problem = exc
        if self._problem is not None:
            raise self._problem
        check_hash(self._sha1.hexdigest(), self.hash_value)
        self.verified = True

    @property
    def size(self) -> int:
        """The bill's plain (uncompressed) bytes."""
        return self._inflater.size

    def plain(self) -> Iterator[bytes]:
        """The verified bill's plain bytes, piece by piece."""
        if not self.verified:
            raise BillError("the bill is read only once verified")
        self.file.seek(0)
        inflater = Inflater(self.max_size)
        while chunk := self.file.read(PIECE):
            yield from inflater.feed(chunk)
        inflater.end()

    def text(self) -> TextIO:
        """The verified bill as text (UTF-8, a BOM allowed; newlines kept for ``csv``)."""
        raw = io.BufferedReader(_PieceReader(self.plain()), PIECE)
        return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> BillDownload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PieceReader(io.RawIOBase):
    """A raw stream over an iterator of byte pieces (for ``io.TextIOWrapper``)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        super().__init__()
        self._pieces = pieces
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = memoryview(piece)
        count = min(len(buffer), len(self._left))
        buffer[:count] = self._left[:count]
        self._left = self._left[count:]
        return count
