"""The simulator's ledger through real HTTP: results, idempotency, every refusal, control views."""

from __future__ import annotations

import re

import pytest
import requests

from wxpay_simulator.testing import SimulatorError

from .signed_client import RECEIVER, SUB, SignedClient, return_fields

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00")
DAY = 86400


@pytest.fixture
def order(simproc, client):
    return simproc.seed_order("P-RET-1", sub_mchid=SUB, amount=1000)


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


# -- success paths ----------------------------------------------------------------------------


def test_partner_create_and_query_return_the_same_entity(simproc, client, order):
    entity = ok(client.create(**return_fields(order, "R1", amount=300)), client)
    assert list(entity) == [
        "sub_mchid",
        "order_id",
        "out_order_no",
        "out_return_no",
        "return_id",
        "return_mchid",
        "amount",
        "description",
        "result",
        "create_time",
        "finish_time",
    ]
    assert entity["sub_mchid"] == SUB and entity["order_id"] == order["order_id"]
    assert entity["result"] == "SUCCESS" and "fail_reason" not in entity
    assert entity["amount"] == 300 and entity["description"] == "用户退款"
    assert re.fullmatch(r"\d{28}", entity["return_id"])
    assert TIME.fullmatch(entity["create_time"]) and TIME.fullmatch(entity["finish_time"])
    assert ok(client.query("R1", "P-RET-1"), client) == entity
    view = simproc.order("P-RET-1")
    assert view["receivers"][0] | {"returned": 300, "returnable": 700} == view["receivers"][0]


def test_direct_merchant_form_has_no_sub_mchid(simproc, client):
    direct = simproc.seed_order("P-DIRECT", sub_mchid=None, amount=500)
    assert direct["sub_mchid"] is None
    entity = ok(client.create(**return_fields(direct, "RD1", amount=500)), client)
    assert "sub_mchid" not in entity and entity["result"] == "SUCCESS"
    assert ok(client.query("RD1", "P-DIRECT", sub_mchid=None), client) == entity
    # The same numbers under a sub-merchant are a different (unknown) return and order.
    refused(client.query("RD1", "P-DIRECT", sub_mchid=SUB), client, 404, "RESOURCE_NOT_EXISTS")
    partner = return_fields(direct, "RD2", amount=1, sub_mchid=SUB)
    refused(client.create(**partner), client, 404, "RESOURCE_NOT_EXISTS")


def test_create_by_order_id_only_and_consistent_both(client, order):
    by_id = return_fields(order, "R-ID", amount=10, order_id=order["order_id"])
    del by_id["out_order_no"]
    entity = ok(client.create(**by_id), client)
    assert entity["out_order_no"] == "P-RET-1" and entity["order_id"] == order["order_id"]
    both = return_fields(order, "R-BOTH", amount=10, order_id=order["order_id"])
    assert ok(client.create(**both), client)["result"] == "SUCCESS"
    mismatch = return_fields(order, "R-MIS", amount=10, order_id="3008000000000000000000000000")
    refused(client.create(**mismatch), client, 404, "RESOURCE_NOT_EXISTS")


def test_empty_optional_fields_count_as_absent(client, order):
    fields = return_fields(order, "R-EMPTY", amount=5, order_id="")
    assert ok(client.create(**fields), client)["order_id"] == order["order_id"]


# -- idempotency ------------------------------------------------------------------------------


def test_same_out_return_no_same_fields_returns_the_stored_entity(simproc, client, order):
    first = ok(client.create(**return_fields(order, "R-IDEM", amount=400)), client)
    simproc.advance_clock(1.05)  # a new create_time would show
    again = ok(client.create(**return_fields(order, "R-IDEM", amount=400)), client)
    assert again == first
    by_id = return_fields(order, "R-IDEM", amount=400, order_id=order["order_id"])
    assert ok(client.create(**by_id), client) == first
    assert len(simproc.returns()) == 1
    assert simproc.order("P-RET-1")["receivers"][0]["returnable"] == 600


@pytest.mark.parametrize(
    "change",
    [{"amount": 401}, {"description": "另一个原因"}, {"return_mchid": "86693853"}],
)
def test_same_out_return_no_different_fields_is_invalid_request(client, order, change):
    ok(client.create(**return_fields(order, "R-CONFLICT", amount=400)), client)
    refused(
        client.create(**{**return_fields(order, "R-CONFLICT", amount=400), **change}),
        client,
        400,
        "INVALID_REQUEST",
    )


# -- PARAM_ERROR ------------------------------------------------------------------------------

