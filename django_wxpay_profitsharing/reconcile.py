"""Reconcile the local returns against WeChat Pay's daily profit-sharing bill.

Why: finance trusts the bill, not a local table. For one Beijing date and one merchant
(optionally one sub-merchant) this fetches the bill (``apply_bill``: a signed, verified
answer), downloads it at once (the URL lives 30 s) into a temporary file, refuses it
unless its SHA1 is the announced one, reads it row by row (``wechatpay/bill_parser.py``:
the layout is an assumption, documented there), and compares its return rows with
``ProfitSharingReturn`` by ``out_return_no``. Each problem is one
:class:`~.models.Discrepancy`:

====================  ==============================================================
kind                  when
====================  ==============================================================
missing_locally       a return row in the bill, no local return with its number
missing_at_wechat     a local return that succeeded that Beijing day (its WeChat
                      ``finish_time``), not in the bill as that merchant's and
                      sub-merchant's
state_differs         in both, but the bill's status is not what the local state
                      implies (:data:`EXPECTED_STATUS`)
amount_differs        in both, amounts differ (as well as a state_differs, if both)
merchant_differs      a return row whose initiator (分账发起方) is not the merchant
                      reconciled, or whose sub-merchant is not the one asked for or
                      not the local return's: never a match
====================  ==============================================================

Scope: with ``sub_mchid``, that sub-merchant's bill and its local returns; without,
the bill of every sub-merchant (and of the direct merchant) and every local return
of the merchant: a sub-merchant's returns are in both bills. A day WeChat Pay has no
bill for (``NO_STATEMENT_EXIST``) is read as an empty bill, recorded with a blank
hash. Anything else that stops the bill from being had or trusted (an API or
transport error, an odd download URL, a hash mismatch, a layout the parser refuses,
a bill over ``BILL_MAX_BYTES``) raises :class:`ReconciliationError` and writes nothing.

At any size: the bill streams to a temporary file, its returns go to a private SQLite
file (``reconcile_staging.py``) that groups and indexes them on disk, local returns
are read :data:`~.reconcile_staging.BATCH` numbers at a time, and the discrepancies
wait on disk until the run is written, :data:`WRITE_BATCH` rows per INSERT (one
statement of 150,000 rows exceeds MariaDB's default ``max_allowed_packet``). So
memory stays flat from ten rows to a million (``bench/bench_reconcile.py``).

The run for (mchid, sub_mchid, bill_date) is replaced in one transaction; nothing
else is written. When it has discrepancies, ``signals.reconciliation_discrepancies``
is sent after the commit (at most once: see ``signals.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol, cast

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from .clients import client_for
from .conf import wxpay_settings
from .dbtime import for_db
from .models.reconciliation import Discrepancy, DiscrepancyKind, ReconciliationRun
from .models.return_questions import ProfitSharingReturnQuerySet
from .models.returns import ProfitSharingReturn
from .reconcile_staging import BATCH, Found, Group, Staging
from .signals import reconciliation_discrepancies
from .states import ReturnState
from .wechatpay import WeChatPayClient, errors
from .wechatpay.bill_parser import BillReader
from .wechatpay.bills import BEIJING, BillDownload
from .wechatpay.words import ReturnResult

logger = logging.getLogger("django_wxpay_profitsharing")

#: The bill status each local state implies; None: WeChat Pay does not hold the return.
EXPECTED_STATUS: dict[str, str | None] = {
    ReturnState.SUCCEEDED: ReturnResult.SUCCESS,
    ReturnState.PROCESSING: ReturnResult.PROCESSING,
    ReturnState.PENDING: ReturnResult.PROCESSING,
    ReturnState.FAILED: ReturnResult.FAILED,
    ReturnState.REJECTED: None,
    ReturnState.DRAFT: None,
}
NO_BILL_CODE = "NO_STATEMENT_EXIST"
#: Discrepancies per INSERT (about 200 bytes each: far below any packet limit).
WRITE_BATCH = 1000
#: The local fields a comparison reads.
COMPARED_FIELDS = ("out_return_no", "sub_mchid", "amount", "state", "finish_time")


class ReconciliationError(Exception):
    """The bill could not be had or checked; nothing was written."""


class LocalReturn(Protocol):
    """What a comparison reads of a local return (a row, or its ``values_list``)."""

    out_return_no: str
    sub_mchid: str
    amount: int
    state: str
    finish_time: dt.datetime | None


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
    client: WeChatPayClient, bill_date: dt.date, sub_mchid: str | None, directory: str
) -> BillDownload | None:
    """The verified bill in a temporary file (None when WeChat Pay has none that day)."""
    try:
        link = client.apply_bill(bill_date, sub_mchid, "GZIP")
    except errors.APIError as exc:
        if exc.code == NO_BILL_CODE:
            return None
        raise ReconciliationError(f"the bill could not be had: {exc}") from None
    except errors.WeChatPayError as exc:
        raise ReconciliationError(f"the bill could not be had: {exc}") from None
    try:
        return client.download_bill_file(
            link, max_size=wxpay_settings.BILL_MAX_BYTES, directory=directory
        )
    except (errors.WeChatPayError, OSError) as exc:
        raise ReconciliationError(f"the bill could not be checked: {exc}") from None


def judge(group: Group, mine: LocalReturn | None, mchid: str, sub_mchid: str | None) -> list[Found]:
    """The discrepancies of one return in the bill; none when it matches. No database.

    Each keeps facts, not a sentence: ``reconcile_words`` words them when a person
    reads them, in that person's language and in yuan.
    """
    number, amount, statuses = group.out_return_no, group.amount, list(group.statuses)
    if group.initiator != mchid or (sub_mchid and group.sub_mchid != sub_mchid):
        facts = {
            "statuses": statuses,
            "bill_mchid": group.initiator,
            "bill_sub_mchid": group.sub_mchid,
            "mchid": mchid,
            "sub_mchid": sub_mchid or "",
        }
        return [Found(number, DiscrepancyKind.MERCHANT_DIFFERS, None, amount, facts)]
    if mine is None:
        facts = {"statuses": statuses}
        return [Found(number, DiscrepancyKind.MISSING_LOCALLY, None, amount, facts)]
    if mine.sub_mchid != group.sub_mchid:
        facts = {
            "statuses": statuses,
            "bill_sub_mchid": group.sub_mchid,
            "local_sub_mchid": mine.sub_mchid,
        }
        return [Found(number, DiscrepancyKind.MERCHANT_DIFFERS, mine.amount, amount, facts)]
    found = []
    if group.statuses != (EXPECTED_STATUS.get(mine.state),):
        facts = {"statuses": statuses, "local_state": mine.state}
        found.append(Found(number, DiscrepancyKind.STATE_DIFFERS, mine.amount, amount, facts))
    if amount != mine.amount:
        found.append(Found(number, DiscrepancyKind.AMOUNT_DIFFERS, mine.amount, amount))
    return found


def _beijing(moment: dt.datetime | None) -> str:
    """A stored time in Beijing time (a naive one is in ``TIME_ZONE``, as without USE_TZ)."""
    if moment is None:
        return ""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _local_returns(mchid: str, sub_mchid: str | None) -> ProfitSharingReturnQuerySet:
    """The merchant's returns; one sub-merchant's when it is named."""
    rows = ProfitSharingReturn.objects.filter(mchid=mchid)
    return rows.filter(sub_mchid=sub_mchid) if sub_mchid else rows


def _compare_bill(staging: Staging, mchid: str, sub_mchid: str | None) -> int:
    """Judge each return in the bill against the merchant's; how many matched."""
    everyone = ProfitSharingReturn.objects.filter(mchid=mchid).order_by()
    matched = 0
    for groups in staging.groups():
        numbers = sorted({g.out_return_no for g in groups})
        found_here = everyone.filter(out_return_no__in=numbers)
        local = {r.out_return_no: r for r in _compared(found_here)}
        for group in groups:
            found = judge(group, local.get(group.out_return_no), mchid, sub_mchid)
            matched += not found
            staging.add(found)
    return matched


