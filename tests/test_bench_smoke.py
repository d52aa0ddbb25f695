"""The benchmarks still run: each script, at a tiny size, ends with its result line.

Why: benchmarks are not part of the suite's verdict (they print ratios, never
pass/fail on times), so a refactor can break one without any test noticing; one did
(``bench_bulk`` called a function that had moved). This runs each the way
``make bench`` does, only smaller, and checks that it finished and reported figures,
not what the figures are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "BENCH_RESULT "

pytestmark = [
    pytest.mark.slow,
    # the benchmarks pick their own database, whatever the pass
    pytest.mark.first_pass_only,
]


def run_bench(script: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # each benchmark configures Django itself
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    assert lines, out.stdout[-2000:]
    return json.loads(lines[-1][len(RESULT_PREFIX) :])


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("bench_bulk.py", ["--returns", "40", "--sequential", "8", "--latency-ms", "20"]),
        ("bench_workers.py", ["--returns", "40", "--latency-ms", "10"]),
        ("bench_rest.py", ["--rows", "300"]),
        ("bench_merchants.py", ["--returns", "20", "--rate", "10", "--latency-ms", "10"]),
        ("bench_ratelimit.py", ["--returns", "30", "--rate", "20", "--latency-ms", "10"]),
        ("bench_reconcile.py", ["--lines", "5000"]),
        (
            "bench_quota.py",
            [
                "--returns",
                "10",
                "--workers",
                "2",  # the shared quota between processes; one process takes the same path
                "--kinds",
                "poller,celery",
                "--merchants",
                "1",
                "--latency-ms",
                "10",
            ],
        ),
        ("bench_tables.py", ["--small", "100", "--large", "400", "--repeats", "1"]),
        ("bench_outbox.py", ["--events", "300", "--returns", "20"]),
        ("bench_limiter.py", ["--acquires", "200", "--returns", "10"]),
        (
            "bench_refunds.py",
            ["--payments", "3", "--refunds", "2", "--spacing", "0.2", "--processing", "0.05"],
        ),
    ],
)
def test_benchmark_runs_and_reports(script, args):
    result = run_bench(script, *args)
    assert result["name"] and result["summary"]
    if not result["summary"].startswith("skipped"):
        assert result["ratio"] is not None and result["figures"], result
    states = result["figures"].get("states")
    if states is not None:  # the returns were really sent: a draft is never sent
        assert set(states) == {"succeeded"}, result


def test_client_benchmark_measures_both_transports_with_or_without_wechatpayv3():
    try:
        import wechatpayv3  # noqa: F401
    except ImportError:
        result = run_bench("bench_client.py", "--pairs", "5")
        assert result["summary"].startswith("wechatpayv3 not installed") and result["met"] is None
    else:  # pragma: no cover - only in bench/.venv-bench
        result = run_bench("bench_client.py", "--pairs", "10")
        assert result["figures"]["cpu_ratio"] > 0
    for which in ("urllib3", "requests", "bare"):
        assert result["figures"][f"{which}_cpu_ms_per_pair"] > 0


def test_the_floor_of_the_client_benchmark_speaks_the_protocol(tmp_path, monkeypatch):
    """``bench/bare_client.py`` (the CPU floor) makes real signed, verified calls.

    Beyond timing it, the benchmark never checks the floor loop's answers, so they
    are checked here: a create and a query over TLS, and a forged answer refused.
    """
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    from bare_client import BareClient
    from common import seed_orders

    from wxpay_simulator.testing import SimulatorProcess

    with SimulatorProcess(tmp_path, mode="both", tls=True) as sim:
        (order,) = seed_orders(sim, 1)
        client = BareClient(sim.base_url, sim.credentials, sim.ca_bundle)
        made, got = client.create_and_query(order, "RBARE1")
        assert made["out_return_no"] == got["out_return_no"] == "RBARE1"
        assert made["amount"] == got["amount"] == 1

        other = BareClient(sim.base_url, sim.credentials, sim.ca_bundle)
        other.public_key = other.key.public_key()  # not WeChat Pay's key: must not verify
        with pytest.raises(AssertionError, match="does not verify"):
            other.create_and_query(order, "RBARE2")
