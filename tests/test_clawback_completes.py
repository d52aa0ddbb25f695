"""A clawback's state follows its returns to the end, through the real attempt path.

Regression: ``transitions.apply`` computed the clawback's state before saving the
return that had just ended, so the last return to end never completed its clawback
(and ``clawback_completed`` never came).
"""

from __future__ import annotations

import pytest

from django_wxpay_profitsharing import clawbacks, services, signals
from django_wxpay_profitsharing.models import ProfitSharingClawback

from .conftest import SUB_MCHID

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def completed_log():
    seen: list[tuple[str, str]] = []

    def receive(sender, instance, previous_state, **kwargs):
        seen.append((instance.out_clawback_no, previous_state))

    signals.clawback_completed.connect(receive, weak=False)
    yield seen
    signals.clawback_completed.disconnect(receive)


def test_the_last_return_to_succeed_completes_the_clawback_once(configured, completed_log):
    shared = configured.seed_order(
        "PCOMPLETE1",
        sub_mchid=SUB_MCHID,
        receivers=[
            {"type": "MERCHANT_ID", "account": "86693852", "amount": 600},
            {"type": "MERCHANT_ID", "account": "86693853", "amount": 400},
            {"type": "PERSONAL_OPENID", "account": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "amount": 50},
        ],
    )
    clawback, created = clawbacks.create_or_get_clawback(
        {
            "out_clawback_no": "CB1",
            "out_order_no": "PCOMPLETE1",
            "transaction_id": shared["transaction_id"],
            "sub_mchid": SUB_MCHID,
            "description": "refund",
        },
        submit=True,
    )
    assert created and clawback.returns.count() == 2  # the personal receiver left out
    first, second = clawback.returns.order_by("pk")
    assert services.submit(first).state == "succeeded"
    assert ProfitSharingClawback.objects.get(pk=clawback.pk).state == "open"
    assert services.submit(second).state == "succeeded"
    assert ProfitSharingClawback.objects.get(pk=clawback.pk).state == "completed"
    assert completed_log == [("CB1", "open")]
