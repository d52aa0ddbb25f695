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

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from .. import clawbacks, services
from ..conf import wxpay_settings
from ..merchants import default_mchid, is_configured
from ..models import REQUEST_ID_FIELDS, ProfitSharingReturn, ReturnState
from ..states import Action
from ..task_backends import dispatch, submit_after_commit
from .base import MAX_PK, StrictAPIMixin
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
    extend_schema,
    extend_schema_view,
)
from .serializers import BulkSubmitSerializer, ProfitSharingReturnSerializer

#: out_return_no's characters as WeChat Pay documents them (validation.OUT_NO_RE).
OUT_RETURN_NO_PATTERN = "[0-9A-Za-z_*@|-]{1,64}"
NOT_WAITING = _("this return is not waiting for its receiver to top up")


class _OneReturnViewSet(
    StrictAPIMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ProfitSharingReturn],
):
    """Retrieve, submit and refresh one return; subclasses say how it is looked up.

    The actions keep their names in both subclasses, so that the permission table
    (``permissions.ACTION_PERMISSIONS``) guards both routes alike.
    """

    serializer_class = ProfitSharingReturnSerializer

    def get_queryset(self) -> QuerySet[ProfitSharingReturn]:
        return ProfitSharingReturn.objects.all()

    def get_object(self) -> ProfitSharingReturn:
        """The one row the URL names; list filters (query parameters) do not apply."""
        value = self.kwargs[self.lookup_field]
        row = get_object_or_404(self.get_queryset(), **{self.lookup_field: value})
        self.check_object_permissions(self.request, row)
        return row

    @action(detail=True, methods=["post"])
    def submit(self, request: Request, **kwargs: Any) -> Response:
        """Submit a draft or pending return now (a no-op for any other state).

        A draft needs a user who may submit it (the submit permission; with
        ``REQUIRE_SEPARATE_SUBMITTER``, not its creator): 403 otherwise.
        """
        try:
            row = services.submit(self.get_object().pk, by=request.user)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(self.get_serializer(row).data)

    @action(detail=True, methods=["post"])
    def refresh(self, request: Request, **kwargs: Any) -> Response:
        """Ask WeChat Pay for the current state of a processing (or uncertain) return."""
        row = services.refresh(self.get_object().pk)
        return Response(self.get_serializer(row).data)

    @action(detail=True, methods=["post"])
    def retry(self, request: Request, **kwargs: Any) -> Response:
        """Retry now: re-send, identically, a return waiting for its receiver to top up.

        409 when the return is not waiting (WeChat Pay holds it only while it is).
        """
        row = self.get_object()
        if not (row.state == ReturnState.PROCESSING and row.awaiting_topup):
            body = {"detail": NOT_WAITING, "code": "not_waiting", "state": row.state}
            return Response(body, status=status.HTTP_409_CONFLICT)
        row = clawbacks.retry_now(row)
        return Response(self.get_serializer(row).data)

    @action(detail=True, methods=["post"], url_path="claw-back-again")
    def claw_back_again(self, request: Request, **kwargs: Any) -> Response:
        """Replace a failed or rejected return by a new one (a new out_return_no).

        The new return follows the draft rules: sent at once when ``SUBMIT_ON_CREATE``
        and the user may submit, a draft otherwise. 400 naming the field when the
        return cannot be replaced (not failed, replaced already, nothing left).
        """
        try:
            row = clawbacks.claw_back_again(
                self.get_object(),
                created_by=request.user,
                submit=bool(wxpay_settings.SUBMIT_ON_CREATE),
            )
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        if row.state == ReturnState.PENDING:
            submit_after_commit(row.pk)
        row.refresh_from_db()
        return Response(self.get_serializer(row).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(responses=LIST_RESPONSES),
    retrieve=extend_schema(parameters=BY_PK, responses=DETAIL_RESPONSES),
    create=extend_schema(responses=CREATE_RESPONSES),
    submit=extend_schema(request=None, parameters=BY_PK, responses=ACTION_RESPONSES),
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
        if int(self.kwargs["pk"]) > MAX_PK:  # no such row, and no overflow in the DB
            raise Http404
        return super().get_object()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            row, created = services.create_or_get_return(
                {
                    **{name: data.get(name) or None for name in REQUEST_ID_FIELDS},
                    "amount": data["amount"],
                    "description": data["description"],
                },
                created_by=request.user,
                submit=bool(wxpay_settings.SUBMIT_ON_CREATE),
                mchid=data.get("mchid") or None,
            )
        except services.ReturnConflict as exc:
            body = {**exc.message_dict, "code": "conflict", "existing": exc.existing.pk}
            return Response(body, status=status.HTTP_409_CONFLICT)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        if created and row.state == ReturnState.PENDING and wxpay_settings.SUBMIT_IN_BACKGROUND:
            # Answer at once, pending: the client need not wait for WeChat Pay's answer
            # (up to the whole TIMEOUT); the row is serialized before the background runs.
            body = self.get_serializer(row).data
            transaction.on_commit(
                lambda: dispatch([row.pk], Action.SUBMIT, background=True), robust=True
            )
            return Response(body, status=code)
        if created and row.state == ReturnState.PENDING:
            submit_after_commit(row.pk)
        row.refresh_from_db()
        return Response(self.get_serializer(row).data, status=code)

    @action(detail=False, methods=["post"], url_path="bulk-submit")
    def bulk_submit(self, request: Request) -> Response:
        """Submit many pending returns; large batches are queued (202)."""
        body = BulkSubmitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        candidates = self.get_queryset().filter(
            pk__in=body.validated_data["ids"], state__in=[ReturnState.DRAFT, ReturnState.PENDING]
        )
        pks = []
        for pk in candidates.order_by("pk").values_list("pk", flat=True):
            try:
                services.approve(pk, by=request.user)
            except DjangoPermissionDenied:
                continue  # left a draft: this user may not send it
            pks.append(pk)
        result = dispatch(pks, Action.SUBMIT)
        if result.queued:
            return Response(
                {"queued": result.queued, "backend": result.backend},
                status=status.HTTP_202_ACCEPTED,
            )
        rows = [self.get_serializer(row).data for row, _ran in result.ran]
        return Response({"results": rows})


@extend_schema_view(
    retrieve=extend_schema(parameters=BY_NUMBER, responses=DETAIL_RESPONSES),
    submit=extend_schema(request=None, parameters=BY_NUMBER, responses=ACTION_RESPONSES),
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
        return ProfitSharingReturn.objects.filter(mchid=mchid)
