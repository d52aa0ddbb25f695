"""Refund jobs over REST: create, list, read, approve, look now, and the operator's actions.

``/refunds/`` lists and creates (idempotent on ``out_refund_no``: the same fields again
are a 200 with the same job, other fields a 409); ``/refunds/{pk}/`` (digits, the row
id) reads one, with ``submit/`` (approve a draft), ``refresh/`` (the job looks now) and
one route per operator action (``proceed/``, ``retry/``, ``to-merchant-bank/``,
``cancel/``, ``try-again/``), each open only where the job's table allows it (409
``not_open`` otherwise). No update or delete: a job changes only by its steps and its
operators. Every operation is the desk's (``desk/refunds.py``).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import desk
from ..models.clawbacks import ProfitSharingClawback
from ..refund_models import Refund, RefundJob
from ..refund_states import OperatorAction
from .base import StrictAPIMixin, pk_in_range
from .filters import RefundJobFilter
from .pagination import ReturnCursorPagination
from .refund_serializers import RefundJobSerializer
from .schema import (
    REFUND_ACTION_RESPONSES,
    REFUND_BANK_RESPONSES,
    REFUND_BY_PK,
    REFUND_CREATE_RESPONSES,
    REFUND_DETAIL_RESPONSES,
    REFUND_LIST_RESPONSES,
    REFUND_REFRESH_RESPONSES,
    REFUND_SUBMIT_RESPONSES,
    extend_schema,
    extend_schema_view,
)


def _jobs() -> QuerySet[RefundJob]:
    """Refund jobs with what an answer shows of them, in two queries whatever the page."""
    return RefundJob.objects.prefetch_related(
        Prefetch("refunds", Refund.objects.select_related("replaces").order_by("number")),
        Prefetch("clawbacks", ProfitSharingClawback.objects.order_by("pk")),
    )


def _operator_schema(responses: dict[Any, Any] = REFUND_ACTION_RESPONSES) -> Any:
    return extend_schema(request=None, parameters=REFUND_BY_PK, responses=responses)


@extend_schema_view(
    list=extend_schema(responses=REFUND_LIST_RESPONSES),
    retrieve=extend_schema(parameters=REFUND_BY_PK, responses=REFUND_DETAIL_RESPONSES),
    create=extend_schema(responses=REFUND_CREATE_RESPONSES),
    submit=_operator_schema(REFUND_SUBMIT_RESPONSES),
    refund_refresh=_operator_schema(REFUND_REFRESH_RESPONSES),
    refund_proceed=_operator_schema(),
    refund_retry=_operator_schema(),
    refund_to_merchant_bank=_operator_schema(REFUND_BANK_RESPONSES),
    refund_cancel=_operator_schema(),
    refund_try_again=_operator_schema(),
)
class RefundJobViewSet(
    StrictAPIMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[RefundJob],
):
    """Refund jobs: one shop refund of a payment, from its plan to the customer's money.

    The actions keep names of their own (``refund_*``), so that the permission table
    (``permissions.ACTION_PERMISSIONS``) has one rule per name.
    """

    serializer_class = RefundJobSerializer
    pagination_class = ReturnCursorPagination
    filter_backends = [RefundJobFilter]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[RefundJob]:
        return desk.visible(self.request.user, _jobs())

    def get_object(self) -> RefundJob:
        """The one job the URL names; list filters (query parameters) do not apply."""
        job = get_object_or_404(self.get_queryset(), pk=pk_in_range(self.kwargs["pk"]))
        self.check_object_permissions(self.request, job)
        return job

    def _render(self, pk: int, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(_jobs().get(pk=pk)).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Ask WeChat Pay for the payment, plan the refund, make the job (201), or find the
        identical one (200); 409 for other fields.

        The job is a draft for a user with only the add permission; with
        ``SUBMIT_ON_CREATE``, the submit permission (and the four-eyes rule) it is
        approved and moves on at once (or in the background: ``SUBMIT_IN_BACKGROUND``).
        """
        serializer = RefundJobSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        made = desk.create_refund(serializer.desk_fields(), by=request.user, door=desk.Door.API)
        code = status.HTTP_201_CREATED if made.created else status.HTTP_200_OK
        return self._render(made.job.pk, code)

    @action(detail=True, methods=["post"])
    def submit(self, request: Request, **kwargs: Any) -> Response:
        """Approve a draft: the job moves on (another state: answered as it stands).

        403 for a user who may not approve it (the submit permission; with
        ``REQUIRE_SEPARATE_SUBMITTER``, not its creator).
        """
        job = self.get_object()
        selection = self.get_queryset().filter(pk=job.pk)
        desk.submit_refunds(selection, by=request.user, door=desk.Door.API, one=True)
        return self._render(job.pk)

    @action(detail=True, methods=["post"], url_path="refresh", url_name="refresh")
    def refund_refresh(self, request: Request, **kwargs: Any) -> Response:
        """The job looks now: its next step is taken even if not due (WeChat Pay asked)."""
        job = self.get_object()
        desk.refresh_refund(job, by=request.user, door=desk.Door.API)
        return self._render(job.pk)

    def _act(self, request: Request, operator_action: OperatorAction) -> Response:
        job = self.get_object()
        desk.act_on_refund(job, operator_action, by=request.user, door=desk.Door.API)
        return self._render(job.pk)

    @action(detail=True, methods=["post"], url_path="proceed", url_name="proceed")
    def refund_proceed(self, request: Request, **kwargs: Any) -> Response:
        """Go on although the clawback came back short (or the plan grew): the shop funds
        the rest from its own balance."""
        return self._act(request, OperatorAction.PROCEED)

    @action(detail=True, methods=["post"], url_path="retry", url_name="retry")
    def refund_retry(self, request: Request, **kwargs: Any) -> Response:
        """After a top-up of a short balance (NOT_ENOUGH): the same refund, the same number."""
        return self._act(request, OperatorAction.RETRY)

    @action(detail=True, methods=["post"], url_path="to-merchant-bank", url_name="to-merchant-bank")
    def refund_to_merchant_bank(self, request: Request, **kwargs: Any) -> Response:
        """An ABNORMAL refund sent to the merchant's bank account (发起异常退款)."""
        return self._act(request, OperatorAction.TO_MERCHANT_BANK)

    @action(detail=True, methods=["post"], url_path="cancel", url_name="cancel")
    def refund_cancel(self, request: Request, **kwargs: Any) -> Response:
        """Stop the job, while no money has moved (no unfreeze, clawback or refund sent)."""
        return self._act(request, OperatorAction.CANCEL)

    @action(detail=True, methods=["post"], url_path="try-again", url_name="try-again")
    def refund_try_again(self, request: Request, **kwargs: Any) -> Response:
        """After WeChat Pay closed the refund: a new attempt under a new, linked number."""
        return self._act(request, OperatorAction.TRY_AGAIN)
