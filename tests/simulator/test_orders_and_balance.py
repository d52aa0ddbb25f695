"""查询分账结果, WeChat's return rules per receiver line, and a receiver's short balance.

Over real HTTP: the package's own client (``WeChatPayClient.query_order`` and
``create_return``) where the typed result or the bytes it re-sends matter, the
independent ``SignedClient`` where the wire shape and signature matter.
"""

from __future__ import annotations

import re

import pytest
import requests

from django_wxpay_profitsharing.wechatpay import (
    ReceiverResult,
    ReceiverType,
    ReturnRequest,
    SharingOrderState,
    WeChatPayClient,
    errors,
)
from wxpay_simulator.testing import SimulatorError

from .signed_client import RECEIVER, SUB, SignedClient, return_fields

DAY = 86400
OTHER = "86693853"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00")
SHORT = (403, "NOT_ENOUGH", "可用余额不足，请充值后重新发起")
MIXED = [
    {"account": RECEIVER, "amount": 600},
    {"type": "MERCHANT_ID", "account": OTHER, "amount": 300, "description": "平台佣金"},
    {"type": "PERSONAL_OPENID", "account": OPENID, "amount": 100},
]


@pytest.fixture
def wxpay(simproc, client):
    """The package's client on the same (reset) simulator."""
    with WeChatPayClient(**simproc.client_kwargs(), max_get_retries=0) as wechat:
        yield wechat


def ok(response: requests.Response, client: SignedClient) -> dict:
    assert response.status_code == 200, response.text
    client.assert_signed(response)
    return response.json()


