"""Reading the daily profit-sharing bill (分账账单): a detail part and a summary part.

**The layout here is this project's assumption.** WeChat Pay's pages link a
sample spreadsheet but do not list the domestic bill's columns in text, and
no public source gives its Chinese header row (the 下载账单 page,
https://pay.weixin.qq.com/docs/merchant/apis/profit-sharing/download-bill.html,
links "分账账单样例 分账账单.xlsx" only). What is documented: every detail row is one
split or one return ("明细数据每一行对应一笔分账或一笔回退"); there is a detail part and a
summary part, each with its own header row; fields may start with a backtick
(`` ` ``), older files lack it on some fields; amounts are in yuan. The
columns below follow the cross-border bill's documented fields (create_time,
initiator, sponsor, sub_mchid, transaction_id, order_id, out_order_no,
detail_id, receiver, amount, business_type, status, description) with
Chinese names, plus the return's own numbers. So the parser is
**header-driven**: columns are found by name, in any order, unknown columns
are kept aside (never an error), and a file lacking a required header is
refused naming it. When a real bill shows other names, add them to
:data:`DETAIL_HEADERS` / :data:`SUMMARY_HEADERS`; nothing else changes.

Detail part (header row, then one row per split or return)::

    分账发起时间   create_time       YYYY-MM-DD HH:MM:SS, Beijing
    分账发起方     initiator         required: the merchant that asked (mchid)
    分账出资方     sponsor           whose money moved: the payer of a split, the
                                     receiver of a return
    特约商户号     sub_mchid         partner mode; blank in the direct mode
    微信支付订单号 transaction_id
    微信分账单号   order_id
    商户分账单号   out_order_no      required
    分账明细单号   detail_id         a split line's detail_id
    微信回退单号   return_id         returns only
    商户回退单号   out_return_no     required (blank on a split row)
    分账接收方类型 receiver_type     MERCHANT_ID, PERSONAL_OPENID, ...
    分账接收方     receiver_account  required; on a return, the return_mchid
    金额(元)       amount            required; yuan, at most 2 decimals, >= 0
    业务类型       business_type     required: 分账 | 回退 | 解冻给分账方
    处理状态       status            required: 成功 | 处理中 | 失败 (or WeChat's
                                     SUCCESS | PROCESSING | FAILED | CLOSED)
    分账描述       description

Summary part (its own header row, then one row), checked against the details::

    分账总笔数 / 分账总金额(元)   split rows: count, sum of amounts (yuan)
    回退总笔数 / 回退总金额(元)   return rows: count, sum of amounts (yuan)

Header names are compared after stripping spaces and the backtick, with full-width
parentheses read as ASCII ones. The file is UTF-8 (a BOM is allowed), CSV.

Row by row: :class:`BillReader` reads the text as it comes (a day's bill of a
million rows never sits in memory), keeping only running totals for the summary
check; :func:`parse_bill` collects a small bill whole.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .errors import BillFormatError


class BusinessType(enum.StrEnum):
    SPLIT = "SPLIT"
    RETURN = "RETURN"
    UNFREEZE = "UNFREEZE"


#: Detail header (normalised) -> field. One place; aliases are further rows.
DETAIL_HEADERS: dict[str, str] = {
    "分账发起时间": "create_time",
    "分账发起方": "initiator",
    "分账出资方": "sponsor",
    "特约商户号": "sub_mchid",
    "子商户号": "sub_mchid",
    "微信支付订单号": "transaction_id",
    "微信订单号": "transaction_id",
    "微信分账单号": "order_id",
    "商户分账单号": "out_order_no",
    "分账明细单号": "detail_id",
    "微信回退单号": "return_id",
    "商户回退单号": "out_return_no",
    "分账接收方类型": "receiver_type",
    "分账接收方": "receiver_account",
    "金额(元)": "amount",
    "分账金额(元)": "amount",
    "业务类型": "business_type",
    "处理状态": "status",
    "分账状态": "status",
    "分账描述": "description",
    "描述": "description",
}
DETAIL_REQUIRED: dict[str, str] = {
    "initiator": "分账发起方",
    "out_order_no": "商户分账单号",
    "out_return_no": "商户回退单号",
    "receiver_account": "分账接收方",
    "amount": "金额(元)",
    "business_type": "业务类型",
    "status": "处理状态",
}
#: Summary header (normalised) -> field; all required.
SUMMARY_HEADERS: dict[str, str] = {
    "分账总笔数": "split_count",
    "分账总金额(元)": "split_amount",
    "回退总笔数": "return_count",
    "回退总金额(元)": "return_amount",
}
SUMMARY_REQUIRED: dict[str, str] = {f: h for h, f in SUMMARY_HEADERS.items()}
#: 业务类型 value -> business type.
BUSINESS_TYPES: dict[str, BusinessType] = {
    "分账": BusinessType.SPLIT,
    "回退": BusinessType.RETURN,
    "分账回退": BusinessType.RETURN,
    "解冻给分账方": BusinessType.UNFREEZE,
    "解冻": BusinessType.UNFREEZE,
}
#: 处理状态 value -> WeChat's result word.
STATUSES: dict[str, str] = {
    "成功": "SUCCESS",
    "SUCCESS": "SUCCESS",
    "处理中": "PROCESSING",
    "PROCESSING": "PROCESSING",
    "失败": "FAILED",
    "FAILED": "FAILED",
    "已关闭": "CLOSED",
    "CLOSED": "CLOSED",
}
_YUAN = re.compile(r"[0-9]{1,16}(\.[0-9]{1,2})?")
#: Longer than any summary header name with spaces and a backtick: a detail cell.
_LONGEST_SUMMARY_CELL = 40
_HEADER_FORM = str.maketrans({"（": "(", "）": ")", " ": None, "\u3000": None})


@dataclass(frozen=True)
class BillRow:
    """One detail row: a split line, a return or an unfreeze; amount in fen."""

    business_type: BusinessType
    status: str
    amount: int
    out_order_no: str
    out_return_no: str
    receiver_account: str
    receiver_type: str = ""
    create_time: str = ""
    initiator: str = ""
    sponsor: str = ""
    sub_mchid: str = ""
    transaction_id: str = ""
    order_id: str = ""
    detail_id: str = ""
    return_id: str = ""
    description: str = ""
    #: Columns the parser does not know, by header, as found.
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BillSummary:
    split_count: int
    split_amount: int
    return_count: int
    return_amount: int


@dataclass(frozen=True)
class Bill:
    rows: tuple[BillRow, ...]
    summary: BillSummary
    unknown_headers: tuple[str, ...] = field(default=())

    @property
    def returns(self) -> tuple[BillRow, ...]:
        return tuple(r for r in self.rows if r.business_type is BusinessType.RETURN)

    @property
    def splits(self) -> tuple[BillRow, ...]:
        return tuple(r for r in self.rows if r.business_type is BusinessType.SPLIT)


def clean(cell: str) -> str:
    """A field without surrounding spaces and its optional leading backtick."""
    cell = cell.strip()
    return cell[1:].strip() if cell.startswith("`") else cell


def header_name(cell: str) -> str:
    """A header as the tables spell it (spaces dropped, full-width parentheses ASCII)."""
    return clean(cell).translate(_HEADER_FORM)


def yuan_to_fen(text: str, where: str) -> int:
    """``"12.30"`` -> 1230, exactly; more than two decimals, signs or junk refused."""
    if not _YUAN.fullmatch(text):
        raise BillFormatError(f"{where}: {text!r} is not an amount in yuan with at most 2 decimals")
    return _fen(text)


def _fen(text: str) -> int:
    """Fen of a checked amount in yuan: integer arithmetic, no float, no rounding."""
    yuan, _, cents = text.partition(".")
    return int(yuan) * 100 + int((cents + "00")[:2])


def _count(text: str, where: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise BillFormatError(f"{where}: {text!r} is not a count")
    return int(text)


def _columns(
    header: list[str], table: dict[str, str], required: dict[str, str], part: str
) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Field -> column index, and the unknown columns; refuses missing or doubled fields."""
    found: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    for index, cell in enumerate(header):
        name = header_name(cell)
        name_field = table.get(name)
        if name_field is None:
            unknown.append((index, clean(cell)))
        elif name_field in found:
            raise BillFormatError(f"the {part} header names {name_field} twice ({name})")
        else:
            found[name_field] = index
    missing = tuple(h for f, h in required.items() if f not in found)
    if missing:
        raise BillFormatError(
            f"the {part} header lacks required column(s): {', '.join(missing)}", missing=missing
        )
    return found, unknown


