"""The API's two viewsets: returns by row id, and returns by out_return_no.

``/returns/`` lists and creates; ``/returns/{pk}/`` (digits, the row id only) and
``/returns/by-out-return-no/{out_return_no}/`` read one return, each with its
``submit/``, ``refresh/``, ``retry/`` (a return waiting for a top-up, re-sent now)
and ``claw-back-again/`` (a failed one replaced). Why two routes: a shop whose out_return_no is its
numeric order number ("2") must never reach the return whose row id is 2; one
route that tried the id first did exactly that.

No update or delete: a return is a money record, changed only by the service layer.
Create is idempotent on ``out_return_no``: the same fields again answer 200 with the
existing return, other fields 409. Writes take JSON only (``parsers.py``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import desk
from ..merchants import default_mchid, is_configured
from ..models.returns import ProfitSharingReturn
from .base import StrictAPIMixin, pk_in_range
from .filters import ProfitSharingReturnFilter
from .pagination import ReturnCursorPagination
from .schema import (
    ACTION_RESPONSES,
    BULK_RESPONSES,
    BY_NUMBER,
    BY_PK,
    CLAW_BACK_AGAIN_RESPONSES,
    CREATE_RESPONSES,
    DETAIL_RESPONSES,
    LIST_RESPONSES,
    RETRY_RESPONSES,
    SUBMIT_RESPONSES,
    extend_schema,
    extend_schema_view,
)
from .serializers import BulkSubmitSerializer, ProfitSharingReturnSerializer

#: out_return_no's characters as WeChat Pay documents them (validation.OUT_NO_RE).
OUT_RETURN_NO_PATTERN = "[0-9A-Za-z_*@|-]{1,64}"


class _OneReturnViewSet(
    StrictAPIMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ProfitSharingReturn],
):
    """Retrieve, submit and refresh one return; subclasses say how it is looked up.

    The actions keep their names in both subclasses, so that the permission table
    (``permissions.ACTION_PERMISSIONS``) guards both routes alike. Each action asks
    the desk about the one row the URL names (``one=True``: a refusal is the answer).
    """

    serializer_class = ProfitSharingReturnSerializer

    def get_queryset(self) -> QuerySet[ProfitSharingReturn]:
        return desk.visible(self.request.user, ProfitSharingReturn.objects.all())

    def get_object(self) -> ProfitSharingReturn:
        """The one row the URL names; list filters (query parameters) do not apply."""
        value = self.kwargs[self.lookup_field]
        row = get_object_or_404(self.get_queryset(), **{self.lookup_field: value})
        self.check_object_permissions(self.request, row)
        return row

    def _the_row(self) -> QuerySet[ProfitSharingReturn]:
        """The URL's row as a selection of one, for the desk."""
        return self.get_queryset().filter(pk=self.get_object().pk)

    def _render(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(ProfitSharingReturn.objects.get(pk=pk)).data, code)

    @action(detail=True, methods=["post"])
    def submit(self, request: Request, **kwargs: Any) -> Response:
        """Submit a draft or pending return now (a no-op for any other state).

        A draft needs a user who may submit it (the submit permission; with
        ``REQUIRE_SEPARATE_SUBMITTER``, not its creator): 403 otherwise; 400 naming
        the field when the ledger no longer allows it.
        """
        row = self._the_row()
        desk.submit(row, by=request.user, door=desk.Door.API, one=True)
        return self._render(row.get().pk)

    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, **kwargs: Any) -> Response:
        """Ask WeChat Pay for the current state of a processing (or uncertain) return."""
        row = self._the_row()
        desk.refresh(row, by=request.user, door=desk.Door.API, one=True)
        return self._render(row.get().pk)

    @action(detail=True, methods=["post"])
    def retry(self, request: Request, **kwargs: Any) -> Response:
        """Retry now: re-send, identically, a return waiting for its receiver to top up.

        409 when the return is not waiting (WeChat Pay holds it only while it is).
        """
        row = self._the_row()
        desk.retry_now(row, by=request.user, door=desk.Door.API, one=True)
        return self._render(row.get().pk)

    @action(detail=True, methods=["post"], url_path="claw-back-again")
    def claw_back_again(self, request: Request, **kwargs: Any) -> Response:
        """Replace a failed or rejected return by a new one (a new out_return_no).

        The new return follows the send policy: sent when ``SUBMIT_ON_CREATE`` and the
        user may submit, a draft otherwise. 400 naming the field when the return
        cannot be replaced (not failed, replaced already, nothing left).
        """
        batch = desk.claw_back_again(self._the_row(), by=request.user, door=desk.Door.API, one=True)
        return self._render(batch.made[0].pk, status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(responses=LIST_RESPONSES),
    retrieve=extend_schema(parameters=BY_PK, responses=DETAIL_RESPONSES),
    create=extend_schema(responses=CREATE_RESPONSES),
    submit=extend_schema(request=None, parameters=BY_PK, responses=SUBMIT_RESPONSES),
    refresh=extend_schema(request=None, parameters=BY_PK, responses=ACTION_RESPONSES),
    retry=extend_schema(request=None, parameters=BY_PK, responses=RETRY_RESPONSES),
    claw_back_again=extend_schema(
        request=None, parameters=BY_PK, responses=CLAW_BACK_AGAIN_RESPONSES
    ),
    bulk_submit=extend_schema(request=BulkSubmitSerializer, responses=BULK_RESPONSES),
)
class ProfitSharingReturnViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, _OneReturnViewSet):
    """Profit-sharing returns (分账回退). ``{pk}`` is the numeric row id, nothing else."""

    pagination_class = ReturnCursorPagination
    filter_backends = [ProfitSharingReturnFilter]
    lookup_value_regex = "[0-9]+"

    def get_object(self) -> ProfitSharingReturn:
        pk_in_range(self.kwargs["pk"])
        return super().get_object()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Create a return (201), or find the identical one (200); 409 for other fields."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        made = desk.create_return(
            desk.request_fields(data),
            by=request.user,
            door=desk.Door.API,
            mchid=data.get("mchid") or None,
        )
        code = status.HTTP_201_CREATED if made.created else status.HTTP_200_OK
        if made.disposition is desk.Disposition.SEND_IN_BACKGROUND:
            # Answered at once, pending: the client need not wait for WeChat Pay's answer.
            return Response(self.get_serializer(made.row).data, status=code)
        return self._render(made.row.pk, code)

    @action(detail=False, methods=["post"], url_path="bulk-submit")
    def bulk_submit(self, request: Request) -> Response:
        """Submit many drafts and pending returns; large batches are queued (202).

        Answers each row sent on this request, and the refused ones with the field and
        the reason (drafts this user may not approve are left drafts).
        """
        body = BulkSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        selection = self.get_queryset().filter(pk__in=body.validated_data["ids"])
        batch = desk.submit(selection, by=request.user, door=desk.Door.API)
        refused = [
            {"id": r.pk, "out_return_no": r.number, "field": r.field, "message": r.message}
            for r in batch.refused
        ]
        if batch.queued:
            return Response(
                {"queued": batch.queued, "backend": batch.backend, "refused": refused},
                status=status.HTTP_202_ACCEPTED,
            )
        rows = [self.get_serializer(row).data for row in batch.rows()]
        return Response({"results": rows, "drafts": batch.drafts, "refused": refused})


