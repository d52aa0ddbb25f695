"""URLs of the benchmarks: the app's REST API under ``/api/wxpay/``, the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/wxpay/", include("django_wxpay_profitsharing.api.urls")),
]