PARAM_CASES = {
    "amount_missing": ({"amount": None}, "/amount"),
    "amount_zero": ({"amount": 0}, "/amount"),
    "amount_string": ({"amount": "10"}, "/amount"),
    "amount_float": ({"amount": 1.5}, "/amount"),
    "amount_bool": ({"amount": True}, "/amount"),
    "description_long": ({"description": "退" * 81}, "/description"),
    "description_empty": ({"description": ""}, "/description"),
    "out_return_no_chars": ({"out_return_no": "R 1"}, "/out_return_no"),
    "out_return_no_long": ({"out_return_no": "R" * 65}, "/out_return_no"),
    "out_return_no_missing": ({"out_return_no": None}, "/out_return_no"),
    "out_order_no_chars": ({"out_order_no": "P#1"}, "/out_order_no"),
    "no_order_numbers": ({"out_order_no": None}, "/out_order_no"),
    "return_mchid_missing": ({"return_mchid": None}, "/return_mchid"),
    "return_mchid_type": ({"return_mchid": 86693852}, "/return_mchid"),
    "return_mchid_openid": ({"return_mchid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}, "/return_mchid"),
    "sub_mchid_letters": ({"sub_mchid": "19000x"}, "/sub_mchid"),
}


@pytest.mark.parametrize("case", sorted(PARAM_CASES))
def test_field_validation_is_param_error_with_detail(simproc, client, order, case):
    change, field = PARAM_CASES[case]
    fields = return_fields(order, "R-PARAM", amount=10)
    for name, value in change.items():
        if value is None:
            fields.pop(name)
        else:
            fields[name] = value
    body = refused(client.create(**fields), client, 400, "PARAM_ERROR")
    assert body["detail"]["field"] == field and body["detail"]["location"] == "body"
    assert body["detail"]["issue"]
    assert simproc.returns() == []


def test_description_of_80_characters_is_accepted(client, order):
    assert ok(client.create(**return_fields(order, "R-80", description="退" * 80)), client)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_body_that_is_no_json_object_is_param_error(client, body):
    response = client.send("POST", "/v3/profitsharing/return-orders", body)
    refused(response, client, 400, "PARAM_ERROR")


def test_query_without_out_order_no_is_param_error_in_query(client, order):
    response = client.send("GET", f"/v3/profitsharing/return-orders/R1?sub_mchid={SUB}")
    body = refused(response, client, 400, "PARAM_ERROR")
    assert body["detail"] | {"field": "out_order_no", "location": "query"} == body["detail"]


# -- business refusals ------------------------------------------------------------------------


def test_unknown_order_and_unknown_return_are_404(client, order):
    unknown = return_fields(order, "R-X", out_order_no="P-NOPE")
    refused(client.create(**unknown), client, 404, "RESOURCE_NOT_EXISTS")
    refused(client.query("R-NOPE", "P-RET-1"), client, 404, "RESOURCE_NOT_EXISTS")
    ok(client.create(**return_fields(order, "R-Y", amount=1)), client)
    refused(client.query("R-Y", "P-OTHER"), client, 404, "RESOURCE_NOT_EXISTS")


@pytest.mark.parametrize(
    ("receivers", "message"),
    [
        ([{"type": "MERCHANT_ID", "account": "11111111", "amount": 100}], "回退方不存在"),
        (
            [{"type": "PERSONAL_OPENID", "account": RECEIVER, "amount": 100}],
            "不支持'分账给个人'的分账单发起分账回退",
        ),
        (
            [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 100, "result": "CLOSED"}],
            "仅支持对分账结果为SUCCESS的接收方发起分账回退",
        ),
    ],
    ids=["other_receiver", "personal_openid", "receiver_closed"],
)
def test_return_mchid_must_be_a_successful_merchant_receiver(simproc, client, receivers, message):
    order = simproc.seed_order("P-RCV", sub_mchid=SUB, receivers=receivers)
    body = refused(
        client.create(**return_fields(order, "R-RCV", amount=1)), client, 400, "INVALID_REQUEST"
    )
    assert body["message"] == message


def test_unfinished_order_cannot_be_returned(simproc, client):
    spec = {
        "sub_mchid": SUB,
        "out_order_no": "P-UNFIN",
        "state": "PROCESSING",
        "receivers": [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 100}],
    }
    order = simproc.control("POST", "orders", spec)
    refused(client.create(**return_fields(order, "R-UF", amount=1)), client, 400, "INVALID_REQUEST")


