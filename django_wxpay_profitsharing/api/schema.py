"""OpenAPI descriptions for drf-spectacular (an optional extra: no-ops without it).

Every status the API answers is documented, errors included, so that a generated
client (or schemathesis) knows them all.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .serializers import ProfitSharingReturnSerializer

try:
    from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
except ImportError:  # pragma: no cover - the app works without the extra

    def extend_schema(*args: Any, **kwargs: Any):
        return lambda target: target

    extend_schema_view = extend_schema

    def OpenApiResponse(*args: Any, **kwargs: Any) -> None:
        return None


class QueuedSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    backend = serializers.ChoiceField(choices=["celery", "thread"])


class BulkResultSerializer(serializers.Serializer):
    results = ProfitSharingReturnSerializer(many=True)


def _error(text: str) -> Any:
    return OpenApiResponse(description=text)


AUTH = {
    401: _error("Not authenticated."),
    403: _error("Authenticated without the model permission this action needs."),
}
LIST_RESPONSES = {
    200: ProfitSharingReturnSerializer(many=True),
    400: _error("A filter value is invalid; the body names the parameter."),
    404: _error("Invalid cursor."),
    **AUTH,
}
DETAIL_RESPONSES = {
    200: ProfitSharingReturnSerializer,
    404: _error("No return with that id or out_return_no."),
    **AUTH,
}
CREATE_RESPONSES = {
    201: ProfitSharingReturnSerializer,
    200: OpenApiResponse(
        ProfitSharingReturnSerializer,
        description="The same out_return_no with the same fields: the existing return.",
    ),
    400: _error("A field is invalid; the body names it."),
    409: _error("The out_return_no exists with other fields."),
    **AUTH,
}
BULK_RESPONSES = {
    200: BulkResultSerializer,
    202: QueuedSerializer,
    400: _error("ids is missing or invalid."),
    **AUTH,
}