class BillReader:
    """A bill's detail rows, read one by one from its text; then its summary, checked.

    Iterate it once for the rows (splits, returns, unfreezes, in the file's order);
    when the iteration ends, :attr:`summary` holds the summary part, already checked
    against the counts and sums of the rows read, and :attr:`rows` how many there
    were. Anything out of layout raises ``BillFormatError`` naming the line.
    """

    def __init__(self, text: Iterable[str]) -> None:
        self._reader = csv.reader(text)
        self.rows = 0
        self.summary: BillSummary | None = None
        self._totals = {BusinessType.SPLIT: [0, 0], BusinessType.RETURN: [0, 0]}
        header = self._next()
        if header is None:
            raise BillFormatError("the bill is empty")
        self._header = header
        columns, self._unknown = _columns(header, DETAIL_HEADERS, DETAIL_REQUIRED, "detail")
        self._columns = tuple(columns.items())
        self.unknown_headers = tuple(name for _, name in self._unknown)

    def _next(self) -> list[str] | None:
        """The next line that is not blank, or None at the end."""
        try:
            for cells in self._reader:
                if cells and (clean(cells[0]) or any(clean(c) for c in cells)):
                    return cells
        except UnicodeDecodeError:
            raise BillFormatError("the bill is not UTF-8 text") from None
        except csv.Error as exc:
            raise BillFormatError(f"the bill is not CSV: {exc}") from None
        return None

    def __iter__(self) -> Iterator[BillRow]:
        while (cells := self._next()) is not None:
            number = self._reader.line_num
            if len(cells[0]) <= _LONGEST_SUMMARY_CELL and header_name(cells[0]) in SUMMARY_HEADERS:
                self._read_summary(cells, number)
                return
            if len(cells) != len(self._header):
                raise BillFormatError(
                    f"line {number}: {len(cells)} fields where the header has {len(self._header)}"
                )
            row = _row(cells, self._columns, self._unknown, number)
            self.rows += 1
            totals = self._totals.get(row.business_type)
            if totals is not None:
                totals[0] += 1
                totals[1] += row.amount
            yield row
        raise BillFormatError("the bill has no summary part")

    def _read_summary(self, header: list[str], number: int) -> None:
        cells = self._next()
        if cells is None:
            raise BillFormatError(f"line {number}: the summary header has no row under it")
        summary = _summary(header, (self._reader.line_num, cells))
        if self._next() is not None:
            raise BillFormatError(f"line {self._reader.line_num}: a row after the summary")
        _check_summary(self._totals, summary)
        self.summary = summary