def test_receiver_without_return_permission_is_no_auth(simproc, client, order):
    simproc.mark_receiver(RECEIVER, return_enabled=False)
    body = refused(client.create(**return_fields(order, "R-NA", amount=1)), client, 403, "NO_AUTH")
    assert body["message"] == "回退方未开通分账回退功能"
    simproc.mark_receiver(RECEIVER, return_enabled=True)
    ok(client.create(**return_fields(order, "R-NA", amount=1)), client)


def test_amount_over_what_is_left_is_invalid_request(simproc, client, order):
    over = refused(
        client.create(**return_fields(order, "R-OVER", amount=1001)), client, 400, "INVALID_REQUEST"
    )
    assert over["message"] == "剩余可回退的金额不足"
    ok(client.create(**return_fields(order, "R-A", amount=600)), client)
    second = client.create(**return_fields(order, "R-B", amount=401))
    assert refused(second, client, 400, "INVALID_REQUEST")["message"] == "剩余可回退的金额不足"
    ok(client.create(**return_fields(order, "R-C", amount=400)), client)
    assert simproc.order("P-RET-1")["receivers"][0]["returnable"] == 0


def test_returnable_is_per_receiver(simproc, client):
    receivers = [
        {"type": "MERCHANT_ID", "account": RECEIVER, "amount": 100},
        {"type": "MERCHANT_ID", "account": "86693853", "amount": 50},
    ]
    order = simproc.seed_order("P-TWO", sub_mchid=SUB, receivers=receivers)
    ok(client.create(**return_fields(order, "R-T1", amount=100)), client)
    other = return_fields(order, "R-T2", amount=50, return_mchid="86693853")
    ok(client.create(**other), client)
    too_much = return_fields(order, "R-T3", amount=1, return_mchid="86693853")
    refused(client.create(**too_much), client, 400, "INVALID_REQUEST")


def test_at_most_fifty_returns_per_order(simproc, client, order):
    for n in range(50):
        assert client.create(**return_fields(order, f"R-N{n}", amount=1)).status_code == 200
    body = refused(
        client.create(**return_fields(order, "R-N50", amount=1)), client, 400, "INVALID_REQUEST"
    )
    assert "50" in body["message"]
    # An idempotent retry of an existing one still answers.
    assert ok(client.create(**return_fields(order, "R-N7", amount=1)), client)["amount"] == 1


def test_returns_end_180_days_after_the_split(simproc, client, order):
    simproc.advance_clock(181 * DAY)
    refused(
        client.create(**return_fields(order, "R-OLD", amount=1)), client, 400, "INVALID_REQUEST"
    )


# -- results over time ------------------------------------------------------------------------


def test_processing_then_success_with_finish_time(simproc, client, order):
    simproc.configure(processing_seconds=1.0)
    entity = ok(client.create(**return_fields(order, "R-P", amount=700)), client)
    assert entity["result"] == "PROCESSING"
    assert "finish_time" not in entity and "fail_reason" not in entity
    # PROCESSING holds its amount.
    held = client.create(**return_fields(order, "R-P2", amount=301))
    refused(held, client, 400, "INVALID_REQUEST")
    assert ok(client.query("R-P", "P-RET-1"), client)["result"] == "PROCESSING"
    simproc.advance_clock(1.05)
    final = ok(client.query("R-P", "P-RET-1"), client)
    assert final["result"] == "SUCCESS" and TIME.fullmatch(final["finish_time"])
    assert final["create_time"] == entity["create_time"]
    assert simproc.returns()[0]["result"] == "SUCCESS"


def test_abnormal_receiver_while_processing_fails_and_frees_the_amount(simproc, client, order):
    simproc.configure(processing_seconds=1.0)
    ok(client.create(**return_fields(order, "R-AB", amount=1000)), client)
    simproc.mark_receiver(RECEIVER, abnormal=True)
    simproc.mark_receiver(RECEIVER, abnormal=False)  # too late: already doomed
    simproc.advance_clock(1.05)
    final = ok(client.query("R-AB", "P-RET-1"), client)
    assert final["result"] == "FAILED" and final["fail_reason"] == "ACCOUNT_ABNORMAL"
    assert "finish_time" in final
    simproc.configure(processing_seconds=0)
    assert ok(client.create(**return_fields(order, "R-AB2", amount=1000)), client)["result"] == (
        "SUCCESS"
    )


def test_abnormal_receiver_at_creation_fails_at_once(simproc, client, order):
    simproc.mark_receiver(RECEIVER, abnormal=True)
    entity = ok(client.create(**return_fields(order, "R-AB0", amount=10)), client)
    assert entity["result"] == "FAILED" and entity["fail_reason"] == "ACCOUNT_ABNORMAL"


