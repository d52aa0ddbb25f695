"""What may still be clawed back from each receiver of a sharing order, and why not.

Why here, before any call: WeChat Pay refuses a return from a personal receiver, from a
line that is not ``SUCCESS``, from an order that is not ``FINISHED``, past 180 days,
beyond 50 returns per sharing order, and beyond what the receiver got less what was
returned or is being returned. The app knows all of it from the order's mirror
(``ProfitSharingOrder``) and its own returns, so it refuses such a return itself,
naming the field, and sends nothing.

Per receiver line: ``shared`` (what WeChat split to it), ``returned`` (returns that
succeeded), ``reserved`` (returns not final yet, drafts included: they hold their
amount), ``returnable = shared - returned - reserved``, and 0 with a ``blocked``
reason where WeChat would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q, Sum
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .models.returns import ProfitSharingReturn
from .models.sharing_orders import ProfitSharingOrder, ProfitSharingOrderReceiver
from .money import yuan
from .states import FINAL_STATES, ReturnState
from .wechatpay.models import ReceiverResult, ReceiverType, SharingOrderState

#: "分账回退的时限是180天" (counted here from the split, the later of the two candidates).
RETURN_WINDOW = timedelta(days=180)
#: Return requests per sharing order (2025 docs; SDK comments still say 20).
MAX_RETURNS_PER_ORDER = 50


class Blocked(models.TextChoices):
    """Why a receiver line gives nothing back: a code, and what a person reads."""

    OWN_LINE = "own_line", _("the payer's own line (解冻给分账方) cannot be returned from")
    PERSONAL = "personal", _("personal receivers cannot be returned from")
    LINE_NOT_SUCCESS = "line_not_success", _("the split to this receiver did not succeed")
    ORDER_NOT_FINISHED = "order_not_finished", _("the sharing order is not finished")
    EXPIRED = "expired", _("the 180 days for returns have passed")
    LIMIT_REACHED = "limit_reached", _("the sharing order has 50 returns already")


NOT_A_RECEIVER = _("is not a merchant receiver of this sharing order")


@dataclass(frozen=True)
class LineLedger:
    """One receiver line's figures, in fen."""

    line: ProfitSharingOrderReceiver
    shared: int
    returned: int
    reserved: int
    returnable: int
    blocked: Blocked | None

    @property
    def account(self) -> str:
        return str(self.line.account)

    @property
    def blocked_code(self) -> str:
        """The block reason's code, "" when something is returnable (the API's value)."""
        return str(self.blocked or "")

    @property
    def is_merchant(self) -> bool:
        """A merchant receiver: the only kind WeChat Pay returns from."""
        return bool(self.line.type == ReceiverType.MERCHANT_ID)


def order_returns(order: ProfitSharingOrder) -> models.QuerySet[ProfitSharingReturn]:
    """The returns made against ``order``, by its out_order_no or its order_id."""
    same_order = Q(out_order_no=order.out_order_no)
    if order.order_id:
        same_order |= Q(order_id=order.order_id) | Q(wechat_order_id=order.order_id)
    return ProfitSharingReturn.objects.filter(
        same_order, mchid=order.mchid, sub_mchid=order.sub_mchid
    )


def counted_returns(order: ProfitSharingOrder, exclude_pk: int | None = None) -> int:
    """Returns toward WeChat's limit: every one sent, or still to be sent (but one)."""
    counted = order_returns(order).exclude(state=ReturnState.REJECTED, submitted_at__isnull=True)
    if exclude_pk is not None:
        counted = counted.exclude(pk=exclude_pk)
    return counted.count()


def _sums(order: ProfitSharingOrder, exclude_pk: int | None) -> dict[str, tuple[int, int]]:
    rows = order_returns(order)
    if exclude_pk is not None:
        rows = rows.exclude(pk=exclude_pk)
    figures = rows.values("return_mchid").annotate(
        returned=Sum("amount", filter=Q(state=ReturnState.SUCCEEDED)),
        reserved=Sum(
            "amount",
            filter=~Q(state__in=FINAL_STATES),  # not final: drafts included
        ),
    )
    return {f["return_mchid"]: (f["returned"] or 0, f["reserved"] or 0) for f in figures}


