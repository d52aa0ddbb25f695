"""``POST /api/wxpay/notifications/`` against the simulator, which POSTs its 退款结果通知 to
a real HTTP server of the site (pytest-django's ``live_server``) as WeChat Pay does.

The refunds here are PROCESSING at first (``processing_seconds``), and the site's own
poll is an hour away (``REFUND_POLL_BACKOFF``), so whatever moves a job in these tests
moved it because of a notification, or because the test polled. Advancing the
simulator's clock past the processing time is WeChat Pay finishing the refund: the
notifier sends the notification at once, and its retries on WeChat Pay's schedule
as the clock moves on.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
import uuid
from io import BytesIO

import pytest
from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.test import Client, RequestFactory, override_settings
from django.urls import resolve

from django_wxpay_profitsharing import refund_machine
from django_wxpay_profitsharing.clients import client_for, reset_client
from django_wxpay_profitsharing.conf import wxpay_settings
from django_wxpay_profitsharing.models import Notification, RefundJob
from django_wxpay_profitsharing.refund_states import RefundJobState
from django_wxpay_profitsharing.wechatpay import crypto
from django_wxpay_profitsharing.wechatpay.refunds import RefundRequest
from wxpay_simulator.credentials import PUBLIC_KEY_PRIVATE_FILE

from .conftest import SUB_MCHID, unique_no, wxpay_config
from .test_refund_jobs import refund
from .test_refund_notifications import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ROUTE = "/api/wxpay/notifications/"
PROCESSING = 30
#: The site's own first look at a processing refund: far beyond any test.
NO_POLL = (3600.0, 3600.0)


def eventually(check, what: str):
    """``check()``'s first truthy value, polled (20 s at most: a busy machine)."""
    try:
        return wait_for(check, timeout=20.0)
    except AssertionError:
        raise AssertionError(f"{what} did not happen within 20 s") from None


@pytest.fixture
def site(sim, live_server):
    """The site, reachable at its NOTIFY_URL, pointing at the simulator; no poll due."""
    notify_url = f"{live_server.url}{ROUTE}"
    config = wxpay_config(sim, NOTIFY_URL=notify_url, REFUND_POLL_BACKOFF=NO_POLL)
    sim.configure(processing_seconds=PROCESSING)
    with override_settings(WXPAY_PROFITSHARING=config):
        yield sim
    reset_client()


@pytest.fixture
def quiet(sim):
    """The site without NOTIFY_URL (the test POSTs itself); refunds processing, no poll due."""
    sim.configure(processing_seconds=PROCESSING)
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, REFUND_POLL_BACKOFF=NO_POLL)):
        yield sim
    reset_client()


def following(sim, notified: bool = True) -> RefundJob:
    """A refund job whose refund WeChat Pay accepted and is still processing."""
    payment = sim.seed_payment(10000, sub_mchid=SUB_MCHID)
    job = refund(payment, 3000)
    assert job.state == RefundJobState.FOLLOWING, (job.state, job.last_error_message)
    [wechat] = sim.refunds()
    assert wechat["status"] == "PROCESSING"
    assert bool(wechat["notify_url"]) is notified
    return job


def steps(job: RefundJob) -> list[str]:
    return list(job.calls.order_by("pk").values_list("step", flat=True))


def state(job: RefundJob) -> str:
    return RefundJob.objects.get(pk=job.pk).state


def records(count: int) -> list[Notification]:
    """The first ``count`` notifications received, oldest first, once there are that many."""
    found = eventually(lambda: Notification.objects.count() >= count,
                       what=f"{count} notification(s) received")  # fmt: skip
    assert found
    return list(Notification.objects.order_by("pk"))


def attempts(sim, count: int) -> list[dict]:
    """The simulator's first ``count`` delivery attempts, once it has heard the answers."""

    def heard() -> list[dict]:
        made = [a for d in sim.notifications() for a in d["attempts"]]
        return made if len(made) >= count else []

    return eventually(heard, what=f"{count} answer(s) heard by the simulator")


