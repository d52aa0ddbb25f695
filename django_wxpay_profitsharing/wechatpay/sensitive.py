"""``sensitive_variables``: Django's marking for key-holding frames, without needing Django.

Why: a function that holds a private key, an APIv3 key, a signature or an
Authorization header must be hidden from Django's error reports (the technical 500
page, the admins' e-mail, anything else that uses the exception reporter filter).
Django finds such a frame by walking up the stack from each traceback frame to the
nearest ``sensitive_variables_wrapper`` frame, so the marking must be Django's own
wrapper; marking a function also covers every frame it calls (the transport's,
the standard library's), which is what keeps the bytes on the wire out of a report.

This package is a standalone client, so Django is optional: when it cannot be
imported the decorator leaves the function as it is (there is no Django report to
hide anything from). The wrapper works on functions and methods alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def sensitive_variables(*names: str) -> Callable[[F], F]:
    """Hide ``names`` (all locals when none are named) of the decorated function.

    The frames it calls are filtered by the same names (Django's rule), so name
    nothing on a function whose callees keep secrets under other names.
    """
    try:
        from django.views.decorators.debug import sensitive_variables as django_marking
    except ImportError:  # a Django-free interpreter: nothing reports frames
        return _unchanged
    return django_marking(*names)


def _unchanged(func: F) -> F:
    return func
