"""The example shop lets a refund go on only when its own money is back (issue 20).

The example is what shops copy. Its receiver keyed on ``refund_no == out_clawback_no``
alone: a 1-fen clawback of another order under that number unlocked the refund, the
page wrote ``refund_no`` before the clawback was its own, and any single return that
succeeded on the sharing order marked the order. ``example_shop_scenarios.py`` plays
each through the shop's own page and receivers against the simulator process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIRST_PASS

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip(
    "drf_spectacular_sidecar", reason="the example shop serves /api/docs/ with the sidecar"
)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not FIRST_PASS,
        reason="the example shop keeps its own SQLite database: run in the first SQLite pass",
    ),
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


def test_a_clawback_of_another_order_under_the_refund_number_unlocks_nothing(story):
    assert story["foreign_state"] == "completed"
    assert any("out_order_no" in m or "another" in m for m in story["foreign_refund_messages"])
    assert story["SHOP0003_after_foreign"] == {
        "refundable": False,
        "refund_no": "",  # the page wrote nothing: the clawback was not its own
        "clawback": None,
        "note": "",
    }


def test_a_single_return_unlocks_the_refund_only_when_everything_shared_is_back(story):
    assert story["SHOP0002_after_one_fen"]["refundable"] is False
    assert "1 / 2000" in story["SHOP0002_after_one_fen"]["note"]
    assert story["SHOP0002_after_all"]["refundable"] is True


def test_a_completed_signal_without_the_money_back_unlocks_nothing(story):
    assert story["clerk_refund_messages"], "the clerk may not submit: the page says so"
    assert story["SHOP0100_after_early_signal"]["refundable"] is False
    assert story["SHOP0100_after_early_signal"]["clawback"] == "RFSHOP0100"
    assert "0 / 5000" in story["SHOP0100_after_early_signal"]["note"]


def test_the_orders_own_clawback_complete_unlocks_the_refund(story):
    after = story["SHOP0100_after_clawback"]
    assert after["refundable"] is True and after["clawback"] == "RFSHOP0100", after
    assert "5000" in after["note"]
