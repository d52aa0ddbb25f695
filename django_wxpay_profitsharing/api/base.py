"""What every viewset of this API shares: permissions, JSON-only writes, the desk's refusals."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ..conf import wxpay_settings
from ..error_reports import SecretSafeErrorReportsViewMixin
from ..fields import MAX_PK
from .desk_errors import response_for
from .parsers import StrictJSONParser, require_json_body


class StrictAPIMixin(SecretSafeErrorReportsViewMixin, APIView):
    """``API_PERMISSION_CLASSES`` for every route, strict JSON for every write."""

    parser_classes = [StrictJSONParser]

    def get_permissions(self) -> list[BasePermission]:
        return [permission() for permission in wxpay_settings.API_PERMISSION_CLASSES]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        require_json_body(request)

    def handle_exception(self, exc: Exception) -> Response:
        """The desk's refusals answered by one table (``desk_errors.py``), the rest by DRF."""
        answer = response_for(exc)
        return answer if answer is not None else super().handle_exception(exc)


def pk_in_range(text: str) -> int:
    """The row id of a URL's ``{pk}`` (digits by its route); beyond 64 bits: no such row."""
    if int(text) > MAX_PK:  # no row, and no overflow in the database
        raise Http404
    return int(text)
