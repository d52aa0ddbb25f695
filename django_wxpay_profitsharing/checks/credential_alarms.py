"""The deploy check of credentials WeChat Pay refuses right now, read from the alarms."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import DatabaseError

from ..alarm_models import AlarmKind, CredentialAlarm


@checks.register(checks.Tags.security, "wxpay_profitsharing", deploy=True)
def check_credential_alarms(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``check --deploy``: each merchant whose credentials WeChat Pay refuses right now.

    Read from the alarms the calls raised (``credential_alarm.py``); no call is made here
    (``wxpay_check_credentials`` asks WeChat Pay outright).
    """
    try:
        alarms = list(CredentialAlarm.objects.all())
    except DatabaseError:
        return []  # no database to read yet: nothing known
    return [
        checks.Error(
            f"WeChat Pay {'refuses' if alarm.kind == AlarmKind.REFUSED else 'cannot verify'} "
            f"the credentials of merchant {alarm.mchid} since {alarm.since:%Y-%m-%d %H:%M} "
            f"({alarm.code or '-'}): its returns and refunds wait.",
            hint="Fix its keys, then run manage.py wxpay_check_credentials.",
            id="wxpay_profitsharing.E050",
        )
        for alarm in alarms
    ]