# -- the simulator's own notifications -----------------------------------------------------
def test_notification_first_the_job_looks_at_once_and_succeeds(site):
    job = following(site)
    assert steps(job)[-1] == "refund"  # accepted, not yet asked about
    site.advance_clock(PROCESSING + 1)  # WeChat Pay pays the customer and says so
    eventually(lambda: state(job) == RefundJobState.SUCCEEDED, what="the job succeeding")
    job.refresh_from_db()
    assert steps(job)[-2:] == ["refund", "query_refund"]  # the look the notification asked for
    assert job.next_attempt_at is None
    [record] = records(1)
    assert (record.verified, record.duplicate, record.job_id) == (True, False, job.pk)
    assert record.event_type == "REFUND.SUCCESS" and record.refund_status == "SUCCESS"
    refund_row = job.refunds.get()
    assert (record.out_refund_no, record.refund_id) == (refund_row.out_refund_no,
                                                        refund_row.refund_id)  # fmt: skip
    assert record.mchid == job.mchid and record.changed == "the refund job looks now"
    assert [a["status"] for a in attempts(site, 1)] == [204]


def test_polling_first_the_later_notification_changes_nothing(site):
    site.set_fault("stale_timestamp", endpoint="notify", count=1)  # the first try is refused
    job = following(site)
    site.advance_clock(PROCESSING + 1)
    [refused] = records(1)
    assert not refused.verified and refused.failure.startswith("timestamp:")
    job = refund_machine.run(job.pk, force=True)  # the site's poll comes first
    assert job.state == RefundJobState.SUCCEEDED
    queries = steps(job).count("query_refund")
    site.advance_clock(16)  # WeChat Pay's retry, 15 s later
    _refused, late = records(2)
    assert late.verified and late.job_id == job.pk
    assert late.changed == "nothing: the refund job does not move (state succeeded)"
    job.refresh_from_db()
    assert steps(job).count("query_refund") == queries and job.state == RefundJobState.SUCCEEDED
    assert [a["status"] for a in attempts(site, 2)] == [401, 204]


def test_a_duplicate_changes_nothing_and_is_answered_204(site):
    site.set_fault("duplicate", endpoint="notify", count=1)
    job = following(site)
    site.advance_clock(PROCESSING + 1)
    first, again = records(2)
    eventually(lambda: state(job) == RefundJobState.SUCCEEDED, what="the job succeeding")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.verified and again.changed == "nothing: a duplicate" and again.job_id == job.pk
    assert first.notification_id == again.notification_id  # the same notice, signed again
    job.refresh_from_db()
    assert steps(job).count("query_refund") == 1
    assert [a["status"] for a in attempts(site, 2)] == [204, 204]


def test_a_forged_notification_is_refused_and_changes_nothing(site):
    site.set_fault("bad_signature", endpoint="notify", count=1)
    job = following(site)
    site.advance_clock(PROCESSING + 1)
    [forged] = records(1)
    assert not forged.verified and forged.failure.startswith("signature:")
    assert forged.job_id is None and forged.changed == "" and forged.out_refund_no == ""
    assert forged.event_type == "REFUND.SUCCESS"  # what it claimed, kept as unverified
    time.sleep(0.3)  # what a wrongly accepted one would have started by now
    job.refresh_from_db()
    assert job.state == RefundJobState.FOLLOWING and steps(job)[-1] == "refund"
    assert [a["status"] for a in attempts(site, 1)] == [401]
    site.advance_clock(16)  # the retry, correctly signed
    eventually(lambda: state(job) == RefundJobState.SUCCEEDED, what="the job succeeding")
    assert records(2)[1].verified


def test_a_stale_notification_is_refused_and_changes_nothing(site):
    site.set_fault("stale_timestamp", endpoint="notify", count=1, seconds=301)
    job = following(site)
    site.advance_clock(PROCESSING + 1)
    [stale] = records(1)
    assert not stale.verified and "300 s" in stale.failure
    time.sleep(0.3)
    assert state(job) == RefundJobState.FOLLOWING and steps(job)[-1] == "refund"
    assert [a["status"] for a in attempts(site, 1)] == [401]


def test_a_probe_is_answered_4xx_and_logged_at_info(site, caplog):
    site.set_fault("probe", endpoint="notify", count=1)
    job = following(site)
    with caplog.at_level(logging.INFO, logger="django_wxpay_profitsharing"):
        site.advance_clock(PROCESSING + 1)
        probe, real = records(2)
        eventually(lambda: state(job) == RefundJobState.SUCCEEDED, what="the job succeeding")
    assert not probe.verified and "WECHATPAY/SIGNTEST/" in probe.failure
    assert real.verified and real.job_id == job.pk
    said = [(r.levelno, r.getMessage()) for r in caplog.records if "probe" in r.getMessage()]
    assert said and all(level == logging.INFO for level, _message in said)
    assert [(a["fault"], a["status"]) for a in attempts(site, 2)] == [("probe", 401), (None, 204)]