def _missing_at_wechat(
    staging: Staging, mchid: str, sub_mchid: str | None, bill_date: dt.date
) -> None:
    """Local returns that succeeded that day and are not in the bill as theirs."""
    start, end = day_bounds(bill_date)
    succeeded = (
        _local_returns(mchid, sub_mchid)
        .filter(state=ReturnState.SUCCEEDED, finish_time__gte=start, finish_time__lt=end)
        .order_by("finish_time", "pk")
    )
    for batch in _batches(_compared(succeeded).iterator(chunk_size=BATCH), BATCH):
        present = staging.in_bill(mchid, sorted({r.out_return_no for r in batch}))
        staging.add(
            Found(
                mine.out_return_no,
                DiscrepancyKind.MISSING_AT_WECHAT,
                mine.amount,
                None,
                {"finished": _beijing(mine.finish_time)},
            )
            for mine in batch
            if (mine.sub_mchid, mine.out_return_no) not in present
        )


def _compared(rows: ProfitSharingReturnQuerySet) -> QuerySet[Any, LocalReturn]:
    """The compared fields only, as named tuples: no model instance per return."""
    return cast("QuerySet[Any, LocalReturn]", rows.values_list(*COMPARED_FIELDS, named=True))


def _batches(rows: Iterator[LocalReturn], size: int) -> Iterator[list[LocalReturn]]:
    batch: list[LocalReturn] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@contextmanager
