"""Who may do what: the permission names, the four-eyes rule, and each user's merchants.

Why one module: the admin, the API, the desk and the service layer all ask "may this
user send this return?" and "may this user see this merchant's rows?"; written once
here, a rule changes in one place. Permission names are Django's
``<app_label>.<codename>`` strings, as ``user.has_perm`` takes them.

The merchant scope (``MERCHANT_SCOPE``, a callable ``scope(user)``) keeps one
merchant's operators out of another's money: every row the app lists, looks up,
approves or sends is narrowed by :func:`scoped` or checked by :func:`in_scope`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .conf import wxpay_settings
from .states import Action

M = TypeVar("M", bound=Model)

#: The app's label (``AppConfig.label``): the first half of every permission name.
APP_LABEL = "wxpay_profitsharing"

# What a person refused is told (the admin's messages, the API's 403 ``detail``).
MAY_NOT_SUBMIT_RETURN = _("this user may not submit this return")
MAY_NOT_ACT_FOR_RETURNS_MERCHANT = _("this user may not act for this return's merchant")
MAY_NOT_CANCEL_CLAWBACKS = _("this user may not cancel clawbacks")
MAY_NOT_APPROVE_REFUND = _("this user may not approve this refund")
MAY_NOT_ACT_ON_REFUNDS = _("this user may not act on refunds")
MAY_NOT_ACT_FOR_REFUNDS_MERCHANT = _("this user may not act for this refund's merchant")
#: A return's action this user may not ask for, by the action.
MAY_NOT_ON_RETURN: dict[str, Promise] = {
    Action.SUBMIT: MAY_NOT_SUBMIT_RETURN,
    Action.REFRESH: _("this user may not refresh this return"),
    Action.DUE: _("this user may not process this return"),
    Action.RETRY: _("this user may not retry this return"),
}


class Perm(enum.StrEnum):
    """The permissions the app's doors and desk ask for, by their full names."""

    VIEW_RETURN = f"{APP_LABEL}.view_profitsharingreturn"
    ADD_RETURN = f"{APP_LABEL}.add_profitsharingreturn"
    #: Moves a return from draft to WeChat Pay (and re-sends one waiting for a top-up).
    SUBMIT_RETURN = f"{APP_LABEL}.submit_profitsharingreturn"
    REFRESH_RETURN = f"{APP_LABEL}.refresh_profitsharingreturn"
    VIEW_CLAWBACK = f"{APP_LABEL}.view_profitsharingclawback"
    ADD_CLAWBACK = f"{APP_LABEL}.add_profitsharingclawback"
    #: Sends a clawback's returns (beside :attr:`SUBMIT_RETURN`, which each return needs).
    SUBMIT_CLAWBACK = f"{APP_LABEL}.submit_profitsharingclawback"
    #: Cancels a clawback as a whole while nothing of it was sent.
    CANCEL_CLAWBACK = f"{APP_LABEL}.cancel_profitsharingclawback"
    VIEW_ORDER = f"{APP_LABEL}.view_profitsharingorder"
    #: Brings a sharing order in from WeChat Pay (a sync creates its mirror).
    ADD_ORDER = f"{APP_LABEL}.add_profitsharingorder"
    VIEW_REFUND = f"{APP_LABEL}.view_refundjob"
    ADD_REFUND = f"{APP_LABEL}.add_refundjob"
    #: Approves a refund job (moves money to the customer).
    SUBMIT_REFUND = f"{APP_LABEL}.submit_refundjob"
    #: Acts on a job that waits for an operator (proceed, retry, to bank, cancel, again).
    OPERATE_REFUND = f"{APP_LABEL}.operate_refundjob"


def acting_user(user: Any) -> Any:
    """The user to record as creator or submitter: ``None`` for anonymous or no user."""
    return user if getattr(user, "pk", None) else None


def has_perms(user: Any, perms: frozenset[Perm] | tuple[Perm, ...]) -> bool:
    """Whether ``user`` holds every one of ``perms`` (``None``, the shop's code: yes)."""
    if user is None:
        return True
    if not getattr(user, "is_authenticated", False):
        return False
    return bool(user.has_perms([str(perm) for perm in perms]))


def may_submit(user: Any, creator: Any = None) -> bool:
    """Whether ``user`` may send a return to WeChat Pay (``None``: the shop's own code).

    A user needs :attr:`Perm.SUBMIT_RETURN`; with ``REQUIRE_SEPARATE_SUBMITTER`` the
    submitter must not be the return's creator (two people for money movement).
    ``creator`` is a user, a user id, or ``None`` (made by the shop's code).
    """
    if user is None:
        return True
    if not has_perms(user, (Perm.SUBMIT_RETURN,)):
        return False
    if wxpay_settings.REQUIRE_SEPARATE_SUBMITTER and creator is not None:
        return bool(getattr(creator, "pk", creator) != user.pk)
    return True