def test_a_refund_made_elsewhere_is_recorded_as_an_orphan(site):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    number = unique_no("ELSE")
    elsewhere = RefundRequest(  # the merchant platform, or the shop's other system
        out_refund_no=number, refund=100, total=10000, sub_mchid=SUB_MCHID,
        transaction_id=payment["transaction_id"], notify_url=str(wxpay_settings.NOTIFY_URL),
    )  # fmt: skip
    client_for(None).create_refund(elsewhere)
    site.advance_clock(PROCESSING + 1)
    [orphan] = records(1)
    assert orphan.verified and orphan.job_id is None and orphan.out_refund_no == number
    assert orphan.changed == "nothing: no refund job made this refund (an orphan)"
    assert [a["status"] for a in attempts(site, 1)] == [204]
    assert not RefundJob.objects.exists()


# -- notifications the test signs as WeChat Pay does ---------------------------------------
def refund_notice(sim, **changes) -> dict:
    """A partner-mode refund notice's plaintext for the simulator's merchant."""
    return {"sp_mchid": sim.credentials["mchid"], "sub_mchid": SUB_MCHID,
            "transaction_id": "4200000000000000000000000001", "out_trade_no": "T1",
            "refund_id": "50000000000000000000000001", "out_refund_no": unique_no("X"),
            "refund_status": "SUCCESS", "success_time": "2026-01-01T10:00:00+08:00",
            "user_received_account": "支付用户零钱",
            "amount": {"total": 10000, "refund": 100, "payer_total": 10000,
                       "payer_refund": 100}, **changes}  # fmt: skip


def wechat_signs(sim, plaintext=None, *, apiv3=None, stamp=None, body=None):
    """(headers, body) as WeChat Pay sends them: the resource encrypted under the APIv3
    key, the whole signed with the simulator's WeChat Pay key (public-key mode)."""
    if body is None:
        nonce = crypto.make_nonce(12)
        data = json.dumps(plaintext, ensure_ascii=False).encode()
        envelope = {
            "id": str(uuid.uuid4()), "create_time": "2026-01-01T10:00:00+08:00",
            "resource_type": "encrypt-resource", "event_type": "REFUND.SUCCESS",
            "summary": "退款成功",
            "resource": {"original_type": "refund", "algorithm": "AEAD_AES_256_GCM",
                         "ciphertext": crypto.aes_gcm_encrypt(
                             apiv3 or sim.credentials["apiv3_key"], nonce, "refund", data),
                         "associated_data": "refund", "nonce": nonce},
        }  # fmt: skip
        body = json.dumps(envelope, ensure_ascii=False).encode()
    key = crypto.load_private_key(sim.state_dir / PUBLIC_KEY_PRIVATE_FILE)
    stamp = int(time.time()) if stamp is None else stamp
    header_nonce = crypto.make_nonce()
    headers = {
        "Wechatpay-Serial": sim.credentials["wechatpay_public_key_id"],
        "Wechatpay-Signature": crypto.sign(key, crypto.response_message(stamp, header_nonce,
                                                                        body)),
        "Wechatpay-Timestamp": str(stamp),
        "Wechatpay-Nonce": header_nonce,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Request-ID": uuid.uuid4().hex,
    }  # fmt: skip
    return headers, body


def post(headers, body, client=None):
    client = client or Client()
    return client.post(ROUTE, data=body, content_type="application/json", headers=headers)


def refusal(response, status: int, step: str) -> Notification:
    """The answer is WeChat Pay's FAIL with ``status``; the record says ``step``."""
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    answer = json.loads(response.content)
    assert set(answer) == {"code", "message"} and answer["code"] == "FAIL"
    record = Notification.objects.order_by("-pk").first()
    assert record is not None and not record.verified
    assert record.failure.startswith(f"{step}:"), record.failure
    assert (record.job_id, record.changed, record.duplicate) == (None, "", False)
    return record


def test_a_replayed_notification_is_refused(configured):
    headers, body = wechat_signs(configured, refund_notice(configured))
    assert post(headers, body).status_code == 204
    refusal(post(headers, body), 401, "nonce")
    assert Notification.objects.filter(verified=True).count() == 1