def _workspace() -> Iterator[tuple[str, Staging]]:
    """A temporary directory (the bill's file, the staging file), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="wxpay-reconcile-") as directory:
        try:
            staging = Staging(directory)
        except sqlite3.Error as exc:
            raise ReconciliationError(f"no room to work in {directory}: {exc}") from None
        with staging:
            yield directory, staging


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
    sub_mchid = sub_mchid or None
    started = timezone.now()
    with _workspace() as (directory, staging):
        bill = fetch_bill(client, bill_date, sub_mchid, directory)
        rows = return_rows = 0
        try:
            if bill is not None:
                with bill, bill.text() as text:
                    rows, return_rows = staging.load(BillReader(text))
            matched = _compare_bill(staging, mchid, sub_mchid)
            _missing_at_wechat(staging, mchid, sub_mchid, bill_date)
        except errors.BillError as exc:
            raise ReconciliationError(f"the bill could not be read: {exc}") from None
        except (sqlite3.Error, OSError) as exc:
            raise ReconciliationError(f"the bill could not be compared: {exc}") from None
        with transaction.atomic():
            ReconciliationRun.objects.filter(
                mchid=mchid, sub_mchid=sub_mchid or "", bill_date=bill_date
            ).delete()
            run = ReconciliationRun.objects.create(
                bill_date=bill_date,
                mchid=mchid,
                sub_mchid=sub_mchid or "",
                rows=rows,
                return_rows=return_rows,
                matched=matched,
                discrepancy_count=staging.found_count,
                hash_value=bill.hash_value.lower() if bill is not None else "",
                started=started,
                finished=timezone.now(),
            )
            for found in staging.found(WRITE_BATCH):
                Discrepancy.objects.bulk_create(
                    [
                        Discrepancy(
                            run=run,
                            out_return_no=f.out_return_no,
                            kind=f.kind,
                            local_amount=f.local_amount,
                            wechat_amount=f.wechat_amount,
                            facts=f.facts,
                        )
                        for f in found
                    ],
                    batch_size=WRITE_BATCH,
                )
            if run.discrepancy_count:
                transaction.on_commit(lambda: _announce(run))
    return run


def _announce(run: ReconciliationRun) -> None:
    for receiver, result in reconciliation_discrepancies.send_robust(
        sender=ReconciliationRun, instance=run, discrepancies=run.discrepancies.all()
    ):
        if isinstance(result, Exception):
            logger.error(
                "reconciliation_discrepancies receiver %r failed",
                receiver,
                exc_info=(type(result), result, result.__traceback__),
            )
