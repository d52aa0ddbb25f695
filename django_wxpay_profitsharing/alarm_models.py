"""The model of a merchant whose credentials WeChat Pay refuses (``credential_alarm.py``).

Imported by the ``models`` package, so Django finds it in the app.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .fields import IdentifierField


class AlarmKind(models.TextChoices):
    """How a merchant's credentials fail."""

    #: WeChat Pay refused our signature (SIGN_ERROR, 401): the private key, its serial.
    REFUSED = "refused", _("WeChat Pay refuses the merchant's signature")
    #: WeChat Pay's answers do not verify: its public key (or certificates) as configured.
    UNVERIFIED = "unverified", _("WeChat Pay's answers do not verify")


class CredentialAlarm(models.Model):
    """A merchant whose calls WeChat Pay refuses (or whose answers do not verify), since."""

    mchid = IdentifierField(_("merchant id"), max_length=32, unique=True)
    kind = models.CharField(_("problem"), max_length=16, choices=AlarmKind.choices)
    code = models.CharField(_("error code"), max_length=64, blank=True)
    since = models.DateTimeField(_("since"), auto_now_add=True)
    last_seen = models.DateTimeField(_("last seen"), auto_now_add=True)

    class Meta:
        verbose_name = _("credential alarm")
        verbose_name_plural = _("credential alarms")
        ordering = ["mchid"]

    def __str__(self) -> str:
        return f"{self.mchid} {self.kind}"
