"""URLs of the example shop: the admin, the returns API, its schema and docs.

``/api/docs/`` is Swagger UI from drf-spectacular-sidecar's static files: nothing from a
CDN. (drf-spectacular's Redoc page would still ask Google Fonts for its fonts.)
``/demo/instance/`` answers the token ``make demo`` gave this run (``SHOP_DEMO_INSTANCE``),
so that the demo prints its URL only once its own shop answers, not another server.
"""

import os

from django.contrib import admin
from django.http import HttpResponse
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

if os.environ.get("SHOP_DEMO_INSTANCE"):
    token = os.environ["SHOP_DEMO_INSTANCE"]
    urlpatterns.append(
        path("demo/instance/", lambda request: HttpResponse(token, content_type="text/plain"))
    )
