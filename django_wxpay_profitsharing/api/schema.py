"""OpenAPI descriptions for drf-spectacular (an optional extra: no-ops without it).

Without the ``openapi`` extra the names below are stand-ins that accept what the real
ones do (``OpenApiParameter.PATH`` included) and describe nothing, so that the API's
URLconf loads in a plain install.

Every status the API answers is documented, errors included, so that a generated
client (or schemathesis) knows them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework import serializers

from .clawback_serializers import ClawbackSerializer, SharingOrderSerializer
from .refund_serializers import RefundJobSerializer
from .serializers import ProfitSharingReturnSerializer

if TYPE_CHECKING:
    from drf_spectacular.utils import (
        OpenApiParameter,
        OpenApiResponse,
        extend_schema,
        extend_schema_view,
    )
else:
    try:
        from drf_spectacular.utils import (
            OpenApiParameter,
            OpenApiResponse,
            extend_schema,
            extend_schema_view,
        )
    except ImportError:  # the app works without the extra: the descriptions are unused

        def extend_schema(*args, **kwargs):
            return lambda target: target

        extend_schema_view = extend_schema

        def OpenApiResponse(*args, **kwargs):
            return None

        class OpenApiParameter:
            """Stands in for drf-spectacular's: built, never read (its locations too)."""

            PATH, QUERY, HEADER, COOKIE = "path", "query", "header", "cookie"

            def __init__(self, *args, **kwargs):
                pass


__all__ = [
    "ACTION_RESPONSES",
    "BULK_RESPONSES",
    "BY_NUMBER",
    "BY_PK",
    "CLAWBACK_BY_PK",
    "CLAWBACK_CANCEL_RESPONSES",
    "CLAWBACK_CREATE_RESPONSES",
    "CLAWBACK_DETAIL_RESPONSES",
    "CLAWBACK_LIST_RESPONSES",
    "CLAWBACK_SUBMIT_RESPONSES",
    "CLAW_BACK_AGAIN_RESPONSES",
    "CREATE_RESPONSES",
    "DETAIL_RESPONSES",
    "LIST_RESPONSES",
    "ORDER_LIST_RESPONSES",
    "ORDER_SYNC_RESPONSES",
    "REFUND_ACTION_RESPONSES",
    "REFUND_BANK_RESPONSES",
    "REFUND_BY_PK",
    "REFUND_CREATE_RESPONSES",
    "REFUND_DETAIL_RESPONSES",
    "REFUND_LIST_RESPONSES",
    "REFUND_REFRESH_RESPONSES",
    "REFUND_SUBMIT_RESPONSES",
    "RETRY_RESPONSES",
    "SUBMIT_RESPONSES",
    "extend_schema",
    "extend_schema_view",
]


class RefusedSerializer(serializers.Serializer[Any]):
    """A row the operation did not act on: the field at fault and why."""

    id = serializers.IntegerField()
    out_return_no = serializers.CharField()
    field = serializers.CharField(help_text="The field at fault, e.g. amount.")
    message = serializers.CharField()


class QueuedSerializer(serializers.Serializer[Any]):
    queued = serializers.IntegerField(help_text="Approved and sent in the background.")
    backend = serializers.ChoiceField(choices=["celery", "thread"])
    refused = RefusedSerializer(many=True)


class BulkResultSerializer(serializers.Serializer[Any]):
    results = ProfitSharingReturnSerializer(many=True, help_text="Each row sent now.")
    drafts = serializers.ListField(
        child=serializers.IntegerField(), help_text="Drafts this user may not approve: left drafts."
    )
    refused = RefusedSerializer(many=True, help_text="Rows the ledger refused, and why.")


def _error(text: str) -> Any:
    return OpenApiResponse(description=text)


#: The two lookups, each its own path parameter (never one that tries both).
BY_PK = [
    OpenApiParameter(
        "id",  # drf-spectacular shows the ``pk`` URL kwarg as ``{id}``
        int,
        OpenApiParameter.PATH,
        description="The return's row id (digits). Not an out_return_no.",
    )
]
BY_NUMBER = [
    OpenApiParameter(
        "out_return_no",
        str,
        OpenApiParameter.PATH,
        description="The merchant's out_return_no, even when it is all digits.",
        pattern="^[0-9A-Za-z_*@|-]{1,64}$",
    ),
    OpenApiParameter(
        "mchid",
        str,
        OpenApiParameter.QUERY,
        required=False,
        description="Whose out_return_no (a configured merchant id); default DEFAULT_MCHID.",
    ),
]
AUTH = {
    401: _error("Not authenticated."),
    403: _error("Authenticated without the model permission this action needs."),
}
#: Writes: a body that is not declared application/json.
MEDIA = {415: _error("The body is not application/json.")}
LIST_RESPONSES = {
    200: ProfitSharingReturnSerializer(many=True),
    400: _error("A filter value or the cursor is invalid; the body names the parameter."),
    **AUTH,
}
DETAIL_RESPONSES = {
    200: ProfitSharingReturnSerializer,
    404: _error("No such return."),
    **AUTH,
}
ACTION_RESPONSES = {**DETAIL_RESPONSES, **MEDIA}
SUBMIT_RESPONSES = {
    **ACTION_RESPONSES,
    400: _error("The ledger no longer allows this return; the body names the field."),
}
CREATE_RESPONSES = {
    201: ProfitSharingReturnSerializer,
    200: OpenApiResponse(
        ProfitSharingReturnSerializer,
        description="The same out_return_no with the same fields: the existing return.",
    ),
    400: _error(
        "A field is invalid, unknown or read-only, or the JSON is malformed (a duplicate"
        " key, NaN, nested too deeply); the body names the field."
    ),
    409: _error("The out_return_no exists with other fields."),
    **AUTH,
    **MEDIA,
}
BULK_RESPONSES = {
    200: BulkResultSerializer,
    202: QueuedSerializer,
    400: _error("ids is missing or invalid, or another field is given."),
    **AUTH,
    **MEDIA,
}

