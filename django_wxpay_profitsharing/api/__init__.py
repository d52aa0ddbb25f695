"""The REST API (Django REST framework): ``include("django_wxpay_profitsharing.api.urls")``.

Hosts with their own router can register the viewset directly::

    router.register("profitsharing-returns", ProfitSharingReturnViewSet,
                    basename="profitsharing-return")
"""

from .views import ProfitSharingReturnViewSet

__all__ = ["ProfitSharingReturnViewSet"]