def refused(response: requests.Response, client: SignedClient, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    client.assert_signed(response)
    body = response.json()
    assert body["code"] == code and body["message"]
    return body


def creates(simproc, out_return_no: str) -> list[dict]:
    return [
        c
        for c in simproc.calls()
        if c["endpoint"] == "create" and c["out_return_no"] == out_return_no
    ]


# -- 查询分账结果 ------------------------------------------------------------------------------


def test_finished_order_is_queried_with_every_line(simproc, client, wxpay):
    seeded = simproc.seed_order("P-Q1", sub_mchid=SUB, receivers=MIXED)
    assert re.fullmatch(r"4200\d{24}", seeded["transaction_id"])
    order = wxpay.query_order("P-Q1", seeded["transaction_id"], SUB)
    assert (order.sub_mchid, order.out_order_no, order.order_id) == (
        SUB,
        "P-Q1",
        seeded["order_id"],
    )
    assert order.transaction_id == seeded["transaction_id"]
    assert order.state is SharingOrderState.FINISHED
    assert [(r.type, r.account, r.amount, r.result) for r in order.receivers] == [
        (ReceiverType.MERCHANT_ID, RECEIVER, 600, ReceiverResult.SUCCESS),
        (ReceiverType.MERCHANT_ID, OTHER, 300, ReceiverResult.SUCCESS),
        (ReceiverType.PERSONAL_OPENID, OPENID, 100, ReceiverResult.SUCCESS),
    ]
    assert order.receivers[1].description == "平台佣金"
    assert len({r.detail_id for r in order.receivers}) == 3
    for line in order.receivers:
        assert re.fullmatch(r"3601\d{24}", line.detail_id) and line.fail_reason is None
        assert line.create_time is not None and line.finish_time is not None
    # The wire: WeChat's field order, signed like every answer.
    raw = ok(client.query_order("P-Q1", seeded["transaction_id"]), client)
    top = ["sub_mchid", "transaction_id", "out_order_no", "order_id", "state", "receivers"]
    assert list(raw) == top
    assert list(raw["receivers"][0]) == [
        "amount",
        "description",
        "type",
        "account",
        "result",
        "create_time",
        "finish_time",
        "detail_id",
    ]
    assert TIME.fullmatch(raw["receivers"][0]["create_time"])
    assert raw == order.raw
    # Re-seeding keeps the ids a merchant may have stored.
    again = simproc.seed_order("P-Q1", sub_mchid=SUB, receivers=MIXED[:1])
    assert again["transaction_id"] == seeded["transaction_id"]
    kept = wxpay.query_order("P-Q1", seeded["transaction_id"], SUB).receivers
    assert [r.detail_id for r in kept] == [order.receivers[0].detail_id]


def test_processing_order_with_pending_and_closed_lines(simproc, client, wxpay):
    receivers = [
        {"account": RECEIVER, "amount": 100, "result": "PENDING"},
        {"account": OTHER, "amount": 50, "result": "CLOSED", "fail_reason": "NO_RELATION"},
    ]
    simproc.seed_order(
        "P-Q2",
        receivers,
        sub_mchid=SUB,
        transaction_id="4200000000202612020000000001",
        state="PROCESSING",
    )
    view = simproc.order("P-Q2")
    assert view["transaction_id"] == "4200000000202612020000000001"
    assert [r["returnable"] for r in view["receivers"]] == [0, 0]
    order = wxpay.query_order("P-Q2", "4200000000202612020000000001", SUB)
    assert order.state is SharingOrderState.PROCESSING
    pending, closed = order.receivers
    assert pending.result is ReceiverResult.PENDING and pending.finish_time is None
    assert closed.result is ReceiverResult.CLOSED and closed.fail_reason == "NO_RELATION"
    assert "finish_time" not in order.raw["receivers"][0]
    assert order.raw["receivers"][1]["fail_reason"] == "NO_RELATION"


def test_direct_form_order_has_no_sub_mchid(simproc, client, wxpay):
    seeded = simproc.seed_order("P-Q3", sub_mchid=None, amount=10)
    order = wxpay.query_order("P-Q3", seeded["transaction_id"])
    assert order.sub_mchid is None and "sub_mchid" not in order.raw
    with pytest.raises(errors.APIError) as info:  # the same number under a sub-merchant
        wxpay.query_order("P-Q3", seeded["transaction_id"], SUB)
    assert info.value.code == "RESOURCE_NOT_EXISTS"


def test_unknown_order_or_other_transaction_is_not_found(simproc, client, wxpay):
    seeded = simproc.seed_order("P-Q4", sub_mchid=SUB, amount=10)
    for out_order_no, transaction_id in [
        ("P-NOPE", seeded["transaction_id"]),
        ("P-Q4", "4200000000000000000000000000"),
    ]:
        body = refused(
            client.query_order(out_order_no, transaction_id), client, 404, "RESOURCE_NOT_EXISTS"
        )
        assert body["message"] == "记录不存在"
        with pytest.raises(errors.APIError) as info:
            wxpay.query_order(out_order_no, transaction_id, SUB)
        assert (info.value.status, info.value.code) == (404, "RESOURCE_NOT_EXISTS")


@pytest.mark.parametrize(
    ("out_order_no", "transaction_id", "field"),
    [
        ("P-Q5", None, "transaction_id"),
        ("P-Q5", "", "transaction_id"),
        ("P-Q5", "4200-1", "transaction_id"),
        ("P-Q5", "4" * 33, "transaction_id"),
        ("P Q5", "4200", "out_order_no"),
    ],
)
def test_order_query_parameters_are_param_error(
    simproc, client, out_order_no, transaction_id, field
):
    body = refused(client.query_order(out_order_no, transaction_id), client, 400, "PARAM_ERROR")
    assert body["detail"]["field"] == field


def test_order_query_is_logged_faulted_and_rate_limited(simproc, client):
    seeded = simproc.seed_order("P-Q6", sub_mchid=SUB, amount=10)
    simproc.set_fault("http_500", endpoint="order_query", count=1)
    refused(client.query_order("P-Q6", seeded["transaction_id"]), client, 500, "SYSTEM_ERROR")
    ok(client.query_order("P-Q6", seeded["transaction_id"]), client)
    unsigned = client.send(
        "GET", "/v3/profitsharing/orders/P-Q6?transaction_id=1", sign_target="/v3/other"
    )
    refused(unsigned, client, 401, "SIGN_ERROR")
    calls = simproc.calls()
    assert [(c["endpoint"], c["status"], c["fault"]) for c in calls] == [
        ("order_query", 500, "http_500"),
        ("order_query", 200, None),
        ("order_query", 401, None),
    ]
    assert calls[0]["out_order_no"] == "P-Q6" and calls[0]["out_return_no"] is None
    simproc.configure(qps_limit=1)
    statuses = [client.query_order("P-Q6", seeded["transaction_id"]).status_code for _ in range(3)]
    assert 429 in statuses
    simproc.configure(qps_limit=0)


# -- which lines can be returned from ----------------------------------------------------------


@pytest.mark.parametrize(
    ("receivers", "state", "return_mchid", "message"),
    [
        (MIXED, None, OPENID, "/return_mchid"),  # an openid is not a merchant id at all
        (
            [{"type": "PERSONAL_SUB_OPENID", "account": OTHER, "amount": 100}],
            None,
            OTHER,
            "不支持'分账给个人'的分账单发起分账回退",
        ),
        (
            [{"account": OTHER, "amount": 100, "result": "CLOSED", "fail_reason": "NO_AUTH"}],
            None,
            OTHER,
            "仅支持对分账结果为SUCCESS的接收方发起分账回退",
        ),
        (
            [{"account": OTHER, "amount": 100, "result": "PENDING"}],
            "PROCESSING",
            OTHER,
            "分账单未完成，不能发起回退",
        ),
        (
            [{"account": SUB, "amount": 100, "description": "解冻给分账方"}],
            None,
            SUB,
            "分账回退出资商户不允许和接收商户相同",
        ),
    ],
    ids=["openid", "personal_line", "closed_line", "processing_order", "unfreeze_line"],
)
def test_only_successful_merchant_lines_of_finished_orders(
    simproc, client, receivers, state, return_mchid, message
):
    order = simproc.seed_order("P-L1", receivers, sub_mchid=SUB, state=state)
    response = client.create(**return_fields(order, "R-L1", amount=1, return_mchid=return_mchid))
    if message == "/return_mchid":
        assert refused(response, client, 400, "PARAM_ERROR")["detail"]["field"] == message
    else:
        assert refused(response, client, 400, "INVALID_REQUEST")["message"] == message
    assert simproc.returns() == []


def test_caps_per_line_fifty_returns_and_180_days(simproc, client):
    order = simproc.seed_order("P-L2", MIXED[:2], sub_mchid=SUB)
    over = client.create(**return_fields(order, "R-L2-over", amount=601))
    assert refused(over, client, 400, "INVALID_REQUEST")["message"] == "剩余可回退的金额不足"
    # The other receiver's share is its own cap.
    other = return_fields(order, "R-L2-o", amount=300, return_mchid=OTHER)
    assert ok(client.create(**other), client)["result"] == "SUCCESS"
    for n in range(49):
        assert client.create(**return_fields(order, f"R-L2-{n}", amount=1)).status_code == 200
    fifty_first = client.create(**return_fields(order, "R-L2-50", amount=1))
    assert "50" in refused(fifty_first, client, 400, "INVALID_REQUEST")["message"]
    late = simproc.seed_order("P-L3", sub_mchid=SUB, amount=10)
    simproc.advance_clock(181 * DAY)
    old = client.create(**return_fields(late, "R-L3", amount=1))
    assert "180" in refused(old, client, 400, "INVALID_REQUEST")["message"]


# -- a short balance: 可用余额不足, 原单重试 -------------------------------------------------------


def short_request(order: dict, out_return_no: str = "R-S1", amount: int = 300) -> ReturnRequest:
    return ReturnRequest(
        out_return_no=out_return_no,
        return_mchid=RECEIVER,
        amount=amount,
        description="用户退款",
        out_order_no=order["out_order_no"],
        sub_mchid=SUB,
    )


def assert_short(exc: errors.APIError) -> None:
    assert (exc.status, exc.code, exc.message) == SHORT


def test_short_balance_holds_the_return_until_the_identical_request(simproc, client, wxpay):
    order = simproc.seed_order("P-S1", sub_mchid=SUB, amount=300)
    assert simproc.set_receiver_balance(RECEIVER, 100)["balance"] == 100
    with pytest.raises(errors.APIError) as info:
        wxpay.create_return(short_request(order))
    assert_short(info.value)
    # WeChat keeps it, PROCESSING, holding its amount.
    held = wxpay.query_return(out_return_no="R-S1", out_order_no="P-S1", sub_mchid=SUB)
    assert held.result == "PROCESSING" and held.fail_reason is None and held.finish_time is None
    assert (
        simproc.order("P-S1")["receivers"][0] | {"processing": 300, "returnable": 0}
        == (simproc.order("P-S1")["receivers"][0])
    )
    # A new out_return_no for the same money is the other message.
    renumbered = client.create(**return_fields(order, "R-S2", amount=300))
    assert refused(renumbered, client, 400, "INVALID_REQUEST")["message"] == "剩余可回退的金额不足"
    # The identical request while still short: the same answer, nothing changes.
    with pytest.raises(errors.APIError) as info:
        wxpay.create_return(short_request(order))
    assert_short(info.value)
    # A different request under the same number is refused as reuse.
    reused = client.create(**return_fields(order, "R-S1", amount=200))
    refused(reused, client, 400, "INVALID_REQUEST")
    # Top up, then the identical request succeeds and the balance is debited.
    simproc.set_receiver_balance(RECEIVER, 500)
    done = wxpay.create_return(short_request(order))
    assert done.result == "SUCCESS" and done.return_id == held.return_id
    assert done.create_time == held.create_time
    assert simproc.control("POST", "receivers", {"account": RECEIVER})["balance"] == 200
    assert wxpay.query_return(out_return_no="R-S1", out_order_no="P-S1", sub_mchid=SUB) == done
    sent = creates(simproc, "R-S1")
    assert [c["status"] for c in sent] == [403, 403, 400, 200]
    identical = {sent[0]["body_sha256"], sent[1]["body_sha256"], sent[3]["body_sha256"]}
    assert len(identical) == 1 and re.fullmatch(r"[0-9a-f]{64}", sent[0]["body_sha256"])
    assert sent[2]["body_sha256"] not in identical
    view = simproc.order("P-S1")["receivers"][0]
    assert (view["returned"], view["processing"], view["returnable"]) == (300, 0, 0)


def test_short_return_is_time_out_closed_after_five_days(simproc, client, wxpay):
    order = simproc.seed_order("P-S2", sub_mchid=SUB, amount=300)
    simproc.set_receiver_balance(RECEIVER, 0)
    with pytest.raises(errors.APIError) as info:
        wxpay.create_return(short_request(order, "R-S3"))
    assert_short(info.value)
    simproc.advance_clock(5 * DAY - 60)
    still = wxpay.query_return(out_return_no="R-S3", out_order_no="P-S2", sub_mchid=SUB)
    assert still.result == "PROCESSING"
    simproc.advance_clock(61)
    closed = wxpay.query_return(out_return_no="R-S3", out_order_no="P-S2", sub_mchid=SUB)
    assert (closed.result, closed.fail_reason) == ("FAILED", "TIME_OUT_CLOSED")
    assert closed.finish_time is not None
    # Final: a top-up and the identical request show the same failure, nothing moves.
    simproc.set_receiver_balance(RECEIVER, 1000)
    assert wxpay.create_return(short_request(order, "R-S3")) == closed
    assert simproc.control("POST", "receivers", {"account": RECEIVER})["balance"] == 1000
    # The held amount is free again: only a new out_return_no goes on.
    fresh = wxpay.create_return(short_request(order, "R-S4"))
    assert fresh.result == "SUCCESS"
    assert simproc.control("POST", "receivers", {"account": RECEIVER})["balance"] == 700


def test_balance_is_debited_on_success_and_given_back_on_failure(simproc, client):
    order = simproc.seed_order("P-S3", sub_mchid=SUB, amount=1000)
    simproc.set_receiver_balance(RECEIVER, 1000)
    ok(client.create(**return_fields(order, "R-S5", amount=300)), client)
    assert simproc.control("POST", "receivers", {"account": RECEIVER})["balance"] == 700
    simproc.set_fault("processing", endpoint="create", count=1, seconds=10 * DAY)
    entity = ok(client.create(**return_fields(order, "R-S6", amount=700)), client)
    assert entity["result"] == "PROCESSING"
    assert simproc.control("POST", "receivers", {"account": RECEIVER})["balance"] == 0
    simproc.advance_clock(5 * DAY + 1)
    assert ok(client.query("R-S6", "P-S3"), client)["fail_reason"] == "TIME_OUT_CLOSED"
    assert simproc.control("POST", "receivers", {"account": RECEIVER})["balance"] == 700
    # Unlimited again: no answer depends on the balance.
    assert simproc.set_receiver_balance(RECEIVER, None)["balance"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"account": RECEIVER, "balance": -1},
        {"account": RECEIVER, "balance": "100"},
        {"account": RECEIVER, "balance": True},
        {"account": RECEIVER, "balance": 1.5},
        {"account": RECEIVER, "blance": 100},
    ],
)
def test_bad_receiver_settings_are_refused(simproc, client, body):
    with pytest.raises(SimulatorError, match="400"):
        simproc.control("POST", "receivers", body)


@pytest.mark.parametrize(
    "receiver",
    [
        {"account": "1", "amount": 1, "result": "SUCCESS", "fail_reason": "NO_AUTH"},
        {"account": "1", "amount": 1, "result": "CLOSED", "fail_reason": "WHATEVER"},
        {"account": "1", "amount": 1, "description": "x" * 81},
    ],
)
def test_bad_receiver_lines_are_refused(simproc, client, receiver):
    with pytest.raises(SimulatorError, match="400"):
        simproc.seed_order("P-BAD", [receiver], sub_mchid=SUB)
    with pytest.raises(SimulatorError, match="400"):
        simproc.seed_order("P-BAD", sub_mchid=SUB, transaction_id="42-00")
