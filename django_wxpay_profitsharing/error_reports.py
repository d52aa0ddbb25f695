"""Keep keys, signatures and Authorization headers off Django's error pages and reports.

The functions that hold them (the client's signed exchange, the key loading, the
AES-GCM decryption, ``clients.build_client``) are marked with Django's
``sensitive_variables`` (see ``wechatpay/sensitive.py``), and every frame they call
inherits the marking. Django's ``SafeExceptionReporterFilter`` honours the marking
only while ``DEBUG`` is False, though: with ``DEBUG=True`` the technical 500 page
would show the Authorization header of a failed exchange. A developer's debug page
with a real merchant key still ends up in screenshots and pasted tracebacks, so
this app's views use :class:`SecretSafeExceptionReporterFilter` (Django's per-request
``request.exception_reporter_filter``), and a project can make it the default::

    DEFAULT_EXCEPTION_REPORTER_FILTER = (
        "django_wxpay_profitsharing.error_reports.SecretSafeExceptionReporterFilter"
    )
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, hiding what is marked sensitive whatever ``DEBUG`` says."""

    def is_active(self, request: HttpRequest | None) -> bool:
        return True


_FILTER = SecretSafeExceptionReporterFilter()


def hide_secrets_in_error_reports(request: HttpRequest) -> None:
    """Make the error page or report of this request use the secret-safe filter."""
    request.exception_reporter_filter = _FILTER


class SecretSafeErrorReportsViewMixin:
    """For DRF views of this app: applied before authentication, parsing or handling."""

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        hide_secrets_in_error_reports(request)
        return super().initialize_request(request, *args, **kwargs)  # type: ignore[misc]


class SecretSafeErrorReportsAdminMixin:
    """For this app's ModelAdmins: the views where actions run and rows are saved."""

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        hide_secrets_in_error_reports(request)
        return super().changelist_view(request, *args, **kwargs)  # type: ignore[misc]

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        hide_secrets_in_error_reports(request)
        return super().changeform_view(request, *args, **kwargs)  # type: ignore[misc]
