"""Reading the daily profit-sharing bill (分账账单): a detail part and a summary part.

**The layout here is this project's assumption.** WeChat Pay's pages link a sample
spreadsheet but do not list the domestic bill's columns in text, and no public source
gives its Chinese header row (wxpay-neighbours.md §1c, §5: UNCONFIRMED). What is
documented: every detail row is one split or one return ("明细数据每一行对应一笔分账
或一笔回退"); there is a detail part and a summary part, each with its own header
row; fields may start with a backtick (`` ` ``), older files lack it on some fields;
amounts are in yuan. The columns below follow the cross-border bill's documented
fields (create_time, initiator, sponsor, sub_mchid, transaction_id, order_id,
out_order_no, detail_id, receiver, amount, business_type, status, description) with
Chinese names, plus the return's own numbers. So the parser is **header-driven**:
columns are found by name, in any order, unknown columns are kept aside (never an
error), and a file lacking a required header is refused naming it. When a real bill
shows other names, add them to :data:`DETAIL_HEADERS` / :data:`SUMMARY_HEADERS`;
nothing else changes.

Detail part (header row, then one row per split or return)::

    分账发起时间   create_time       YYYY-MM-DD HH:MM:SS, Beijing
    分账发起方     initiator         the merchant that asked (mchid)
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
"""

from __future__ import annotations

import csv
import enum
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal

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
    return int(Decimal(text) * 100)


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


def _lines(data: bytes) -> list[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillFormatError("the bill is not UTF-8 text") from None
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise BillFormatError(f"the bill is not CSV: {exc}") from None
    return [(n, row) for n, row in enumerate(rows, 1) if any(clean(c) for c in row)]


def parse_bill(data: bytes) -> Bill:
    """Parse a bill's uncompressed bytes (checked against their hash first)."""
    lines = _lines(data)
    if not lines:
        raise BillFormatError("the bill is empty")
    _, header = lines[0]
    columns, unknown = _columns(header, DETAIL_HEADERS, DETAIL_REQUIRED, "detail")
    rows: list[BillRow] = []
    summary: BillSummary | None = None
    position = 1
    while position < len(lines):
        number, cells = lines[position]
        position += 1
        if header_name(cells[0]) in SUMMARY_HEADERS:
            if position >= len(lines):
                raise BillFormatError(f"line {number}: the summary header has no row under it")
            summary = _summary(cells, lines[position])
            if position + 1 < len(lines):
                raise BillFormatError(f"line {lines[position + 1][0]}: a row after the summary")
            break
        if len(cells) != len(header):
            raise BillFormatError(
                f"line {number}: {len(cells)} fields where the header has {len(header)}"
            )
        rows.append(_row(cells, columns, unknown, number))
    if summary is None:
        raise BillFormatError("the bill has no summary part")
    _check_summary(rows, summary)
    return Bill(tuple(rows), summary, tuple(name for _, name in unknown))


def _row(
    cells: list[str], columns: dict[str, int], unknown: list[tuple[int, str]], number: int
) -> BillRow:
    values = {name: clean(cells[index]) for name, index in columns.items()}
    kind = BUSINESS_TYPES.get(values["business_type"])
    if kind is None:
        raise BillFormatError(f"line {number}: unknown 业务类型 {values['business_type']!r}")
    status = STATUSES.get(values["status"])
    if status is None:
        raise BillFormatError(f"line {number}: unknown 处理状态 {values['status']!r}")
    if kind is BusinessType.RETURN and not values["out_return_no"]:
        raise BillFormatError(f"line {number}: a return row without 商户回退单号")
    amount = yuan_to_fen(values.pop("amount"), f"line {number}, 金额(元)")
    values.pop("business_type")
    values.pop("status")
    extra = tuple((name, clean(cells[index])) for index, name in unknown)
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


def _check_summary(rows: list[BillRow], summary: BillSummary) -> None:
    """The summary must add up to the details: a bill that disagrees with itself is refused."""
    for kind, count, amount in (
        (BusinessType.SPLIT, summary.split_count, summary.split_amount),
        (BusinessType.RETURN, summary.return_count, summary.return_amount),
    ):
        mine = [r.amount for r in rows if r.business_type is kind]
        if (len(mine), sum(mine)) != (count, amount):
            raise BillFormatError(
                f"the summary says {count} {kind.value.lower()} row(s) of {amount} fen, "
                f"the details hold {len(mine)} of {sum(mine)} fen"
            )
