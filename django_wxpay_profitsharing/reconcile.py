"""Reconcile the local returns against WeChat Pay's daily profit-sharing bill.

Why: finance trusts the bill, not a local table. For one Beijing date and one merchant
(optionally one sub-merchant) this fetches the bill (``apply_bill``: a signed, verified
answer), downloads it at once (the URL lives 30 s), refuses it unless its SHA1 is the
announced one, parses it (``wechatpay/bill_parser.py``: the layout is an assumption,
documented there), and compares its return rows with ``ProfitSharingReturn`` by
``out_return_no``. Each problem is one :class:`~.models.Discrepancy`:

====================  ==============================================================
kind                  when
====================  ==============================================================
missing_locally       a return row in the bill, no local return with its number
missing_at_wechat     a local return that succeeded that Beijing day (its WeChat
                      ``finish_time``), not in the bill
state_differs         in both, but the bill's status is not what the local state
                      implies (:data:`EXPECTED_STATUS`)
amount_differs        in both, amounts differ (as well as a state_differs, if both)
====================  ==============================================================

Scope: with ``sub_mchid``, that sub-merchant's bill and its local returns; without,
the bill of every sub-merchant (and of the direct merchant) and every local return
of the merchant: a sub-merchant's returns are in both bills. A day WeChat Pay has no
bill for (``NO_STATEMENT_EXIST``) is read as an empty bill, recorded with a blank
hash. Anything else that stops the bill from being had or trusted (an API error, a
hash mismatch, a layout the parser refuses) raises :class:`ReconciliationError` and
writes nothing.

The run for (mchid, sub_mchid, bill_date) is replaced in one transaction; nothing
else is written. When it has discrepancies, ``signals.reconciliation_discrepancies``
is sent after the commit (at most once: see ``signals.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from .clients import client_for
from .dbtime import for_db
from .models import (
    Discrepancy,
    DiscrepancyKind,
    ProfitSharingReturn,
    ProfitSharingReturnQuerySet,
    ReconciliationRun,
)
from .signals import reconciliation_discrepancies
from .states import ReturnState
from .wechatpay import WeChatPayClient, errors
from .wechatpay.bill_parser import Bill, BillRow, BillSummary, parse_bill
from .wechatpay.bills import BEIJING

logger = logging.getLogger("django_wxpay_profitsharing")

#: The bill status each local state implies; None: WeChat Pay does not hold the return.
EXPECTED_STATUS: dict[str, str | None] = {
    ReturnState.SUCCEEDED: "SUCCESS",
    ReturnState.PROCESSING: "PROCESSING",
    ReturnState.PENDING: "PROCESSING",
    ReturnState.FAILED: "FAILED",
    ReturnState.REJECTED: None,
    ReturnState.DRAFT: None,
}
NO_BILL_CODE = "NO_STATEMENT_EXIST"
EMPTY_BILL = Bill(rows=(), summary=BillSummary(0, 0, 0, 0))
#: Numbers looked up per query (SQLite allows 999 parameters).
CHUNK = 500


class ReconciliationError(Exception):
    """The bill could not be had or checked; nothing was written."""


@dataclass(frozen=True)
class Found:
    """A discrepancy before it is saved."""

    out_return_no: str
    kind: DiscrepancyKind
    local_amount: int | None
    wechat_amount: int | None
    detail: str


def default_bill_date() -> dt.date:
    """Yesterday in ``TIME_ZONE`` (the bill of a day is ready the next morning).

    Without ``USE_TZ``, ``now()`` is already naive local time in ``TIME_ZONE``.
    """
    now = timezone.now()
    today = timezone.localdate(now) if timezone.is_aware(now) else now.date()
    return today - dt.timedelta(days=1)


def day_bounds(bill_date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The Beijing day of the bill, ``[start, end)``, as the database compares times.

    Aware with ``USE_TZ``; without it, naive in ``TIME_ZONE`` (how the rows hold them).
    """
    start = dt.datetime.combine(bill_date, dt.time(), BEIJING)
    end = start + dt.timedelta(days=1)
    return cast(dt.datetime, for_db(start)), cast(dt.datetime, for_db(end))


def fetch_bill(
    client: WeChatPayClient, bill_date: dt.date, sub_mchid: str | None
) -> tuple[Bill, str]:
    """The parsed bill and its hash ("" when WeChat Pay has none for the day)."""
    try:
        link = client.apply_bill(bill_date, sub_mchid, "GZIP")
    except errors.APIError as exc:
        if exc.code == NO_BILL_CODE:
            return EMPTY_BILL, ""
        raise ReconciliationError(f"the bill could not be had: {exc}") from None
    except errors.WeChatPayError as exc:
        raise ReconciliationError(f"the bill could not be had: {exc}") from None
    try:
        data = client.download_bill(link)
        return parse_bill(data), link.hash_value.lower()
    except errors.WeChatPayError as exc:
        raise ReconciliationError(f"the bill could not be checked: {exc}") from None


