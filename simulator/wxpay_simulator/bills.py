"""The simulated daily profit-sharing bill: 申请分账账单 and its download.

``GET /v3/profitsharing/bills?bill_date=YYYY-MM-DD[&sub_mchid=...][&tar_type=GZIP]``
answers, signed like every answer, ``{"hash_type": "SHA1", "hash_value", "download_url"}``;
``GET /v3/billdownload/file?token=...`` (a signed request, verified like any other)
answers the file itself, **unsigned** (as WeChat Pay does: "该接口响应的信息请求头中不
包含微信接口响应的签名值"), GZIP when it was asked for, plain otherwise. The token lives
30 seconds on the ledger's clock; afterwards, or unknown, 400 INVALID_REQUEST (apply
again). ``hash_value`` is the SHA1 (lower-case hex) of the *uncompressed* file.

Rules (申请分账账单, https://pay.weixin.qq.com/doc/v3/merchant/4012529628, and its
download, https://pay.weixin.qq.com/docs/merchant/apis/profit-sharing/download-bill.html)
and this simulator's decisions:

- ``bill_date`` is a Beijing date within the last three months (older: 400
  INVALID_REQUEST "请求的账单日期已过期"), not after today; **today is served too** (a
  convenience, so tests need no clock travel: WeChat Pay itself answers "请求的账单正在
  生成中" until about 10:00 the next day). A day in which nothing moved, and a future
  day, are 400 NO_STATEMENT_EXIST "账单文件不存在".
- What is in it (``Ledger.movements``): each SUCCESS split line of orders that
  finished that day, and each return that reached SUCCESS that day; failed and
  processing ones are not. Without ``sub_mchid``: every sub-merchant's rows (so a
  sub-merchant's returns are in its own bill *and* in this one).
- The layout is the project's assumption, documented in
  ``wechatpay/bill_parser.py``; the column names are written out here again on
  purpose: this module stands for WeChat Pay, and the parser must read what it
  writes, not share a table with it. Every data field starts with a backtick unless
  ``POST /_simulator/bills/layout {"backticks": false}`` (older files lacked it).
- ``POST /_simulator/bills/corrupt`` ``{"hash": true}`` makes the next bill announce a
  wrong ``hash_value``; ``{"rows": true}`` serves the next bill with one amount changed
  after it was hashed (what a tampered or damaged file looks like). Each acts once.
"""

from __future__ import annotations

import calendar
import csv
import datetime as dt
import gzip
import hashlib
import io
import re
import secrets
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from .errors import ApiError, param_error
from .ledger import Ledger
from .ledger_records import BEIJING

DOWNLOAD_PATH = "/v3/billdownload/file"
TOKEN_SECONDS = 30.0
MAX_TOKENS = 1000
DETAIL_HEADER = (
    "分账发起时间",
    "分账发起方",
    "分账出资方",
    "特约商户号",
    "微信支付订单号",
    "微信分账单号",
    "商户分账单号",
    "分账明细单号",
    "微信回退单号",
    "商户回退单号",
    "分账接收方类型",
    "分账接收方",
    "金额(元)",
    "业务类型",
    "处理状态",
    "分账描述",
)
SUMMARY_HEADER = ("分账总笔数", "分账总金额(元)", "回退总笔数", "回退总金额(元)")
BUSINESS_TYPE = {"split": "分账", "return": "回退"}
SUCCESS_STATUS = "成功"
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"[0-9]{1,32}")


@dataclass(frozen=True)
class BillFile:
    """A download's answer: raw bytes, sent unsigned."""

    body: bytes
    content_type: str = "application/octet-stream"


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def _earliest(today: dt.date) -> dt.date:
    index = today.year * 12 + today.month - 1 - 3
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(today.day, calendar.monthrange(year, month + 1)[1]))


