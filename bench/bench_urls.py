"""URLs of the benchmarks: the app's REST API under ``/api/wxpay/``."""

from django.urls import include, path

urlpatterns = [
    path("api/wxpay/", include("django_wxpay_profitsharing.api.urls")),
]