def test_processing_over_five_days_is_time_out_closed(simproc, client, order):
    simproc.set_fault("processing", endpoint="create", count=1, seconds=10 * DAY)
    entity = ok(client.create(**return_fields(order, "R-TO", amount=10)), client)
    assert entity["result"] == "PROCESSING"
    simproc.advance_clock(5 * DAY + 1)
    final = ok(client.query("R-TO", "P-RET-1"), client)
    assert final["result"] == "FAILED" and final["fail_reason"] == "TIME_OUT_CLOSED"


# -- control surface --------------------------------------------------------------------------


def test_bulk_seed_order_view_and_reset(simproc, client):
    orders = [
        {
            "sub_mchid": SUB,
            "out_order_no": f"P-BULK-{n}",
            "receivers": [{"type": "MERCHANT_ID", "account": RECEIVER, "amount": 10}],
        }
        for n in range(200)
    ]
    assert simproc.seed_orders(orders) == 200
    view = simproc.order("P-BULK-7", sub_mchid=SUB)
    assert view["state"] == "FINISHED" and re.fullmatch(r"\d{28}", view["order_id"])
    assert view["receivers"][0]["returnable"] == 10
    ok(client.create(**return_fields(view, "R-BULK", amount=4)), client)
    receiver = simproc.order("P-BULK-7")["receivers"][0]
    assert (receiver["returned"], receiver["returnable"]) == (4, 6)
    simproc.reset()
    assert simproc.returns() == [] and simproc.calls() == []
    with pytest.raises(SimulatorError, match="404"):
        simproc.order("P-BULK-7")


def test_seed_with_given_order_id_and_reseed_keeps_it(simproc, client):
    first = simproc.seed_order("P-OID", sub_mchid=SUB, order_id="4200000000000000000000000001")
    assert first["order_id"] == "4200000000000000000000000001"
    again = simproc.seed_order("P-OID", sub_mchid=SUB, amount=5000)
    assert again["order_id"] == first["order_id"]
    assert again["receivers"][0]["amount"] == 5000


@pytest.mark.parametrize(
    "spec",
    [
        {"out_order_no": "P", "receivers": []},
        {"out_order_no": "", "receivers": [{"account": "1", "amount": 1}]},
        {"out_order_no": "P", "receivers": [{"account": "1", "amount": 0}]},
        {"out_order_no": "P", "receivers": [{"type": "BANK", "account": "1", "amount": 1}]},
        {"out_order_no": "P", "sub_mchid": "abc", "receivers": [{"account": "1", "amount": 1}]},
    ],
)
def test_bad_seed_specs_are_refused(simproc, client, spec):
    with pytest.raises(SimulatorError, match="400"):
        simproc.control("POST", "orders", spec)


def test_calls_log_every_v3_call_with_since(simproc, client, order):
    ok(client.create(**return_fields(order, "R-LOG", amount=1)), client)
    first = simproc.calls()
    assert len(first) == 1
    call = first[0]
    assert (
        call
        | {
            "method": "POST",
            "path": "/v3/profitsharing/return-orders",
            "target": "/v3/profitsharing/return-orders",
            "status": 200,
            "code": None,
            "out_return_no": "R-LOG",
            "fault": None,
            "executed": True,
        }
        == call
    )
    assert call["request_id"] and call["time"] > 0
    client.query("R-LOG", "P-RET-1")
    client.send("GET", "/v3/profitsharing/return-orders")
    newer = simproc.calls(since=call["seq"])
    assert [(c["method"], c["status"]) for c in newer] == [("GET", 200), ("GET", 405)]
    assert newer[0]["out_return_no"] == "R-LOG"


def test_config_changes_are_validated_and_applied(simproc, client):
    current = simproc.configure(processing_seconds=1.5, latency_ms=0)
    assert current["processing_seconds"] == 1.5 and current["mode"] == "public-key"
    for bad in ({"mode": "x"}, {"qps_limit": -1}, {"nope": 1}, {"latency_ms": "1"}):
        with pytest.raises(SimulatorError, match="400"):
            simproc.configure(**bad)


def test_control_errors(simproc, client):
    with pytest.raises(SimulatorError, match="404"):
        simproc.control("GET", "nope")
    with pytest.raises(SimulatorError, match="405"):
        simproc.control("DELETE", "orders")
    with pytest.raises(SimulatorError, match="400"):
        simproc.control("POST", "receivers", {"account": ""})
    with pytest.raises(SimulatorError, match="400"):
        simproc.calls(since="x")  # type: ignore[arg-type]
    assert simproc.control("GET", "health")["status"] == "ok"
