"""``SUBMIT_IN_BACKGROUND``: an API create answers at once and WeChat Pay is called after.

Why: with the submission inside the request, a slow WeChat Pay (or an injected
timeout) holds the client's request for the whole call.
"""

from __future__ import annotations

import time

import pytest
from django.test import override_settings

from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn

from .conftest import wxpay_config
from .test_api_routes import LIST, api_user, body

# The real simulator: its latency costs real time, which is what is measured here.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_simulator]
LATENCY_S = 1.0


@pytest.fixture
def slow_wechat(sim):
    sim.configure(latency_ms=int(LATENCY_S * 1000))
    yield sim
    sim.configure(latency_ms=0)
    reset_client()


def timed_create(sim, order, number, **settings):
    client = api_user(f"svc-{number}")
    config = wxpay_config(sim, TASK_BACKEND="thread", **settings)
    with override_settings(WXPAY_PROFITSHARING=config):
        started = time.monotonic()
        response = client.post(LIST, body(order, out_return_no=number), format="json")
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 20
        while ProfitSharingReturn.objects.filter(out_return_no=number, state="pending").exists():
            assert time.monotonic() < deadline, "the background submission never ran"
            time.sleep(0.05)
    return response, elapsed


def test_create_answers_pending_at_once_and_submits_in_the_background(slow_wechat, order):
    response, elapsed = timed_create(slow_wechat, order, "RBG1", SUBMIT_IN_BACKGROUND=True)
    assert response.status_code == 201 and response.data["state"] == "pending"
    assert elapsed < LATENCY_S, f"the request waited {elapsed:.2f} s for WeChat Pay"
    row = ProfitSharingReturn.objects.get(out_return_no="RBG1")
    assert row.state == "succeeded" and row.attempts >= 1
    posted = [c for c in slow_wechat.calls() if c.get("out_return_no") == "RBG1"]
    assert [c["method"] for c in posted] == ["POST"]


def test_without_the_setting_the_create_waits_for_the_answer(slow_wechat, order):
    response, elapsed = timed_create(slow_wechat, order, "RBG2", SUBMIT_IN_BACKGROUND=False)
    assert response.status_code == 201 and response.data["state"] == "succeeded"
    assert elapsed >= LATENCY_S
