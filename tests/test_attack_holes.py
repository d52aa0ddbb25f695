"""Regression tests for the holes found by attacking the app: each failed on the old core.

Drafts wait for a submitter; a lapsed lease never calls; signals survive a crash
between commit and delivery; malformed or odd answers are recorded, never a crash.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from collections import Counter

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import override_settings
from django.utils import timezone

from django_wxpay_profitsharing import outbox, polling, services, tasks, transitions
from django_wxpay_profitsharing.clients import get_client, reset_client
from django_wxpay_profitsharing.models import ProfitSharingEvent, ProfitSharingReturn, ReturnState
from django_wxpay_profitsharing.ratelimit import get_rate_limiter
from django_wxpay_profitsharing.states import Action
from django_wxpay_profitsharing.wechatpay import WeChatPayClient, crypto
from django_wxpay_profitsharing.wechatpay.transport import RawResponse

from .conftest import pending_return, wxpay_config
from .test_api_routes import LIST, api_user, body
from .test_concurrency import posts, run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def draft(order, **fields):
    return pending_return(order, submit=False, **fields)


# ------------------------------------------------------------------ 3. drafts


def test_a_draft_is_sent_by_no_poller_task_or_worker(configured, order):
    row = draft(order)
    assert row.state == ReturnState.DRAFT
    assert polling.process_due()["claimed"] == 0
    assert tasks.submit_return(row.pk) == ReturnState.DRAFT  # the Celery task, run inline
    assert tasks.run_returns([row.pk], "submit") == {"missing": 0, "skipped": 1}
    assert services.run_many([row.pk], Action.DUE) == [(row, False)]
    assert configured.calls() == []
    assert services.submit(row).state == ReturnState.SUCCEEDED  # the shop's code approves


def test_an_add_only_api_user_creates_a_draft_and_cannot_submit_it(configured, order):
    client = api_user("adder", perms=("view_profitsharingreturn", "add_profitsharingreturn"))
    created = client.post(LIST, body(order), format="json")
    assert created.status_code == 201 and created.data["state"] == "draft"
    refused = client.post(f"{LIST}{created.data['id']}/submit/", content_type="application/json")
    assert refused.status_code == 403
    assert configured.calls() == []
    submitter = api_user("submitter")
    sent = submitter.post(f"{LIST}{created.data['id']}/submit/", content_type="application/json")
    assert sent.status_code == 200 and sent.data["state"] == "succeeded"
    row = ProfitSharingReturn.objects.get(pk=created.data["id"])
    assert row.submitted_by.username == "submitter" and row.created_by.username == "adder"


def test_two_people_for_money_movement(sim, order):
    config = wxpay_config(sim, REQUIRE_SEPARATE_SUBMITTER=True)
    with override_settings(WXPAY_PROFITSHARING=config):
        maker = api_user("maker")
        created = maker.post(LIST, body(order), format="json")
        assert created.status_code == 201 and created.data["state"] == "draft"
        own = maker.post(f"{LIST}{created.data['id']}/submit/", content_type="application/json")
        assert own.status_code == 403 and sim.calls() == []
        checker = api_user("checker")
        sent = checker.post(f"{LIST}{created.data['id']}/submit/", content_type="application/json")
        assert sent.status_code == 200 and sent.data["state"] == "succeeded"
    reset_client()


def test_drafts_can_be_edited_nothing_approved_or_sent_can(configured, order):
    row = draft(order, amount=100)
    assert services.update_draft(row, amount=150)
    row.refresh_from_db()
    assert row.amount == 150
    services.approve(row)
    assert not services.update_draft(row, amount=200)
    row.refresh_from_db()
    assert row.amount == 150 and row.state == ReturnState.PENDING


# ------------------------------------------------------- 4. per-row leases


def test_a_holder_whose_lease_lapsed_never_calls(configured, order):
    """Worker A claims a batch; its leases lapse; worker B takes the rows over."""
    rows = [pending_return(order, 10) for _ in range(4)]
    policy = services.current_policy()
    first = polling.claim_due(10, policy=policy)
    assert {c.pk for c in first} == {r.pk for r in rows}
    assert len({c.token for c in first}) == 1  # one token names the claiming batch
    lapsed = timezone.now() - timezone.timedelta(seconds=1)
    ProfitSharingReturn.objects.update(lease_until=lapsed)
    first = [dataclasses.replace(c, lease_until=lapsed) for c in first]  # A's clock moved on
    second = polling.claim_due(10, policy=policy)
    assert {c.pk for c in second} == {r.pk for r in rows}
    assert {c.token for c in second}.isdisjoint({c.token for c in first})
    client = get_client()
    limiter = get_rate_limiter()
    stale = [transitions.call(c, client, limiter, policy) for c in first]
    assert all(r.lease_lost and not r.calls for r in stale)
    for claim, result in zip(first, stale, strict=True):
        transitions.apply(claim, result, policy)
    for claim in second:
        transitions.apply(claim, transitions.call(claim, client, limiter, policy), policy)
    for row in rows:
        row.refresh_from_db()
        assert row.state == ReturnState.SUCCEEDED and row.lease_until is None
        assert len(posts(configured, row.out_return_no)) == 1


# --------------------------------------------------------------- 5. outbox


@pytest.mark.real_simulator  # the crashing worker is another process
def test_a_crash_between_commit_and_delivery_loses_no_signal(sim, order, signal_log):
    config = wxpay_config(sim)
    row = pending_return(order)
    result = run_worker(config, "crash-before-delivery", str(row.pk))
    assert result.returncode == 137, result.stderr
    row.refresh_from_db()
    assert row.state == ReturnState.SUCCEEDED  # committed with its events
    events = ProfitSharingEvent.objects.filter(profit_sharing_return=row)
    assert sorted(events.values_list("signal", flat=True)) == [
        "return_finalized",
        "return_succeeded",
    ]
    assert signal_log.events == [] and not events.filter(delivered_at__isnull=False).exists()
    events.update(created=timezone.now() - outbox.REDELIVERY_AFTER * 2)
    with override_settings(WXPAY_PROFITSHARING=config):
        assert polling.process_due()["redelivered"] == 2
        assert polling.process_due()["redelivered"] == 0  # once
    reset_client()
    assert signal_log.names(row.pk) == ["return_succeeded", "return_finalized"]
    assert not events.filter(delivered_at__isnull=True).exists()


def test_receivers_get_an_event_id_to_deduplicate(configured, order):
    seen = []

    def receiver(sender, instance, event_id, **kwargs):
        seen.append(event_id)

    from django_wxpay_profitsharing import signals

    signals.return_succeeded.connect(receiver, weak=False)
    try:
        row = services.submit(pending_return(order))
    finally:
        signals.return_succeeded.disconnect(receiver)
    [event_id] = seen
    assert isinstance(event_id, uuid.UUID)
    event = ProfitSharingEvent.objects.get(event_id=event_id)
    assert event.profit_sharing_return_id == row.pk and event.delivered_at is not None
    assert outbox.deliver([event_id]) == 0  # delivered already: not again


# ------------------------------------------- 6./7. malformed and odd answers


class CraftedAnswers:
    """A transport answering with crafted, correctly signed bodies (or a broken head)."""

    base_url = "https://api.mch.weixin.qq.com"

    def __init__(self, key: rsa.RSAPrivateKey, entity: dict, *, timestamp: str | None = None):
        self.key = key
        self.entity = entity
        self.timestamp = timestamp
        self.sent = 0

    def send(self, method, target, headers, body):
        self.sent += 1
        raw = json.dumps(self.entity).encode()
        stamp = self.timestamp or str(int(time.time()))
        nonce = uuid.uuid4().hex
        signature = crypto.sign(self.key, crypto.response_message(stamp, nonce, raw))
        return RawResponse(
            200,
            {
                "request-id": "crafted",
                "wechatpay-nonce": nonce,
                "wechatpay-signature": signature,
                "wechatpay-timestamp": stamp,
                "wechatpay-serial": "PUB_KEY_ID_0000000000000000000000000000",
            },
            raw,
        )

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def wechat_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def crafted_client(sim, key, transport):
    kwargs = sim.client_kwargs()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return WeChatPayClient(
        kwargs["mchid"],
        kwargs["merchant_serial_no"],
        kwargs["private_key"],
        wechatpay_public_key=public,
        wechatpay_public_key_id="PUB_KEY_ID_0000000000000000000000000000",
        transport=transport,
    )


def entity_for(row, **changes):
    data = {
        "sub_mchid": row.sub_mchid,
        "order_id": "3008450740201411110007820472",
        "out_order_no": row.out_order_no,
        "out_return_no": row.out_return_no,
        "return_id": "3008450740201411110007820472",
        "return_mchid": row.return_mchid,
        "amount": row.amount,
        "description": row.description,
        "result": "SUCCESS",
        "create_time": "2026-12-02T10:00:00+08:00",
        "finish_time": "2026-12-02T10:00:01+08:00",
    }
    data.update(changes)
    return data


def test_a_401_digit_timestamp_is_recorded_and_the_lease_released(configured, order, wechat_key):
    row = pending_return(order)
    transport = CraftedAnswers(wechat_key, entity_for(row), timestamp="9" * 401)
    row = services.submit(row, client=crafted_client(configured, wechat_key, transport))
    assert transport.sent == 1
    assert row.state == ReturnState.PENDING and row.lease_until is None and row.needs_query
    assert row.last_error_code and row.next_attempt_at is not None


@pytest.mark.parametrize(
    "changes",
    [
        {"result": "X" * 17},
        {"return_id": "r" * 65},
        {"result": "FAILED", "fail_reason": "f" * 65},
        {"create_time": "2026-12-02T10:00:00-23:59"},
        {"finish_time": "9999-12-31T23:59:59-14:00"},
    ],
    ids=["long-result", "long-return-id", "long-fail-reason", "offset", "overflow"],
)
def test_odd_values_in_a_signed_answer_are_a_mismatch(configured, order, wechat_key, changes):
    row = pending_return(order)
    transport = CraftedAnswers(wechat_key, entity_for(row, **changes))
    row = services.submit(row, client=crafted_client(configured, wechat_key, transport))
    assert row.state == ReturnState.PENDING and row.last_error_code == "RESPONSE_MISMATCH"
    assert row.needs_query and row.lease_until is None and row.return_id == ""


class Exploding:
    """A transport that raises what no transport should (a bug, a broken library)."""

    base_url = "https://api.mch.weixin.qq.com"

    def __init__(self, bad_numbers: set[str], inner):
        self.bad_numbers = bad_numbers
        self.inner = inner

    def send(self, method, target, headers, body):
        if any(number.encode() in body for number in self.bad_numbers):
            raise OverflowError("hostile chunk size")
        return self.inner.send(method, target, headers, body)

    def close(self) -> None:
        self.inner.close()


def test_one_bad_row_never_stops_the_poller(configured, order):
    rows = [pending_return(order, 10) for _ in range(5)]
    bad = rows[2].out_return_no
    real = get_client()
    kwargs = configured.client_kwargs()
    client = WeChatPayClient(
        kwargs["mchid"],
        kwargs["merchant_serial_no"],
        kwargs["private_key"],
        wechatpay_public_key=kwargs["wechatpay_public_key"],
        wechatpay_public_key_id=kwargs["wechatpay_public_key_id"],
        transport=Exploding({bad}, real.transport),
    )
    summary = polling.process_due(client=client)
    assert summary["claimed"] == 5 and summary["succeeded"] == 4
    states = Counter(ProfitSharingReturn.objects.values_list("state", flat=True))
    assert states == {ReturnState.SUCCEEDED: 4, ReturnState.PENDING: 1}
    broken = ProfitSharingReturn.objects.get(out_return_no=bad)
    assert broken.last_error_code == "CLIENT_ERROR" and broken.lease_until is None


def test_every_base64_of_a_signature_stays_out_of_the_row(configured, order, wechat_key):
    row = pending_return(order)
    transport = CraftedAnswers(wechat_key, entity_for(row), timestamp="9" * 401)
    row = services.submit(row, client=crafted_client(configured, wechat_key, transport))
    text = json.dumps([row.last_error_message, row.last_error_code, row.response_json])
    assert "wechatpay-signature" not in text.lower()
    assert not any(len(part) > 40 and _is_base64(part) for part in text.split())


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
    except ValueError:
        return False
    return True