class BillDesk:
    """Builds bills from the ledger, hands out download tokens, serves the files."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        #: token -> (expires at, the file as served, the merchant that applied)
        self._tokens: dict[str, tuple[float, bytes, str]] = {}
        self._corrupt_hash = False
        self._corrupt_rows = False
        self.backticks = True

    def reset(self) -> None:
        with self._lock:
            self._tokens.clear()
            self._corrupt_hash = self._corrupt_rows = False
            self.backticks = True

    # -- control surface ---------------------------------------------------------------
    def corrupt(self, *, wrong_hash: bool = False, tampered_rows: bool = False) -> dict[str, bool]:
        """Corrupt the next bill applied for (each flag acts once)."""
        with self._lock:
            self._corrupt_hash = self._corrupt_hash or wrong_hash
            self._corrupt_rows = self._corrupt_rows or tampered_rows
            return {"hash": self._corrupt_hash, "rows": self._corrupt_rows}

    def layout(self, *, backticks: bool) -> dict[str, bool]:
        with self._lock:
            self.backticks = backticks
            return {"backticks": self.backticks}

    # -- the API -----------------------------------------------------------------------
    def apply(self, query: str, base_url: str, mchid: str) -> dict[str, Any]:
        """申请分账账单 of ``mchid``'s books: build the file now, behind a 30-second token."""
        params = dict(parse_qsl(query, keep_blank_values=True))
        day = self._bill_date(params.get("bill_date"))
        sub_mchid = params.get("sub_mchid") or None
        if sub_mchid is not None and not _DIGITS.fullmatch(sub_mchid):
            raise param_error("sub_mchid", sub_mchid, "格式错误", location="query")
        tar_type = params.get("tar_type")
        if tar_type is not None and tar_type != "GZIP":
            raise param_error("tar_type", tar_type, "只能为GZIP", location="query")
        start = dt.datetime.combine(day, dt.time(), BEIJING).timestamp()
        movements = self.ledger.movements(start, start + 86400, sub_mchid, mchid)
        if not movements:
            raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        with self._lock:
            corrupt_hash, corrupt_rows = self._corrupt_hash, self._corrupt_rows
            self._corrupt_hash = self._corrupt_rows = False
            backticks = self.backticks
        plain = self.render(movements, mchid, backticks=backticks)
        digest = hashlib.sha1(plain).hexdigest()  # noqa: S324 - WeChat Pay's hash_type
        served = (
            self.render(movements, mchid, backticks=backticks, tamper=True)
            if corrupt_rows
            else plain
        )
        if corrupt_hash:
            digest = digest[:-1] + ("0" if digest[-1] != "0" else "1")
        body = gzip.compress(served, mtime=0) if tar_type == "GZIP" else served
        token = secrets.token_urlsafe(24)
        now = self.ledger.now()
        with self._lock:
            for old in [t for t, entry in self._tokens.items() if entry[0] <= now]:
                del self._tokens[old]
            while len(self._tokens) >= MAX_TOKENS:
                del self._tokens[next(iter(self._tokens))]
            self._tokens[token] = (now + TOKEN_SECONDS, body, mchid)
        return {
            "hash_type": "SHA1",
            "hash_value": digest,
            "download_url": f"{base_url}{DOWNLOAD_PATH}?token={token}",
        }

    def download(self, query: str, mchid: str) -> BillFile:
        """The file behind a live token, for the merchant that applied for it.

        Unknown or expired token: 400 INVALID_REQUEST (apply again); another merchant's
        token: 403 NO_AUTH (WeChat Pay: the downloading merchant is not the applicant).
        """
        token = dict(parse_qsl(query, keep_blank_values=True)).get("token", "")
        with self._lock:
            entry = self._tokens.get(token)
        if entry is None or entry[0] <= self.ledger.now():
            raise ApiError(400, "INVALID_REQUEST", "下载链接已失效，请重新申请账单")
        if entry[2] != mchid:
            raise ApiError(403, "NO_AUTH", "下载账单的商户与申请账单的商户不一致")
        return BillFile(entry[1])

    def _bill_date(self, value: str | None) -> dt.date:
        if value is None or not _DATE.fullmatch(value):
            raise param_error("bill_date", value, "格式应为YYYY-MM-DD", location="query")
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            raise param_error("bill_date", value, "不是有效日期", location="query") from None
        today = dt.datetime.fromtimestamp(self.ledger.now(), BEIJING).date()
        if day < _earliest(today):
            raise ApiError(400, "INVALID_REQUEST", "请求的账单日期已过期")
        if day > today:
            raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        return day

    # -- the file ----------------------------------------------------------------------
    @staticmethod
    def render(
        movements: list[dict[str, Any]], mchid: str, *, backticks: bool, tamper: bool = False
    ) -> bytes:
        """The CSV of ``mchid``'s bill: detail header, rows, summary header and row (UTF-8)."""
        mark = "`" if backticks else ""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(DETAIL_HEADER)
        totals = {"split": [0, 0], "return": [0, 0]}
        for index, move in enumerate(movements):
            amount = move["amount"]
            totals[move["kind"]][0] += 1
            totals[move["kind"]][1] += amount
            if tamper and index == 0:
                amount += 1
            when = dt.datetime.fromtimestamp(int(move["time"]), BEIJING)
            cells = (
                when.strftime("%Y-%m-%d %H:%M:%S"),
                mchid,
                move["sponsor"],
                move["sub_mchid"],
                move["transaction_id"],
                move["order_id"],
                move["out_order_no"],
                move["detail_id"],
                move["return_id"],
                move["out_return_no"],
                move["receiver_type"],
                move["receiver_account"],
                yuan(amount),
                BUSINESS_TYPE[move["kind"]],
                SUCCESS_STATUS,
                move["description"],
            )
            writer.writerow([mark + cell for cell in cells])
        writer.writerow(SUMMARY_HEADER)
        summary = (
            str(totals["split"][0]),
            yuan(totals["split"][1]),
            str(totals["return"][0]),
            yuan(totals["return"][1]),
        )
        writer.writerow([mark + cell for cell in summary])
        return out.getvalue().encode("utf-8")
