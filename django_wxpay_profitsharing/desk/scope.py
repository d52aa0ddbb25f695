"""The merchant scope as the desk applies it: narrow every selection, check every target.

Why in the desk too, not only at the doors: a door lists a user's own merchants, but
an operation may also be asked by the shop's code for a user, or with numbers typed
in a form; the desk refuses whatever lies outside the user's scope (``access.py``),
and the service layer checks again at approval.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from ..access import in_scope, scope_field

OUT_OF_SCOPE = _("you may not act for this merchant")


def require_scope(by: Any, mchid: str, sub_mchid: str | None) -> None:
    """A field error naming ``mchid`` (or ``sub_mchid``) when ``by`` may not act for it."""
    if not in_scope(by, mchid, sub_mchid or None):
        raise ValidationError({scope_field(by, mchid): [OUT_OF_SCOPE]})