def compare(
    bill_returns: Iterable[BillRow],
    local: dict[str, ProfitSharingReturn],
    succeeded_that_day: Iterable[ProfitSharingReturn],
) -> tuple[list[Found], int]:
    """The discrepancies, and how many bill returns matched; no database access."""
    in_bill: dict[str, list[BillRow]] = {}
    for row in bill_returns:
        in_bill.setdefault(row.out_return_no, []).append(row)
    found: list[Found] = []
    matched = 0
    for number, rows in in_bill.items():
        amount = sum(r.amount for r in rows)
        statuses = sorted({r.status for r in rows})
        mine = local.get(number)
        if mine is None:
            found.append(
                Found(
                    number,
                    DiscrepancyKind.MISSING_LOCALLY,
                    None,
                    amount,
                    f"in the bill ({', '.join(statuses)}), no local return with this number",
                )
            )
            continue
        problems = 0
        expected = EXPECTED_STATUS.get(mine.state)
        if statuses != [expected]:
            problems += 1
            found.append(
                Found(
                    number,
                    DiscrepancyKind.STATE_DIFFERS,
                    mine.amount,
                    amount,
                    f"local state {mine.state}, bill status {', '.join(statuses)}",
                )
            )
        if amount != mine.amount:
            problems += 1
            found.append(
                Found(
                    number,
                    DiscrepancyKind.AMOUNT_DIFFERS,
                    mine.amount,
                    amount,
                    f"local {mine.amount} fen, bill {amount} fen",
                )
            )
        matched += problems == 0
    for mine in succeeded_that_day:
        if mine.out_return_no not in in_bill:
            found.append(
                Found(
                    mine.out_return_no,
                    DiscrepancyKind.MISSING_AT_WECHAT,
                    mine.amount,
                    None,
                    f"succeeded here at {_beijing(mine.finish_time)} (Beijing), not in the bill",
                )
            )
    return found, matched


def _beijing(moment: dt.datetime | None) -> str:
    """A stored time in Beijing time (a naive one is in ``TIME_ZONE``, as without USE_TZ)."""
    if moment is None:
        return "-"
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _local_returns(mchid: str, sub_mchid: str | None) -> ProfitSharingReturnQuerySet:
    """The merchant's returns; one sub-merchant's when it is named."""
    rows = ProfitSharingReturn.objects.filter(mchid=mchid)
    return rows.filter(sub_mchid=sub_mchid) if sub_mchid else rows


def reconcile(
    bill_date: dt.date,
    *,
    mchid: str | None = None,
    sub_mchid: str | None = None,
    client: WeChatPayClient | None = None,
) -> ReconciliationRun:
    """Reconcile one day; returns the (new) run. Raises :class:`ReconciliationError`.

    ``mchid`` None: the default merchant. ``client`` (tests) replaces the merchant's.
    """
    if client is None:
        try:
            client = client_for(mchid)
        except ImproperlyConfigured as exc:
            raise ReconciliationError(str(exc)) from None
    mchid = mchid or client.mchid
    if mchid != client.mchid:
        raise ReconciliationError(f"the client given is not merchant {mchid}'s")
    started = timezone.now()
    bill, hash_value = fetch_bill(client, bill_date, sub_mchid or None)
    bill_returns = bill.returns
    scope = _local_returns(mchid, sub_mchid)
    numbers = sorted({r.out_return_no for r in bill_returns})
    local: dict[str, ProfitSharingReturn] = {}
    for i in range(0, len(numbers), CHUNK):
        for row in scope.filter(out_return_no__in=numbers[i : i + CHUNK]):
            local[row.out_return_no] = row
    start, end = day_bounds(bill_date)
    succeeded = scope.filter(
        state=ReturnState.SUCCEEDED, finish_time__gte=start, finish_time__lt=end
    ).order_by("finish_time", "pk")
    found, matched = compare(bill_returns, local, succeeded.iterator())
    with transaction.atomic():
        ReconciliationRun.objects.filter(
            mchid=mchid, sub_mchid=sub_mchid or "", bill_date=bill_date
        ).delete()
        run = ReconciliationRun.objects.create(
            bill_date=bill_date,
            mchid=mchid,
            sub_mchid=sub_mchid or "",
            rows=len(bill.rows),
            return_rows=len(bill_returns),
            matched=matched,
            discrepancy_count=len(found),
            hash_value=hash_value,
            started=started,
            finished=timezone.now(),
        )
        saved = Discrepancy.objects.bulk_create(
            Discrepancy(
                run=run,
                out_return_no=f.out_return_no,
                kind=f.kind,
                local_amount=f.local_amount,
                wechat_amount=f.wechat_amount,
                detail=f.detail,
            )
            for f in found
        )
        if saved:
            transaction.on_commit(lambda: _announce(run, saved))
    return run


def _announce(run: ReconciliationRun, discrepancies: list[Discrepancy]) -> None:
    for receiver, result in reconciliation_discrepancies.send_robust(
        sender=ReconciliationRun, instance=run, discrepancies=discrepancies
    ):
        if isinstance(result, Exception):
            logger.error(
                "reconciliation_discrepancies receiver %r failed",
                receiver,
                exc_info=(type(result), result, result.__traceback__),
            )