@extend_schema_view(
    retrieve=extend_schema(parameters=BY_NUMBER, responses=DETAIL_RESPONSES),
    submit=extend_schema(request=None, parameters=BY_NUMBER, responses=SUBMIT_RESPONSES),
    refresh=extend_schema(request=None, parameters=BY_NUMBER, responses=ACTION_RESPONSES),
    retry=extend_schema(request=None, parameters=BY_NUMBER, responses=RETRY_RESPONSES),
    claw_back_again=extend_schema(
        request=None, parameters=BY_NUMBER, responses=CLAW_BACK_AGAIN_RESPONSES
    ),
)
class ProfitSharingReturnByNumberViewSet(_OneReturnViewSet):
    """One return by a merchant's ``out_return_no``: never by its row id.

    The merchant is ``?mchid=`` (default: ``DEFAULT_MCHID``); out_return_no is unique
    per merchant only. A merchant that is not configured has no returns: 404.
    """

    lookup_field = "out_return_no"
    lookup_value_regex = OUT_RETURN_NO_PATTERN

    def get_queryset(self) -> QuerySet[ProfitSharingReturn]:
        mchid = self.request.query_params.get("mchid") or default_mchid()
        if not is_configured(mchid):
            return ProfitSharingReturn.objects.none()
        return desk.visible(self.request.user, ProfitSharingReturn.objects.filter(mchid=mchid))