def test_an_undecryptable_notification_is_refused(quiet):
    job = following(quiet, notified=False)
    number = job.refunds.get().out_refund_no
    headers, body = wechat_signs(quiet, refund_notice(quiet, out_refund_no=number),
                                 apiv3="c" * 32)  # fmt: skip
    refusal(post(headers, body), 400, "decrypt")
    job.refresh_from_db()
    assert job.state == RefundJobState.FOLLOWING and steps(job)[-1] == "refund"


def test_a_body_that_is_not_json_is_refused(configured):
    refusal(post({}, b"not json at all"), 400, "headers")
    headers, body = wechat_signs(configured, body=b"\xff not json")
    refusal(post(headers, body), 400, "body")
    assert Notification.objects.count() == 2


class CountingInput(BytesIO):
    """A request's input that counts what the site read of it."""

    taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data


def test_a_10_mb_body_is_refused_before_it_is_read(configured):
    size = 10 * 1024 * 1024
    request = RequestFactory().post(ROUTE, data=b"x", content_type="application/json")
    stream = CountingInput(b"{" + b" " * (size - 2) + b"}")
    request.META["CONTENT_LENGTH"] = str(size)
    request._stream = LimitedStream(stream, size)
    refusal(resolve(ROUTE).func(request), 413, "size")
    assert stream.taken == 0
    # Through the test client too (Django's own request handling around the view).
    headers, _body = wechat_signs(configured, refund_notice(configured))
    refusal(post(headers, b"{" + b" " * size + b"}"), 413, "size")


def test_no_csrf_token_no_login_and_only_post(configured):
    headers, body = wechat_signs(configured, refund_notice(configured))
    assert post(headers, body, Client(enforce_csrf_checks=True)).status_code == 204
    assert Client().get(ROUTE).status_code == 405
    login_required = "django.contrib.auth.middleware.LoginRequiredMiddleware"
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, login_required]):
        headers, body = wechat_signs(configured, refund_notice(configured))
        assert post(headers, body).status_code == 204


def test_the_merchant_is_found_from_the_notification_itself(sim):
    """Two merchants share WeChat Pay's key (one platform): the one whose APIv3 key
    decrypts the notice is the one, whichever is tried first."""
    decoy, apiv3 = "1900000999", "d" * 32
    config = wxpay_config(sim)
    keys = ("MCHID", "MERCHANT_SERIAL_NO", "PRIVATE_KEY", "APIV3_KEY", "WECHATPAY_PUBLIC_KEY",
            "WECHATPAY_PUBLIC_KEY_ID")  # fmt: skip
    own = {k: config.pop(k) for k in keys}
    mchid = own.pop("MCHID")
    config["MERCHANTS"] = {decoy: {**own, "APIV3_KEY": apiv3}, mchid: own}
    config["DEFAULT_MCHID"] = mchid
    with override_settings(WXPAY_PROFITSHARING=config):
        mine = refund_notice(sim)
        theirs = refund_notice(sim, sp_mchid=decoy)
        assert post(*wechat_signs(sim, mine)).status_code == 204
        assert post(*wechat_signs(sim, theirs, apiv3=apiv3)).status_code == 204
        refusal(post(*wechat_signs(sim, mine, apiv3=apiv3)), 400, "merchant")
    reset_client()
    first, second = Notification.objects.order_by("pk")[:2]
    assert (first.mchid, first.out_refund_no) == (mchid, mine["out_refund_no"])
    assert (second.mchid, second.out_refund_no) == (decoy, theirs["out_refund_no"])


def test_a_site_that_cannot_read_notifications_answers_500(sim):
    config = {k: v for k, v in wxpay_config(sim).items() if k != "APIV3_KEY"}
    with override_settings(WXPAY_PROFITSHARING=config):
        response = post(*wechat_signs(sim, refund_notice(sim)))
    reset_client()
    assert response.status_code == 500 and json.loads(response.content)["code"] == "FAIL"
    [record] = Notification.objects.all()
    assert not record.verified and "APIV3_KEY" in record.failure


def test_nothing_secret_is_recorded(configured):
    plain = refund_notice(configured, user_received_account="招商银行信用卡0403")
    headers, body = wechat_signs(configured, plain)
    assert post(headers, body).status_code == 204
    [record] = Notification.objects.values()
    stored = json.dumps(record, default=str, ensure_ascii=False)
    ciphertext = json.loads(body)["resource"]["ciphertext"]
    secrets = ("招商银行信用卡0403", headers["Wechatpay-Signature"][:40],
               configured.credentials["apiv3_key"], ciphertext[:24])  # fmt: skip
    for secret in secrets:
        assert secret not in stored


