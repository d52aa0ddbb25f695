"""Clawbacks and sharing orders over REST, beside the returns.

``/clawbacks/`` lists and creates (idempotent on ``out_clawback_no``: the same
fields again are a 200 with the same clawback, other fields a 409);
``/clawbacks/{pk}/`` reads one, ``/clawbacks/{pk}/submit/`` submits its drafts.
``/orders/?out_order_no=`` shows a mirrored sharing order with its receivers'
ledger; ``/orders/sync/`` mirrors it from WeChat Pay first. No update or delete:
clawbacks change only through their returns.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from .. import desk
from ..models.clawbacks import ProfitSharingClawback
from ..models.sharing_orders import ProfitSharingOrder
from .base import StrictAPIMixin, pk_in_range
from .clawback_serializers import ClawbackSerializer, SharingOrderSerializer, SyncOrderSerializer
from .filters import ClawbackFilter, SharingOrderFilter
from .pagination import ReturnCursorPagination
from .schema import (
    CLAWBACK_BY_PK,
    CLAWBACK_CANCEL_RESPONSES,
    CLAWBACK_CREATE_RESPONSES,
    CLAWBACK_DETAIL_RESPONSES,
    CLAWBACK_LIST_RESPONSES,
    CLAWBACK_SUBMIT_RESPONSES,
    ORDER_LIST_RESPONSES,
    ORDER_SYNC_RESPONSES,
    extend_schema,
    extend_schema_view,
)


@extend_schema_view(
    list=extend_schema(responses=CLAWBACK_LIST_RESPONSES),
    retrieve=extend_schema(parameters=CLAWBACK_BY_PK, responses=CLAWBACK_DETAIL_RESPONSES),
    create=extend_schema(responses=CLAWBACK_CREATE_RESPONSES),
    submit=extend_schema(
        request=None, parameters=CLAWBACK_BY_PK, responses=CLAWBACK_SUBMIT_RESPONSES
    ),
    cancel=extend_schema(
        request=None, parameters=CLAWBACK_BY_PK, responses=CLAWBACK_CANCEL_RESPONSES
    ),
)
class ProfitSharingClawbackViewSet(
    StrictAPIMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet[ProfitSharingClawback],
):
    """Order-level clawbacks: one return per returnable merchant receiver."""

    serializer_class = ClawbackSerializer
    pagination_class = ReturnCursorPagination
    filter_backends = [ClawbackFilter]
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> QuerySet[ProfitSharingClawback]:
        clawbacks = (
            ProfitSharingClawback.objects.all()  # by row id, like the returns' {pk} route
            .select_related("order")
            .prefetch_related("returns")
        )
        return desk.visible(self.request.user, clawbacks)

    def get_object(self) -> ProfitSharingClawback:
        pk_in_range(self.kwargs["pk"])
        return super().get_object()

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Sync the sharing order, allocate, create the returns (sent as the policy says).

        The returns are drafts for a user with only the add permission; with
        ``SUBMIT_ON_CREATE``, the clawback submit permission and the return submit
        permission (and the four-eyes rule) they are sent.
        """
        serializer = ClawbackSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        made = desk.claw_back(serializer.service_fields(), by=request.user, door=desk.Door.API)
        code = status.HTTP_201_CREATED if made.created else status.HTTP_200_OK
        return Response(self.get_serializer(self._fresh(made.clawback.pk)).data, status=code)

    @action(detail=True, methods=["post"])
    def submit(self, request: Request, **kwargs: Any) -> Response:
        """Submit the clawback's drafts (and send its pending returns) now.

        403 when the user may not submit them (the four-eyes rule included).
        """
        clawback = self.get_object()
        selection = self.get_queryset().filter(pk=clawback.pk)
        desk.submit_clawbacks(selection, by=request.user, door=desk.Door.API, one=True)
        return Response(self.get_serializer(self._fresh(clawback.pk)).data)

    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, **kwargs: Any) -> Response:
        """Cancel the clawback as a whole while none of its returns was approved or sent.

        Its drafts are deleted. 400 naming ``state`` otherwise; 403 without the cancel
        permission.
        """
        clawback = self.get_object()
        selection = self.get_queryset().filter(pk=clawback.pk)
        desk.cancel_clawbacks(selection, by=request.user, door=desk.Door.API, one=True)
        return Response(self.get_serializer(self._fresh(clawback.pk)).data)

    def _fresh(self, pk: int) -> ProfitSharingClawback:
        return self.get_queryset().get(pk=pk)


@extend_schema_view(
    list=extend_schema(responses=ORDER_LIST_RESPONSES),
    sync=extend_schema(request=SyncOrderSerializer, responses=ORDER_SYNC_RESPONSES),
)
class SharingOrderViewSet(
    StrictAPIMixin, mixins.ListModelMixin, viewsets.GenericViewSet[ProfitSharingOrder]
):
    """Mirrored sharing orders (查询分账结果) with what each receiver may still return.

    The list needs ``out_order_no`` (each order's ledger is computed on reading), so
    it is never more than one order per sub-merchant: no pagination.
    """

    serializer_class = SharingOrderSerializer
    filter_backends = [SharingOrderFilter]
    pagination_class = None

    def get_queryset(self) -> QuerySet[ProfitSharingOrder]:
        # Every merchant's the user may see: two merchants' orders may share an
        # out_order_no (each is listed; ``?mchid=`` picks one).
        orders = ProfitSharingOrder.objects.prefetch_related("receivers")
        return desk.visible(self.request.user, orders)

    @action(detail=False, methods=["post"])
    def sync(self, request: Request) -> Response:
        """Mirror the sharing order from WeChat Pay now; answers it with its ledger."""
        body = SyncOrderSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        order = desk.sync_order(
            out_order_no=data["out_order_no"],
            transaction_id=data["transaction_id"],
            sub_mchid=data.get("sub_mchid") or None,
            mchid=data.get("mchid") or None,
            by=request.user,
        )
        return Response(self.get_serializer(self.get_queryset().get(pk=order.pk)).data)
