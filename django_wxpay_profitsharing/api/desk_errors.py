"""The desk's typed refusals as HTTP answers: one table, for every route of the API.

Why here and once: a route parses, calls the desk and renders; what a refusal means to
an HTTP client (400 naming the field, 403, 409, 503) is the same whichever route met
it. Never a 500, and never a secret in the body.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .. import desk

#: Codes in a 409's body, by the conflicting number's field.
CONFLICT = "conflict"
#: The code of a 503: WeChat Pay could not be asked just now (nothing was created).
UNAVAILABLE = "wechat_pay_unavailable"


def _messages(exc: DjangoValidationError) -> dict[str, Any]:
    if hasattr(exc, "error_dict"):
        return dict(exc.message_dict)
    return {api_settings.NON_FIELD_ERRORS_KEY: list(exc.messages)}


def response_for(exc: Exception) -> Response | None:
    """The answer to one of the desk's refusals; ``None`` for any other exception."""
    if isinstance(exc, desk.ReturnConflict | desk.ClawbackConflict | desk.RefundConflict):
        body = {**exc.message_dict, "code": CONFLICT, "existing": exc.existing.pk}
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        return Response(_messages(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, desk.WrongState):
        body = {"detail": str(exc.message), "code": exc.code, "state": exc.row.state}
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, desk.SyncFailed):
        if exc.field is None:
            body = {"detail": str(exc.message), "code": UNAVAILABLE}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        return Response({exc.field: [str(exc.message)]}, status=status.HTTP_400_BAD_REQUEST)
    return None
