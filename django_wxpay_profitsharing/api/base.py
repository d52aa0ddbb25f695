"""What every viewset of this API shares: the permission classes and JSON-only writes."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from ..conf import wxpay_settings
from ..error_reports import SecretSafeErrorReportsViewMixin
from .parsers import StrictJSONParser, require_json_body

#: The largest 64-bit key: a bigger {pk} names no row (and would overflow the database).
MAX_PK = 2**63 - 1


class StrictAPIMixin(SecretSafeErrorReportsViewMixin, APIView):
    """``API_PERMISSION_CLASSES`` for every route, strict JSON for every write."""

    parser_classes = [StrictJSONParser]

    def get_permissions(self) -> list[BasePermission]:
        return [permission() for permission in wxpay_settings.API_PERMISSION_CLASSES]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        require_json_body(request)
