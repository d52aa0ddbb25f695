"""Helpers of the refund proof tests: the site over REST, both clocks, the simulator's books.

Why a clock for the site as well as the simulator's: the app keeps the 60-second spacing
and its leases with its own clock (``django.utils.timezone.now``), WeChat Pay (the
simulator) with its own. A test that moves both by the same seconds computes what a
wait would show, and never sleeps.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from django_wxpay_profitsharing.models import ProfitSharingEvent, RefundJob

from .conftest import SUB_MCHID, unique_no, wxpay_config

REFUNDS = "/api/wxpay/refunds/"
EVERYTHING = ("view_refundjob", "add_refundjob", "submit_refundjob", "operate_refundjob")


class Clocks:
    """The site's clock and the simulator's, moved together by :meth:`advance`."""

    def __init__(self, sim: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sim = sim
        self.offset = timedelta(0)
        real_now = timezone.now

        def shifted() -> datetime:
            return real_now() + self.offset

        monkeypatch.setattr(timezone, "now", shifted)

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
        self.sim.advance_clock(seconds)

    def until(self, moment: datetime, *, plus: float = 0.001) -> None:
        """Both clocks just past ``moment`` of the site's clock (a lease's end, say)."""
        ahead = (moment - timezone.now()).total_seconds() + plus
        if ahead > 0:
            self.advance(ahead)


def site_settings(sim: Any, **extra: Any):
    """``WXPAY_PROFITSHARING`` pointing at ``sim`` (no backoffs) with ``extra``."""
    return override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, **extra))


def operator(username: str = "operator", perms: tuple[str, ...] = EVERYTHING) -> APIClient:
    """A REST client of a user with the refund permissions ``perms``."""
    user = User.objects.create_user(username, password="pw")
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=user.pk))
    return client


def body(payment: dict, amount: int, number: str | None = None, **extra: Any) -> dict:
    return {"out_refund_no": number or unique_no("RF"), "transaction_id": payment["transaction_id"],
            "sub_mchid": SUB_MCHID, "amount": amount, "reason": "退货", **extra}  # fmt: skip


def post(client: APIClient, url: str, data: dict | None = None):
    if data is None:  # an action: no body, declared JSON all the same
        return client.post(url, content_type="application/json")
    return client.post(url, data, format="json")


def refund_posts(sim: Any) -> list[dict]:
    """The simulator's 申请退款 calls (its call log does not name their numbers)."""
    return [c for c in sim.calls() if c["endpoint"] == "refund_create"]


def signals(job: RefundJob | int) -> list[str]:
    pk = getattr(job, "pk", job)
    events = ProfitSharingEvent.objects.filter(refund_job_id=pk).order_by("pk")
    return list(events.values_list("signal", flat=True))


def balance(sim: Any, account: str) -> int | None:
    """An account's available balance at the simulator (None: unlimited)."""
    return sim.set_merchant(account)["balance"]


def refunded(sim: Any, transaction_id: str) -> dict[str, int]:
    """The simulator's refunds of a payment: out_refund_no -> fen, the SUCCESS ones only."""
    return {
        r["out_refund_no"]: r["amount"]["refund"]
        for r in sim.refunds()
        if r["transaction_id"] == transaction_id and r["status"] == "SUCCESS"
    }
