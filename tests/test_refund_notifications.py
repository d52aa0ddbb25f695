"""The simulator's 退款结果通知, read by the client's ``read_notification`` at a loopback shop.

A small HTTP server stands for the shop: it reads each POST with ``read_notification``
(the client's keys) and answers 204, or what a test tells it to. So each test proves
both sides: the simulator notifies as WeChat Pay does (signed, encrypted, retried on
its schedule, with the faults a shop must survive), and the client reads it.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from django_wxpay_profitsharing.wechatpay import RefundRequest, RefundStatus, WeChatPayClient
from django_wxpay_profitsharing.wechatpay import notifications as n
from django_wxpay_profitsharing.wechatpay.events import Notification, RefundNotice

from .conftest import SUB_MCHID, unique_no


class Shop:
    """Reads notifications and answers them: ``answers`` first, then 204."""

    def __init__(self) -> None:
        self.keys: n.NotificationKeys | None = None
        self.nonces = n.MemoryNonceStore()
        self.read: list[object] = []
        self.answers: list[int] = []
        self.lock = threading.Lock()
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    assert shop.keys is not None
                    outcome: object = n.read_notification(
                        dict(self.headers), body, shop.keys, now=time.time(), nonces=shop.nonces
                    )
                    status = 204
                except n.NotificationError as exc:
                    outcome, status = exc, 401
                with shop.lock:
                    shop.read.append(outcome)
                    if status == 204 and shop.answers:
                        status = shop.answers.pop(0)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/wxpay/notify/refund/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[RefundNotice]:
        with self.lock:
            return [e.refund for e in self.read if isinstance(e, Notification)]

    def errors(self) -> list[type]:
        with self.lock:
            return [type(e) for e in self.read if isinstance(e, Exception)]


@pytest.fixture(scope="module")
def shop():
    made = Shop()
    yield made
    made.server.shutdown()


@pytest.fixture
def client(sim, shop):
    with shop.lock:
        shop.read.clear()
        shop.answers.clear()
    with WeChatPayClient(**sim.client_kwargs()) as made:
        shop.keys = made.notification_keys()
        yield made


def wait_for(condition, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def make_refund(sim, client, shop, sub_mchid=SUB_MCHID, url=None):
    tx = sim.seed_payment(1000, sub_mchid=sub_mchid)["transaction_id"]
    request = RefundRequest(
        unique_no("R"),
        300,
        1000,
        transaction_id=tx,
        sub_mchid=sub_mchid,
        notify_url=url or shop.url,
    )
    return client.create_refund(request)


def delivered(sim, number):
    return [x for x in sim.notifications() if x["out_refund_no"] == number and x["delivered"]]


@pytest.mark.parametrize("sub_mchid", [SUB_MCHID, None])
def test_a_final_refund_is_notified_signed_and_encrypted(sim, client, shop, sub_mchid):
    made = make_refund(sim, client, shop, sub_mchid)
    (sent,) = wait_for(lambda: delivered(sim, made.out_refund_no))
    assert sent["event_type"] == "REFUND.SUCCESS" and sent["attempts"][0]["status"] == 204
    (notice,) = shop.events()
    assert notice.refund_status is RefundStatus.SUCCESS
    assert (notice.mchid, notice.sub_mchid) == (sim.credentials["mchid"], sub_mchid)
    assert (notice.out_refund_no, notice.refund_id) == (made.out_refund_no, made.refund_id)
    assert (notice.total, notice.refund, notice.payer_refund) == (1000, 300, 300)
    assert notice.success_time is not None


def test_abnormal_and_closed_are_notified_too(sim, client, shop):
    sim.set_fault("abnormal", endpoint="refund_create", count=1)
    abnormal = make_refund(sim, client, shop)
    wait_for(lambda: delivered(sim, abnormal.out_refund_no))
    sim.set_merchant(SUB_MCHID, balance=0, refund_when_short="hold")
    tx = sim.seed_payment(1000, sub_mchid=SUB_MCHID, profit_sharing=False)["transaction_id"]
    held = client.create_refund(
        RefundRequest(
            unique_no("R"), 300, 1000, transaction_id=tx, sub_mchid=SUB_MCHID, notify_url=shop.url
        )
    )
    sim.advance_clock(7 * 86400)
    wait_for(lambda: delivered(sim, held.out_refund_no))
    statuses = [e.refund_status for e in shop.events()]
    assert statuses == [RefundStatus.ABNORMAL, RefundStatus.CLOSED]


def test_failures_are_retried_on_wechats_schedule_counted_on_the_clock(sim, client, shop):
    shop.answers[:] = [500, 503]
    made = make_refund(sim, client, shop)
    first = wait_for(lambda: [x for x in sim.notifications() if x["attempts"]])
    time.sleep(0.5)  # 15 s have not passed on the simulator's clock: no retry yet
    assert [a["status"] for a in sim.notifications()[0]["attempts"]] == [500]
    assert first[0]["next_attempt_at"] is not None
    sim.advance_clock(15)
    wait_for(lambda: len(sim.notifications()[0]["attempts"]) == 2)
    sim.advance_clock(15)
    (sent,) = wait_for(lambda: delivered(sim, made.out_refund_no))
    assert [a["status"] for a in sent["attempts"]] == [500, 503, 204]


@pytest.mark.parametrize(
    ("fault", "refused_as"),
    [
        ("stale_timestamp", n.StaleTimestamp),
        ("bad_signature", n.BadSignature),
    ],
)
def test_a_spoilt_attempt_is_refused_by_the_shop_and_retried(sim, client, shop, fault, refused_as):
    sim.set_fault(fault, endpoint="notify", count=1)
    made = make_refund(sim, client, shop)
    wait_for(lambda: sim.notifications() and sim.notifications()[0]["attempts"])
    assert shop.errors() == [refused_as] and shop.events() == []
    sim.advance_clock(15)
    (sent,) = wait_for(lambda: delivered(sim, made.out_refund_no))
    assert [a["status"] for a in sent["attempts"]] == [401, 204]
    assert sent["attempts"][0]["fault"] == fault


def test_a_probe_is_sent_before_and_refused_as_a_probe(sim, client, shop):
    sim.set_fault("probe", endpoint="notify", count=1)
    made = make_refund(sim, client, shop)
    wait_for(lambda: delivered(sim, made.out_refund_no))
    assert shop.errors() == [n.SignatureProbe]
    assert [e.out_refund_no for e in shop.events()] == [made.out_refund_no]


def test_a_duplicate_is_sent_after_a_delivery(sim, client, shop):
    sim.set_fault("duplicate", endpoint="notify", count=1)
    made = make_refund(sim, client, shop)
    wait_for(lambda: len(shop.events()) == 2)
    first, second = shop.events()
    assert first == second and first.out_refund_no == made.out_refund_no
    (sent,) = delivered(sim, made.out_refund_no)
    assert [a.get("fault") for a in sent["attempts"]] == [None, "duplicate"]


def test_only_a_loopback_notify_url_is_called(sim, client, shop):
    made = make_refund(sim, client, shop, url="https://shop.example.com/wxpay/notify/")
    (record,) = wait_for(
        lambda: [x for x in sim.notifications() if x["out_refund_no"] == made.out_refund_no]
    )
    assert record["skipped"] and record["attempts"] == [] and not record["delivered"]