# ----------------------------------------------------------------- merchant scope
#: Whose rows a user may see and act on: ``(mchid, sub_mchid)`` pairs, a ``None``
#: sub_mchid meaning every sub-merchant of that merchant (and its direct-mode rows);
#: ``None`` for the whole scope: every merchant.
MerchantScope = frozenset[tuple[str, str | None]] | None
#: The prefix of the group names :func:`merchant_groups` reads.
GROUP_PREFIX = "wxpay:"
#: Where each model keeps the merchant and sub-merchant its rows belong to.
SCOPE_PATHS: dict[str, tuple[str, str]] = {
    f"{APP_LABEL}.profitsharingreturn": ("mchid", "sub_mchid"),
    f"{APP_LABEL}.profitsharingclawback": ("mchid", "order__sub_mchid"),
    f"{APP_LABEL}.profitsharingorder": ("mchid", "sub_mchid"),
    f"{APP_LABEL}.reconciliationrun": ("mchid", "sub_mchid"),
    f"{APP_LABEL}.discrepancy": ("run__mchid", "run__sub_mchid"),
    f"{APP_LABEL}.refundjob": ("mchid", "sub_mchid"),
    f"{APP_LABEL}.payment": ("mchid", "sub_mchid"),
    f"{APP_LABEL}.notification": ("mchid", "job__sub_mchid"),
}


def every_merchant(user: Any) -> MerchantScope:
    """The default ``MERCHANT_SCOPE``: every user sees every merchant's rows."""
    return None


def merchant_groups(user: Any) -> MerchantScope:
    """A ready ``MERCHANT_SCOPE``: the merchants named by the user's groups.

    A group ``wxpay:1900000100`` gives merchant 1900000100 with all its sub-merchants;
    ``wxpay:1900000100:1900000109`` one sub-merchant of it. A superuser sees everything;
    a user in no such group, nothing. Why groups: a 服务商 gives each team its own
    sub-merchants with the tool it already has (the admin's groups), no model of ours.
    """
    if getattr(user, "is_superuser", False):
        return None
    if not getattr(user, "is_authenticated", False):
        return frozenset()
    pairs: set[tuple[str, str | None]] = set()
    for name in user.groups.filter(name__startswith=GROUP_PREFIX).values_list("name", flat=True):
        mchid, _sep, sub_mchid = name[len(GROUP_PREFIX) :].partition(":")
        if mchid:
            pairs.add((mchid, sub_mchid or None))
    return frozenset(pairs)


def scope_of(user: Any) -> MerchantScope:
    """The merchants ``user`` may see and act on (``None`` user, the shop's code: all)."""
    if user is None:
        return None
    scope: MerchantScope = wxpay_settings.MERCHANT_SCOPE(user)
    return scope


def in_scope(user: Any, mchid: str, sub_mchid: str | None) -> bool:
    """Whether ``user`` may see and act on rows of ``mchid`` / ``sub_mchid``."""
    scope = scope_of(user)
    if scope is None:
        return True
    return (mchid, None) in scope or (mchid, sub_mchid or None) in scope


def scope_field(user: Any, mchid: str) -> str:
    """Which field to name when ``(mchid, some sub_mchid)`` is out of ``user``'s scope."""
    scope = scope_of(user)
    return "sub_mchid" if scope and any(pair[0] == mchid for pair in scope) else "mchid"


def merchants_in_scope(user: Any, mchids: Iterable[str]) -> list[str]:
    """Those of ``mchids`` ``user`` may act for (for some sub-merchant at least)."""
    scope = scope_of(user)
    if scope is None:
        return list(mchids)
    return [mchid for mchid in mchids if any(pair[0] == mchid for pair in scope)]


def scoped(user: Any, queryset: QuerySet[M]) -> QuerySet[M]:
    """``queryset`` narrowed to the rows of the merchants ``user`` may see."""
    scope = scope_of(user)
    if scope is None:
        return queryset
    mchid_path, sub_path = SCOPE_PATHS[queryset.model._meta.label_lower]
    allowed = Q(pk__in=[])
    for mchid, sub_mchid in scope:
        pair = Q(**{mchid_path: mchid})
        if sub_mchid is not None:
            pair &= Q(**{sub_path: sub_mchid})
        allowed |= pair
    return queryset.filter(allowed)