#: WeChat Pay could not be asked (transport, 5xx, rate limit, our credentials).
UNAVAILABLE = {
    503: _error("WeChat Pay could not be asked about the sharing order; try again later.")
}
RETRY_RESPONSES = {
    **ACTION_RESPONSES,
    409: _error("The return is not waiting for its receiver to top up."),
}
CLAW_BACK_AGAIN_RESPONSES = {
    201: ProfitSharingReturnSerializer,
    400: _error("The return cannot be clawed back again; the body names the field."),
    404: _error("No such return."),
    **AUTH,
    **MEDIA,
    **UNAVAILABLE,
}
CLAWBACK_BY_PK = [
    OpenApiParameter("id", int, OpenApiParameter.PATH, description="The clawback's row id.")
]
CLAWBACK_LIST_RESPONSES = {
    200: ClawbackSerializer(many=True),
    400: _error("A filter value or the cursor is invalid; the body names the parameter."),
    **AUTH,
}
CLAWBACK_DETAIL_RESPONSES = {
    200: ClawbackSerializer,
    404: _error("No such clawback."),
    **AUTH,
}
CLAWBACK_SUBMIT_RESPONSES = {
    **CLAWBACK_DETAIL_RESPONSES,
    **MEDIA,
    400: _error("The ledger no longer allows one of its returns; the body names the field."),
}
CLAWBACK_CANCEL_RESPONSES = {
    **CLAWBACK_DETAIL_RESPONSES,
    **MEDIA,
    400: _error("A return of the clawback was approved or sent already (state)."),
}
CLAWBACK_CREATE_RESPONSES = {
    201: ClawbackSerializer,
    200: OpenApiResponse(
        ClawbackSerializer,
        description="The same out_clawback_no with the same fields: the existing clawback.",
    ),
    400: _error(
        "A field is invalid, unknown or read-only, the amount is over what is returnable,"
        " WeChat Pay knows no such sharing order (out_order_no), or the JSON is"
        " malformed; the body names the field."
    ),
    409: _error("The out_clawback_no exists with other fields."),
    **AUTH,
    **MEDIA,
    **UNAVAILABLE,
}
ORDER_LIST_RESPONSES = {
    200: SharingOrderSerializer(many=True),
    400: _error("out_order_no is missing, or a parameter is invalid."),
    **AUTH,
}
ORDER_SYNC_RESPONSES = {
    200: SharingOrderSerializer,
    400: _error(
        "A field is invalid, unknown, or WeChat Pay knows no such sharing order"
        " (out_order_no); the body names the field."
    ),
    **AUTH,
    **MEDIA,
    **UNAVAILABLE,
}

REFUND_BY_PK = [
    OpenApiParameter("id", int, OpenApiParameter.PATH, description="The refund job's row id.")
]
REFUND_LIST_RESPONSES = {
    200: RefundJobSerializer(many=True),
    400: _error("A filter value or the cursor is invalid; the body names the parameter."),
    **AUTH,
}
REFUND_DETAIL_RESPONSES = {
    200: RefundJobSerializer,
    404: _error("No such refund (or not one of your merchants')."),
    **AUTH,
}
REFUND_CREATE_RESPONSES = {
    201: OpenApiResponse(
        RefundJobSerializer,
        description="The refund job with its plan: a draft, or approved and moving on "
        "(SUBMIT_ON_CREATE and a user who may approve it).",
    ),
    200: OpenApiResponse(
        RefundJobSerializer,
        description="The same out_refund_no with the same fields: the existing refund.",
    ),
    400: _error(
        "A field is invalid, unknown or read-only, the amount is above what the payment can"
        " still refund (amount), WeChat Pay knows no such payment (transaction_id), or the"
        " JSON is malformed; the body names the field. Nothing was created."
    ),
    409: _error(
        'The out_refund_no exists with other fields: {"code": "conflict", "existing": id}.'
    ),
    **AUTH,
    **MEDIA,
    503: _error("WeChat Pay could not be asked about the payment; nothing was created."),
}
REFUND_SUBMIT_RESPONSES = {
    **REFUND_DETAIL_RESPONSES,
    **MEDIA,
    200: OpenApiResponse(
        RefundJobSerializer,
        description="The job: approved and moving on, or as it stands when it was no draft.",
    ),
    403: _error(
        "Without submit_refundjob, or (REQUIRE_SEPARATE_SUBMITTER) the user created the refund."
    ),
}
REFUND_REFRESH_RESPONSES = {**REFUND_DETAIL_RESPONSES, **MEDIA}
REFUND_ACTION_RESPONSES = {
    **REFUND_DETAIL_RESPONSES,
    **MEDIA,
    409: _error(
        'The action is not open to the refund as it stands: {"code": "not_open", "state": ...}.'
    ),
}
REFUND_BANK_RESPONSES = {
    **REFUND_ACTION_RESPONSES,
    400: _error("WeChat Pay refused the request; the body names the field."),
    503: _error("WeChat Pay could not be asked; nothing was changed. Try again later."),
}