@pytest.mark.real_simulator
def test_a_slow_wechat_pay_does_not_delay_the_answer(sim, live_server):
    """WeChat Pay waits 5 s for the answer; the job's look, whose query here takes 3 s,
    comes after it."""
    sim.configure(processing_seconds=PROCESSING)
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, REFUND_POLL_BACKOFF=NO_POLL)):
        job = following(sim, notified=False)
        sim.advance_clock(PROCESSING + 1)
        [wechat] = sim.refunds()
        assert wechat["status"] == "SUCCESS"
        sim.set_fault("latency", endpoint="refund_query", ms=3000)
        plain = refund_notice(sim, out_refund_no=wechat["out_refund_no"],
                              refund_id=wechat["refund_id"])  # fmt: skip
        headers, body = wechat_signs(sim, plain)
        request = urllib.request.Request(f"{live_server.url}{ROUTE}", data=body,
                                         headers=headers, method="POST")  # fmt: skip
        started = time.monotonic()
        with urllib.request.urlopen(request, timeout=5) as answer:
            status = answer.status
        answered = time.monotonic() - started
        eventually(lambda: state(job) == RefundJobState.SUCCEEDED, what="the job succeeding")
        done = time.monotonic() - started
    reset_client()
    assert status == 204
    assert answered < 1.5 and done >= 3.0, (answered, done)


# -- the admin ---------------------------------------------------------------------------------
ADMIN = "/admin/wxpay_profitsharing/notification/"


def test_the_admin_lists_notifications_read_only_filtered_and_scoped(sim):
    from django.contrib.auth.models import Group, Permission, User

    mchid = sim.credentials["mchid"]
    scope = "django_wxpay_profitsharing.access.merchant_groups"
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, MERCHANT_SCOPE=scope)):
        taken = refund_notice(sim)
        headers, body = wechat_signs(sim, taken)
        assert post(headers, body).status_code == 204
        assert post(*wechat_signs(sim, taken)).status_code == 204  # a duplicate
        assert post(headers, body).status_code == 401  # a replay
        Notification.objects.create(mchid="1900000999", out_refund_no="THEIRS", verified=True,
                                    event_type="REFUND.CLOSED")  # fmt: skip
        user = User.objects.create_user("ops", password="pw", is_staff=True)
        user.user_permissions.add(Permission.objects.get(codename="view_notification"))
        user.groups.add(Group.objects.create(name=f"wxpay:{mchid}"))
        client = Client()
        client.force_login(user)
        listed = client.get(ADMIN)
        assert listed.status_code == 200
        page = listed.content.decode()
        assert taken["out_refund_no"] in page and "THEIRS" not in page
        for name in ("verified", "event_type", "duplicate"):  # the three filters are offered
            assert f"?{name}" in page or f"{name}__exact" in page
        duplicates = client.get(f"{ADMIN}?duplicate__exact=1").context["cl"].result_list
        assert [(n.out_refund_no, n.duplicate) for n in duplicates] == [
            (taken["out_refund_no"], True)]  # fmt: skip
        # A refused one names no merchant it could be trusted for: whoever sees every
        # merchant sees it.
        assert list(client.get(f"{ADMIN}?verified__exact=0").context["cl"].result_list) == []
        boss = Client()
        boss.force_login(User.objects.create_superuser("boss", password="pw"))
        refused = boss.get(f"{ADMIN}?verified__exact=0").context["cl"].result_list
        assert [n.failure.split(":")[0] for n in refused] == ["nonce"]
        closed = client.get(f"{ADMIN}?event_type=REFUND.CLOSED").context["cl"].result_list
        assert list(closed) == []  # another merchant's
        record = Notification.objects.filter(mchid=mchid).first()
        change = client.get(f"{ADMIN}{record.pk}/change/")
        assert change.status_code == 200 and b'name="_save"' not in change.content
        assert client.get(f"{ADMIN}add/").status_code == 403
        assert client.post(f"{ADMIN}{record.pk}/delete/", {"post": "yes"}).status_code == 403
        theirs = Notification.objects.get(out_refund_no="THEIRS")
        assert client.get(f"{ADMIN}{theirs.pk}/change/").status_code == 302  # not found for them
    reset_client()
