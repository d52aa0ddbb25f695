"""The example shop refunds an order with the app's refund job (issue 22).

The example is what shops copy. "Refund this order" plans the order's refund job (a
draft under the order's refund number, its plan shown in yuan), the operator confirms
it, the job moves the money, and a ``refund_succeeded`` receiver marks the order
refunded: only for the order's own job (its payment, amount and number), once per
event, reading the job's row rather than trusting the signal. ``example_shop_scenarios.py``
plays each step through the shop's own page and receivers against the simulator process.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip(
    "drf_spectacular_sidecar", reason="the example shop serves /api/docs/ with the sidecar"
)
pytestmark = [
    pytest.mark.slow,
    # the example shop keeps its own SQLite database, whatever the pass
    pytest.mark.first_pass_only,
]


@pytest.fixture(scope="module")
def story(simproc, tmp_path_factory) -> dict:
    simproc.reset()
    simproc.configure(processing_seconds=0, latency_ms=0, qps_limit=0)
    work = tmp_path_factory.mktemp("shop")
    env = {
        **os.environ,
        "WXPAY_SIMULATOR_DIR": str(simproc.state_dir),
        "SHOP_SQLITE_PATH": str(work / "shop.sqlite3"),
        "SHOP_LANGUAGE": "en",
    }
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "example_shop_scenarios.py")],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_who_may_not_make_refunds_makes_none(story):
    assert story["stranger_plan_messages"] == ["You may not make refunds."]
    assert story["jobs_after_stranger"] == []


def test_the_plan_is_shown_in_yuan_before_anything_is_sent(story):
    assert story["plan"] == {
        "first_step": "needs_unfreeze", "refund": 60000, "unsplit": 54000, "unfreeze": 54000,
        "clawbacks": [["PSHOP0100", 5000]], "clawback": 5000, "shop_funds": 1000,
        "reasons": ["not_returnable"],
    }  # fmt: skip
    plan = text_of(story["plan_page"], "plan")
    assert "is unfrozen first; then the merchant receivers' shares are clawed back" in plan
    for row in (
        "Refund ¥600.00",
        "Still frozen when planned ¥540.00",
        "To unfreeze ¥540.00",
        "To claw back ¥50.00 (PSHOP0100 ¥50.00)",
        "From the shop's own balance ¥10.00: shared to personal receivers",
    ):
        assert row in plan, plan  # fmt: skip
    assert "Confirm: refund ¥600.00" in story["plan_page"]
    assert 'id="confirm-refund"' in story["plan_page"]
    assert story["sent_before_confirm"] == {"refunds": [], "returns": []}
    assert story["SHOP0100_planned"]["refund_no"] == "RFSHOP0100"
    assert story["SHOP0100_planned"]["refunded"] is False


def test_the_shop_shows_money_in_yuan_and_receivers_in_words(story):
    receivers = text_of(story["plan_page"], "receivers")
    assert "merchant 86693852 ¥30.00 ¥0.00" in receivers, receivers
    assert "person (openid)" in receivers and "PERSONAL_OPENID" not in receivers
    chinese = text_of(story["plan_page_zh"], "receivers")
    assert "商户 86693852 ¥30.00" in chinese and "个人（openid）" in chinese, chinese
    assert "已分账" in story["plan_page_zh"] and "（分）" not in story["plan_page_zh"]
    assert "¥600.00" in story["orders_page"] and "60000" not in story["orders_page"]
    assert "¥600.00" in story["orders_page_zh"] and "（分）" not in story["orders_page_zh"]


def test_the_refund_at_wechat_pay_is_shown_in_words(story):
    assert "RFSHOP0100 Succeeded" in text_of(story["refunded_page"], "refund-attempts")
    assert "RFSHOP0100 退款成功" in text_of(story["refunded_page_zh"], "refund-attempts")


def test_a_clerk_who_may_not_approve_leaves_the_job_a_draft(story):
    assert any("may not approve" in m for m in story["clerk_confirm_messages"])
    assert [job["state"] for job in story["jobs_after_clerk"]] == ["draft"]


def test_a_succeeded_signal_of_a_job_that_did_not_succeed_marks_nothing(story):
    assert story["SHOP0100_after_early_signal"]["refunded"] is False


def test_refunded_end_to_end(story):
    assert story["SHOP0100_refunded"]["refunded"] is True
    assert story["SHOP0100_refunded"]["event"]
    assert "¥600.00" in story["SHOP0100_refunded"]["note"]
    [refund] = [r for r in story["simulator_refunds"] if r["out_refund_no"] == "RFSHOP0100"]
    assert refund["status"] == "SUCCESS" and refund["amount"]["refund"] == 60000
    clawed = sorted(
        (r["return_mchid"], r["amount"], r["result"])
        for r in story["simulator_returns"]
        if r["out_order_no"] == "PSHOP0100"
    )
    assert clawed == [("86693852", 3000, "SUCCESS"), ("86693853", 2000, "SUCCESS")]
    assert story["simulator_payment"]["unsplit_amount"] == 0  # unfrozen, then refunded
    page = story["refunded_page"]
    assert 'data-status="SUCCESS"' in page and 'id="refunded"' in page
    assert "Unfrozen by the job ¥540.00" in text_of(page, "plan")


def test_a_second_press_is_the_same_job(story):
    assert any("under way" in m for m in story["admin_messages"])
    [job] = story["jobs_after_admin"]
    assert job["pk"] == story["jobs_after_clerk"][0]["pk"] and job["state"] == "succeeded"
    assert story["simulator_payment"]["refunds"] == ["RFSHOP0100"]


def test_the_same_event_again_or_another_changes_nothing(story):
    assert story["SHOP0100_after_redelivery"] == story["SHOP0100_refunded"]


def test_another_orders_job_never_marks_this_order(story):
    # Jobs under SHOP0003's and SHOP0002's refund numbers, of another payment and of
    # another amount, were refunded: neither order is.
    assert story["foreign_payment_job"] == story["foreign_amount_job"] == "succeeded"
    assert story["SHOP0003_after_foreign"]["refunded"] is False
    assert story["SHOP0002_after_foreign"]["refunded"] is False
    assert story["SHOP0003_after_foreign"]["note"] == story["SHOP0002_after_foreign"]["note"] == ""
    # And the page refuses to plan under a number that names another refund.
    [payment] = story["SHOP0003_plan_messages"]
    assert "RFSHOP0003 already exists with a different transaction_id" in payment
    [amount] = story["SHOP0002_plan_messages"]
    assert "RFSHOP0002 already exists with a different amount" in amount


def text_of(page: str, element_id: str) -> str:
    """The text of the table with ``element_id``."""
    start = page.index(f'id="{element_id}"')
    end = page.index("</table>", start)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page[start:end])))


def test_the_readme_shows_the_example_shops_own_receiver():
    """The README's refund receiver is the example's, as it runs in these tests."""
    readme = (ROOT / "README.md").read_text("utf-8")
    block = re.search(
        r"<!-- readme-snippet: refund-receiver -->\n```python\n(.*?)```", readme, re.S
    )
    assert block is not None
    receivers = (ROOT / "example_project" / "orders" / "receivers.py").read_text("utf-8")
    assert block.group(1) in receivers
