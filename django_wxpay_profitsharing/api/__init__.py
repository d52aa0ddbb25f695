"""The REST API (Django REST framework): ``include("django_wxpay_profitsharing.api.urls")``.

Hosts with their own router register both viewsets (in either order: ``{pk}``
matches digits only, so it never takes ``by-out-return-no``)::

    router.register("profitsharing-returns/by-out-return-no",
                    ProfitSharingReturnByNumberViewSet,
                    basename="profitsharing-return-by-out-return-no")
    router.register("profitsharing-returns", ProfitSharingReturnViewSet,
                    basename="profitsharing-return")
    router.register("clawbacks", ProfitSharingClawbackViewSet,
                    basename="profitsharing-clawback")
    router.register("orders", SharingOrderViewSet, basename="profitsharing-order")
    router.register("refunds", RefundJobViewSet, basename="profitsharing-refund")
"""

from .clawback_views import ProfitSharingClawbackViewSet, SharingOrderViewSet
from .refund_views import RefundJobViewSet
from .views import ProfitSharingReturnByNumberViewSet, ProfitSharingReturnViewSet

__all__ = [
    "ProfitSharingClawbackViewSet",
    "ProfitSharingReturnByNumberViewSet",
    "ProfitSharingReturnViewSet",
    "RefundJobViewSet",
    "SharingOrderViewSet",
]
