"""A discrepancy in words, as the person reading it speaks, amounts in yuan.

Why apart from ``reconcile.py``: a run stores facts (``Discrepancy.facts``: the bill's
statuses, the merchants, the local state), not a sentence, so that the admin and
``wxpay_reconcile`` word them in the reader's language at the time they are read.
WeChat Pay's statuses are shown by their words (``labels.RETURN_RESULTS``); a row that
stored with a sentence and no facts shows that sentence (``Discrepancy.detail``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .labels import RETURN_RESULTS, label
from .models.reconciliation import Discrepancy, DiscrepancyKind
from .money import yuan
from .states import ReturnState

NOBODY = gettext_lazy("none")
IN_ANOTHERS_BILL = gettext_lazy("in the bill as %(bill)s's (%(statuses)s), not %(asked)s's")
IN_ANOTHER_SUBS_BILL = gettext_lazy(
    "in the bill for sub-merchant %(bill)s (%(statuses)s), here for sub-merchant %(here)s"
)
NOT_HERE = gettext_lazy("in the bill (%(statuses)s), no local return with this number")
NOT_IN_THE_BILL = gettext_lazy("succeeded here at %(time)s (Beijing time), not in the bill")
STATES_DIFFER = gettext_lazy("local state %(state)s, bill status %(statuses)s")
AMOUNTS_DIFFER = gettext_lazy("local %(local)s, bill %(bill)s")


def describe(discrepancy: Discrepancy) -> str:
    """The discrepancy in a sentence, in the active language."""
    if discrepancy.detail:  # stored as a sentence, with no facts
        return discrepancy.detail
    return sentence(
        discrepancy.kind,
        discrepancy.facts,
        discrepancy.local_amount,
        discrepancy.wechat_amount,
    )


def sentence(
    kind: str, facts: Mapping[str, Any], local_amount: int | None, wechat_amount: int | None
) -> str:
    """What ``facts`` of a discrepancy of ``kind`` say, in the active language."""
    statuses = ", ".join(label(RETURN_RESULTS, s) for s in facts.get("statuses", []))
    if kind == DiscrepancyKind.MERCHANT_DIFFERS and "mchid" in facts:
        bill = _whose(facts.get("bill_mchid", ""), facts.get("bill_sub_mchid", ""))
        asked = _whose(facts["mchid"], facts.get("sub_mchid", ""))
        return str(IN_ANOTHERS_BILL) % {"bill": bill, "statuses": statuses, "asked": asked}
    if kind == DiscrepancyKind.MERCHANT_DIFFERS:
        here = facts.get("local_sub_mchid") or "-"
        bill = facts.get("bill_sub_mchid") or "-"
        return str(IN_ANOTHER_SUBS_BILL) % {"bill": bill, "statuses": statuses, "here": here}
    if kind == DiscrepancyKind.MISSING_LOCALLY:
        return str(NOT_HERE) % {"statuses": statuses}
    if kind == DiscrepancyKind.MISSING_AT_WECHAT:
        return str(NOT_IN_THE_BILL) % {"time": facts.get("finished") or "-"}
    if kind == DiscrepancyKind.STATE_DIFFERS:
        state = facts.get("local_state", "")
        words = ReturnState(state).label if state in ReturnState.values else state
        return str(STATES_DIFFER) % {"state": words, "statuses": statuses}
    if kind == DiscrepancyKind.AMOUNT_DIFFERS:
        return str(AMOUNTS_DIFFER) % {"local": yuan(local_amount), "bill": yuan(wechat_amount)}
    return ""


def _whose(mchid: str, sub_mchid: str) -> str:
    """``merchant 1900000100`` or ``merchant 1900000100, sub-merchant 1900000109``."""
    if sub_mchid:
        return _("merchant %(mchid)s, sub-merchant %(sub)s") % {
            "mchid": mchid or NOBODY,
            "sub": sub_mchid,
        }
    return _("merchant %(mchid)s") % {"mchid": mchid or NOBODY}
