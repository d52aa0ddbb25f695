"""``ProfitSharingReturnViewSet``: list, retrieve, create, submit, refresh, bulk-submit.

No update or delete: a return is a money record, changed only by the service layer.
Create is idempotent on ``out_return_no``: the same fields again answer 200 with the
existing return, other fields 409.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from .. import services
from ..conf import wxpay_settings
from ..error_reports import SecretSafeErrorReportsViewMixin
from ..models import ProfitSharingReturn, ReturnState
from ..states import Action
from ..task_backends import dispatch, submit_after_commit
from .filters import ProfitSharingReturnFilter
from .schema import (
    BULK_RESPONSES,
    CREATE_RESPONSES,
    DETAIL_RESPONSES,
    LIST_RESPONSES,
    extend_schema,
    extend_schema_view,
)
from .serializers import REQUEST_FIELDS, ProfitSharingReturnSerializer


class ReturnCursorPagination(CursorPagination):
    """Keyset pagination: flat cost per page at any depth, no COUNT(*)."""

    ordering = ("-created", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        self.page_size = wxpay_settings.API_PAGE_SIZE
        return super().get_page_size(request)


class BulkSubmitSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        min_length=1,
        max_length=10_000,
    )


@extend_schema_view(
    list=extend_schema(responses=LIST_RESPONSES),
    retrieve=extend_schema(responses=DETAIL_RESPONSES),
    create=extend_schema(responses=CREATE_RESPONSES),
    submit=extend_schema(request=None, responses=DETAIL_RESPONSES),
    refresh=extend_schema(request=None, responses=DETAIL_RESPONSES),
    bulk_submit=extend_schema(request=BulkSubmitSerializer, responses=BULK_RESPONSES),
)
class ProfitSharingReturnViewSet(
    SecretSafeErrorReportsViewMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Profit-sharing returns (分账回退). ``{id}`` is the numeric id or the out_return_no."""

    serializer_class = ProfitSharingReturnSerializer
    pagination_class = ReturnCursorPagination
    filter_backends = [ProfitSharingReturnFilter]
    lookup_value_regex = "[0-9A-Za-z_*@|-]{1,64}"

    def get_permissions(self):
        return [permission() for permission in wxpay_settings.API_PERMISSION_CLASSES]

    def get_queryset(self):
        return ProfitSharingReturn.objects.all()

    def get_object(self):
        value = self.kwargs[self.lookup_url_kwarg or self.lookup_field]
        queryset = self.get_queryset()
        found = None
        if value.isdigit():
            found = queryset.filter(pk=int(value)).first() if int(value) < 2**63 else None
        if found is None:
            found = queryset.filter(mchid=wxpay_settings.MCHID, out_return_no=value).first()
        if found is None:
            raise Http404
        self.check_object_permissions(self.request, found)
        return found

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            row, created = services.create_or_get_return(
                {
                    **{name: data.get(name) or None for name in REQUEST_FIELDS},
                    "amount": data["amount"],
                    "description": data["description"],
                },
                created_by=request.user,
                submit=bool(wxpay_settings.SUBMIT_ON_CREATE),
            )
        except services.ReturnConflict as exc:
            body = {**exc.message_dict, "code": "conflict", "existing": exc.existing.pk}
            return Response(body, status=status.HTTP_409_CONFLICT)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        if created and row.state == ReturnState.PENDING:
            submit_after_commit(row.pk)
        row.refresh_from_db()
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(self.get_serializer(row).data, status=code)

    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """Submit a draft or pending return now (a no-op for any other state).

        A draft needs a user who may submit it (the submit permission; with
        ``REQUIRE_SEPARATE_SUBMITTER``, not its creator): 403 otherwise.
        """
        try:
            row = services.submit(self.get_object(), by=request.user)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(self.get_serializer(row).data)

    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Ask WeChat Pay for the current state of a processing (or uncertain) return."""
        row = services.refresh(self.get_object())
        return Response(self.get_serializer(row).data)

    @action(detail=False, methods=["post"], url_path="bulk-submit")
    def bulk_submit(self, request):
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
