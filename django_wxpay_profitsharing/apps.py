"""The AppConfig: a short label for readable permission names, and checks wired in ready()."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DjangoWxpayProfitsharingConfig(AppConfig):
    name = "django_wxpay_profitsharing"
    label = "wxpay_profitsharing"
    verbose_name = _("WeChat Pay profit-sharing returns")
    # Pinned so a host's DEFAULT_AUTO_FIELD cannot create phantom migrations.
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
