"""A refund job's plan in words and yuan, as the people who approve and follow it read it.

Why here, once: the admin's pages and ``wxpay_refund_status`` show the same plan; each
first step and each reason the shop funds part of a refund is worded in one table, so
that the two never say different things. The plan itself is the job's JSON
(``refund_jobs.plan_json``): amounts in fen, a code per reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .money import yuan
from .refund_plan import ShopFundsReason
from .refund_states import RefundOutcome

#: What the plan does first, by its ``first_step``.
FIRST_STEPS: dict[str, Promise] = {
    RefundOutcome.FITS_FROZEN: _(
        "The refund fits the payment's frozen money: it is refunded from it, with no "
        "unfreeze and no clawback."
    ),
    RefundOutcome.NEEDS_UNFREEZE: _(
        "What is still frozen of the payment is unfrozen first; then the merchant receivers' "
        "shares are clawed back as needed, and the refund is paid from the available balance."
    ),
    RefundOutcome.NEEDS_CLAWBACK: _(
        "The merchant receivers' shares are clawed back first; then the refund is paid from "
        "the available balance."
    ),
    RefundOutcome.FROM_BALANCE: _("The refund is paid from the merchant's available balance."),
    RefundOutcome.SPLIT_OPEN: _(
        "A split of the payment is still under way at WeChat Pay: the job waits for it, then "
        "plans again."
    ),
    RefundOutcome.NOT_REFUNDABLE: _("WeChat Pay would refuse this refund."),
}
#: Why the shop funds part of the refund from its own balance, by reason code.
SHOP_FUNDS_REASONS: dict[str, Promise] = {
    ShopFundsReason.NOT_RETURNABLE: _(
        "shared to personal receivers (or on lines WeChat Pay never returns from): that money "
        "never comes back"
    ),
    ShopFundsReason.UNFREEZE_OFF: _(
        "what is still frozen stays frozen: this refund may not unfreeze it"
    ),
    ShopFundsReason.NEVER_SHARED: _(
        "more is refunded than the frozen money and the receivers' shares together"
    ),
}


def plan_rows(plan: Mapping[str, Any]) -> list[tuple[Promise, str]]:
    """The plan as (label, words) rows, amounts in yuan; empty for a job with no plan."""
    if not plan:
        return []
    first = str(plan.get("first_step", ""))
    rows: list[tuple[Promise, str]] = [
        (_("first step"), str(FIRST_STEPS.get(first, first))),
        (_("refund"), yuan(plan.get("refund"))),
        (_("still frozen when planned"), yuan(plan.get("unsplit"))),
    ]
    if plan.get("unfreeze"):
        rows.append((_("to unfreeze"), yuan(plan["unfreeze"])))
    clawbacks = plan.get("clawbacks") or []
    if clawbacks:
        parts = ", ".join(f"{number} {yuan(amount)}" for number, amount in clawbacks)
        rows.append((_("to claw back"), f"{yuan(plan.get('clawback'))} ({parts})"))
    shop = int(plan.get("shop_funds") or 0)
    if shop:
        why = "; ".join(str(SHOP_FUNDS_REASONS.get(r, r)) for r in plan.get("reasons") or [])
        rows.append(
            (_("from the shop's own balance"), f"{yuan(shop)}: {why}" if why else yuan(shop))
        )
    else:
        rows.append((_("from the shop's own balance"), yuan(0)))
    return rows
