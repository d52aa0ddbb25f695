"""Concurrent submitters and crashed processes: one POST, one state change, one signal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings

from django_wxpay_profitsharing import polling, services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState
from wxpay_simulator.testing.database_url import url_of

from .conftest import pending_return as new_return
from .conftest import requires_postgres, wxpay_config

# Worker processes, and threads that must overlap in a real HTTP call: the real simulator.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_simulator]
ROOT = Path(__file__).resolve().parent.parent


def posts(sim, number):
    return [c for c in sim.calls() if c["method"] == "POST" and c.get("out_return_no") == number]


def database_url() -> str:
    """A ``DATABASE_URL`` naming the database this (test) process is connected to."""
    from django.db import connection

    return url_of(connection.settings_dict, connection.vendor)


def run_worker(config: dict, *args: str, background=False):
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "WXPAY_TEST_CONFIG": json.dumps(config),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "tests.worker", *args]
    if background:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def in_threads(count, fn):
    barrier = threading.Barrier(count)
    results, failures = [], []

    def run():
        try:
            barrier.wait()
            results.append(fn())
        except Exception as exc:  # collected and asserted below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not failures, failures
    return results


@requires_postgres
def test_two_threads_submitting_the_same_return(configured, order, signal_log):
    configured.set_fault("latency", endpoint="create", ms=300)
    row = new_return(order)
    in_threads(2, lambda: services.submit(row.pk))
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED and row.attempts == 1
    assert len(posts(configured, row.out_return_no)) == 1
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]


@requires_postgres
def test_two_threads_refreshing_the_same_return(configured, order, signal_log):
    configured.configure(processing_seconds=0.2)
    row = services.submit(new_return(order))
    configured.advance_clock(0.25)
    configured.set_fault("latency", endpoint="query", ms=300)
    in_threads(2, lambda: services.refresh(row.pk))
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED
    gets = [c for c in configured.calls() if c["method"] == "GET"]
    assert len(gets) == 1
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]


@requires_postgres
def test_two_processes_submitting_the_same_return(configured, order):
    configured.set_fault("latency", endpoint="create", ms=300)
    row = new_return(order)
    config = wxpay_config(configured)
    workers = [run_worker(config, "submit", str(row.pk), background=True) for _ in range(2)]
    outputs = [w.communicate(timeout=60)[0].strip() for w in workers]
    assert all(w.returncode == 0 for w in workers)
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED and row.attempts == 1
    assert len(posts(configured, row.out_return_no)) == 1
    assert sorted(outputs) == ["pending", "succeeded"] or outputs == ["succeeded"] * 2


def test_crash_between_commit_and_http_call(sim, order, signal_log):
    config = wxpay_config(sim, LEASE_SECONDS=0.5)
    row = new_return(order)
    result = run_worker(config, "crash-before-call", str(row.pk))
    assert result.returncode == 137, result.stderr
    row.refresh_from_db()
    assert row.state == ReturnState.PENDING and row.lease_until is not None and row.needs_query
    assert posts(sim, row.out_return_no) == []
    # Held by the dead process's lease until it expires; then the poller converges.
    with override_settings(WXPAY_PROFITSHARING=config):
        assert polling.process_due()["claimed"] == 0
        time.sleep(0.6)
        assert polling.process_due()["succeeded"] == 1
    reset_client()
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED
    assert len([p for p in posts(sim, row.out_return_no) if p["status"] == 200]) == 1
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]


def test_crash_after_wechat_accepted(sim, order, signal_log):
    config = wxpay_config(sim, LEASE_SECONDS=0.5)
    row = new_return(order)
    result = run_worker(config, "crash-after-call", str(row.pk))
    assert result.returncode == 137, result.stderr
    row.refresh_from_db()
    assert row.state == ReturnState.PENDING and row.needs_query
    assert len(posts(sim, row.out_return_no)) == 1  # WeChat has it; we do not know yet
    time.sleep(0.6)
    from django.core.management import call_command

    with override_settings(WXPAY_PROFITSHARING=config):
        call_command("wxpay_process_returns", "--once", stdout=open(os.devnull, "w"))
    reset_client()
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED and row.return_id
    assert len(posts(sim, row.out_return_no)) == 1  # found by a query, not posted again
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]
    assert ProfitSharingReturn.objects.get(pk=row.pk).calls.filter(method="GET").count() == 1
