"""How a clawback's amount is split across receivers: exact to the fen, no float.

Pure functions of integers: the ledger says what each receiver may still return, the
policy says who gives how much. ``proportional`` uses the largest-remainder method
(Hamilton's), so the parts always sum to the amount asked and no part exceeds what
its receiver may return; ties go to the receiver listed first.

Its errors reach a person (the admin's form, the API's field errors): translated, the
amount in yuan as a person reads it and in fen, the API's unit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .money import yuan

NOT_RETURNABLE = _("not returnable receivers: {accounts}")
LISTED_TWICE = _("an account is listed twice")
AT_LEAST_ONE_FEN = _("must be at least 1 fen")
EXCEEDS = _("exceeds what is returnable from these receivers ({yuan}: {fen} fen)")


class AllocationError(ValueError):
    """The amount cannot be allocated: ``field`` names the input at fault."""

    def __init__(self, field: str, message: str | Promise) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def proportional(amount: int, returnable: Mapping[str, int]) -> dict[str, int]:
    """``amount`` split in proportion to each account's returnable amount."""
    total = sum(returnable.values())
    _check(amount, total)
    shares = {account: amount * value // total for account, value in returnable.items()}
    left = amount - sum(shares.values())
    order = sorted(
        returnable,
        key=lambda account: (
            -(amount * returnable[account] % total),
            list(returnable).index(account),
        ),
    )
    for account in order[:left]:
        shares[account] += 1
    return {account: part for account, part in shares.items() if part}


def in_order(amount: int, returnable: Mapping[str, int], accounts: Sequence[str]) -> dict[str, int]:
    """``amount`` taken from ``accounts`` in turn, each up to what it may return."""
    unknown = [account for account in accounts if account not in returnable]
    if unknown:
        raise AllocationError("accounts", format_lazy(NOT_RETURNABLE, accounts=", ".join(unknown)))
    if len(set(accounts)) != len(accounts):
        raise AllocationError("accounts", LISTED_TWICE)
    _check(amount, sum(returnable[account] for account in accounts))
    shares: dict[str, int] = {}
    left = amount
    for account in accounts:
        part = min(left, returnable[account])
        if part:
            shares[account] = part
        left -= part
    return shares


def _check(amount: int, available: int) -> None:
    if amount < 1:
        raise AllocationError("amount", AT_LEAST_ONE_FEN)
    if amount > available:
        raise AllocationError("amount", format_lazy(EXCEEDS, yuan=yuan(available), fen=available))
