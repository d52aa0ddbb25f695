"""The shop's orders: a refund may proceed once the clawback came back."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Shop orders")

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the signal receivers)
