"""URLs of the example shop: the admin, the returns API, its schema and docs.

``/api/docs/`` is Swagger UI from drf-spectacular-sidecar's static files: nothing from a
CDN. (drf-spectacular's Redoc page would still ask Google Fonts for its fonts.)
"""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/wxpay/", include("django_wxpay_profitsharing.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api-auth/", include("rest_framework.urls")),
]
