"""Who may do what: the app's permission names, and the four-eyes rule of money movement.

Why one module: the admin, the API, the desk and the service layer all ask "may this
user send this return?"; written once here, a permission is renamed or a rule changed
in one place. The names are Django's ``<app_label>.<codename>`` strings, as
``user.has_perm`` takes them.
"""

from __future__ import annotations

import enum
from typing import Any

from .conf import wxpay_settings

#: The app's label (``AppConfig.label``): the first half of every permission name.
APP_LABEL = "wxpay_profitsharing"


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
    VIEW_ORDER = f"{APP_LABEL}.view_profitsharingorder"
    #: Brings a sharing order in from WeChat Pay (a sync creates its mirror).
    ADD_ORDER = f"{APP_LABEL}.add_profitsharingorder"


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
