"""``path("api/wxpay/", include("django_wxpay_profitsharing.api.urls"))``."""

from rest_framework.routers import DefaultRouter

from .views import ProfitSharingReturnViewSet

app_name = "wxpay_profitsharing"

router = DefaultRouter()
router.register("returns", ProfitSharingReturnViewSet, basename="profitsharing-return")
urlpatterns = router.urls