def _blocked(
    order: ProfitSharingOrder, line: ProfitSharingOrderReceiver, now: datetime, count: int
) -> Blocked | None:
    if line.type != ReceiverType.MERCHANT_ID:
        return Blocked.PERSONAL
    if line.account in (order.sub_mchid, order.mchid):
        return Blocked.OWN_LINE
    if line.result != ReceiverResult.SUCCESS:
        return Blocked.LINE_NOT_SUCCESS
    if order.state != SharingOrderState.FINISHED:
        return Blocked.ORDER_NOT_FINISHED
    shared_at = line.finish_time or line.create_time
    if shared_at is not None and now - shared_at > RETURN_WINDOW:
        return Blocked.EXPIRED
    if count >= MAX_RETURNS_PER_ORDER:
        return Blocked.LIMIT_REACHED
    return None


def order_ledger(
    order: ProfitSharingOrder, now: datetime, *, exclude_pk: int | None = None
) -> list[LineLedger]:
    """Every receiver line of ``order`` with its figures (``exclude_pk``: a return left out)."""
    sums = _sums(order, exclude_pk)
    count = counted_returns(order, exclude_pk)
    ledger = []
    for line in order.receivers.all():
        merchant = line.type == ReceiverType.MERCHANT_ID
        returned, reserved = sums.get(line.account, (0, 0)) if merchant else (0, 0)
        blocked = _blocked(order, line, now, count)
        left = max(0, line.amount - returned - reserved)
        ledger.append(
            LineLedger(
                line=line,
                shared=line.amount,
                returned=returned,
                reserved=reserved,
                returnable=0 if blocked else left,
                blocked=blocked,
            )
        )
    return ledger


def find_order(
    mchid: str,
    sub_mchid: str,
    out_order_no: str | None,
    order_id: str | None,
    *,
    lock: bool = False,
) -> ProfitSharingOrder | None:
    """The mirrored sharing order a return names, if the shop has synced it.

    ``lock``: read it with ``SELECT ... FOR UPDATE`` (inside a transaction). Make that the
    transaction's first read of the ledger (see :func:`lock_order`).
    """
    orders = ProfitSharingOrder.objects.filter(mchid=mchid, sub_mchid=sub_mchid or "")
    if lock:
        orders = orders.select_for_update()
    if out_order_no:
        return orders.filter(out_order_no=out_order_no).first()
    if order_id:
        return orders.filter(order_id=order_id).first()
    return None


def lock_order(pk: int) -> ProfitSharingOrder:
    """The sharing order's mirror, locked: the ledger of it is read in turn by writers.

    Take it before any plain read of the transaction. Why: under MySQL's REPEATABLE READ
    a transaction reads from a snapshot taken at its first plain (non-locking) read; a
    ledger summed from a snapshot older than the lock misses the returns committed by
    the transaction that held the lock before, and racing returns together reserve more
    than is returnable. A locking read takes no snapshot, so the sums read after it see
    every commit made before the lock was granted (READ COMMITTED sees them anyway).
    """
    return ProfitSharingOrder.objects.select_for_update().get(pk=pk)


class ReturnNotAllowed(ValueError):
    """WeChat would refuse this return; ``field`` names the culprit, nothing was sent."""

    def __init__(self, field: str, message: str | Promise) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_return(
    order: ProfitSharingOrder,
    return_mchid: str,
    amount: int,
    now: datetime,
    *,
    exclude_pk: int | None = None,
) -> None:
    """Raise :class:`ReturnNotAllowed` when the ledger says WeChat would refuse."""
    lines = {entry.account: entry for entry in order_ledger(order, now, exclude_pk=exclude_pk)}
    entry = lines.get(return_mchid)
    if entry is None:
        raise ReturnNotAllowed("return_mchid", NOT_A_RECEIVER)
    if entry.blocked is Blocked.LIMIT_REACHED:
        raise ReturnNotAllowed("out_order_no", entry.blocked.label)
    if entry.blocked is not None:
        raise ReturnNotAllowed("return_mchid", entry.blocked.label)
    if amount > entry.returnable:
        raise ReturnNotAllowed(
            "amount",
            format_lazy(
                _("exceeds what is returnable from this receiver ({yuan}: {fen} fen)"),
                yuan=yuan(entry.returnable),
                fen=entry.returnable,
            ),
        )