def parse_bill(data: bytes) -> Bill:
    """Parse a small bill's uncompressed bytes (checked against their hash first)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillFormatError("the bill is not UTF-8 text") from None
    reader = BillReader(io.StringIO(text, newline=""))
    rows = tuple(reader)
    assert reader.summary is not None  # the iteration ends only after a checked summary
    return Bill(rows, reader.summary, reader.unknown_headers)


def _row(
    cells: list[str],
    columns: tuple[tuple[str, int], ...],
    unknown: list[tuple[int, str]],
    number: int,
) -> BillRow:
    values: dict[str, str] = {}
    for name, index in columns:  # clean() inlined: a million rows call it 16 times each
        cell = cells[index].strip()
        values[name] = cell[1:].strip() if cell[:1] == "`" else cell
    business, status_text = values.pop("business_type"), values.pop("status")
    kind = BUSINESS_TYPES.get(business)
    if kind is None:
        raise BillFormatError(f"line {number}: unknown 业务类型 {business!r}")
    status = STATUSES.get(status_text)
    if status is None:
        raise BillFormatError(f"line {number}: unknown 处理状态 {status_text!r}")
    if kind is BusinessType.RETURN and not values["out_return_no"]:
        raise BillFormatError(f"line {number}: a return row without 商户回退单号")
    text = values.pop("amount")
    amount = _fen(text) if _YUAN.fullmatch(text) else yuan_to_fen(text, f"line {number}, 金额(元)")
    extra = tuple((name, clean(cells[index])) for index, name in unknown) if unknown else ()
    return BillRow(business_type=kind, status=status, amount=amount, extra=extra, **values)


def _summary(header: list[str], line: tuple[int, list[str]]) -> BillSummary:
    columns, _ = _columns(header, SUMMARY_HEADERS, SUMMARY_REQUIRED, "summary")
    number, cells = line
    if len(cells) != len(header):
        raise BillFormatError(
            f"line {number}: {len(cells)} fields where the summary header has {len(header)}"
        )
    values = {name: clean(cells[index]) for name, index in columns.items()}
    where = f"line {number}"
    return BillSummary(
        split_count=_count(values["split_count"], f"{where}, 分账总笔数"),
        split_amount=yuan_to_fen(values["split_amount"], f"{where}, 分账总金额(元)"),
        return_count=_count(values["return_count"], f"{where}, 回退总笔数"),
        return_amount=yuan_to_fen(values["return_amount"], f"{where}, 回退总金额(元)"),
    )


def _check_summary(totals: dict[BusinessType, list[int]], summary: BillSummary) -> None:
    """The summary must add up to the details: a bill that disagrees with itself is refused."""
    for kind, count, amount in (
        (BusinessType.SPLIT, summary.split_count, summary.split_amount),
        (BusinessType.RETURN, summary.return_count, summary.return_amount),
    ):
        found, total = totals[kind]
        if (found, total) != (count, amount):
            raise BillFormatError(
                f"the summary says {count} {kind.value.lower()} row(s) of {amount} fen, "
                f"the details hold {found} of {total} fen"
            )
