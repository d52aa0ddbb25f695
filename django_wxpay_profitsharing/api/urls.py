"""``path("api/wxpay/", include("django_wxpay_profitsharing.api.urls"))``.

``returns/{pk}/`` takes digits only, so ``returns/by-out-return-no/...`` never
matches it; the two lookups never share a route. ``clawbacks/{pk}/`` and
``refunds/{pk}/`` too.
"""

from django.urls import path
from rest_framework.routers import DefaultRouter

from .clawback_views import ProfitSharingClawbackViewSet, SharingOrderViewSet
from .refund_views import RefundJobViewSet
from .views import ProfitSharingReturnByNumberViewSet, ProfitSharingReturnViewSet

app_name = "wxpay_profitsharing"

router = DefaultRouter()
router.register(
    "returns/by-out-return-no",
    ProfitSharingReturnByNumberViewSet,
    basename="profitsharing-return-by-out-return-no",
)
router.register("returns", ProfitSharingReturnViewSet, basename="profitsharing-return")
router.register("clawbacks", ProfitSharingClawbackViewSet, basename="profitsharing-clawback")
router.register("orders", SharingOrderViewSet, basename="profitsharing-order")
router.register("refunds", RefundJobViewSet, basename="profitsharing-refund")
urlpatterns = router.urls

# WeChat Pay's notifications (NOTIFY_URL): a plain Django view beside the router's.
from .notification_views import notifications  # noqa: E402

urlpatterns += [path("notifications/", notifications, name="notifications")]
