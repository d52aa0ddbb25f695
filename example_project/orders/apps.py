"""The shop's orders: refunded by the app's refund job, marked so by a signal receiver."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Shop orders")

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the signal receivers)
