"""Clawbacks, sharing orders, retry now and claw back again over REST, against the simulator."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from rest_framework.test import APIClient

from django_wxpay_profitsharing import services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import (
    ProfitSharingClawback,
    ProfitSharingOrder,
    ProfitSharingReturn,
    ReturnState,
)

from .conftest import SUB_MCHID, unique_no, wxpay_config

pytestmark = pytest.mark.django_db(transaction=True)
CLAWBACKS = "/api/wxpay/clawbacks/"
ORDERS = "/api/wxpay/orders/"
RETURNS = "/api/wxpay/returns/"
BY_NO = f"{RETURNS}by-out-return-no/"
SHOP_A, SHOP_B, PERSON = "86693852", "86693853", "o-personal-openid-1"
#: Everything a clawback operator may need.
OPERATOR = (
    "view_profitsharingclawback", "add_profitsharingclawback", "submit_profitsharingclawback",
    "view_profitsharingreturn", "add_profitsharingreturn", "submit_profitsharingreturn",
    "view_profitsharingorder", "add_profitsharingorder",
)  # fmt: skip


def api_user(username="operator", perms=OPERATOR):
    user = User.objects.create_user(username, password="pw")
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=user.pk))
    return client


@pytest.fixture
def shared(configured):
    """A FINISHED sharing order: 600 and 300 fen to two shops, 100 to a person."""
    return configured.seed_order(
        unique_no("PC"),
        receivers=[
            {"account": SHOP_A, "amount": 600, "type": "MERCHANT_ID", "result": "SUCCESS"},
            {"account": SHOP_B, "amount": 300, "type": "MERCHANT_ID", "result": "SUCCESS"},
            {"account": PERSON, "amount": 100, "type": "PERSONAL_OPENID", "result": "SUCCESS"},
        ],
        sub_mchid=SUB_MCHID,
    )


def clawback_body(order, **extra):
    body = {
        "out_clawback_no": "C1",
        "out_order_no": order["out_order_no"],
        "transaction_id": order["transaction_id"],
        "sub_mchid": SUB_MCHID,
        "description": "refund 1",
    }
    body.update(extra)
    return body


def posts(sim):
    return [c for c in sim.calls() if c["method"] == "POST"]


# ------------------------------------------------------------------ create


def test_create_allocates_excludes_the_person_and_is_idempotent(configured, shared, signal_log):
    client = api_user()
    first = client.post(CLAWBACKS, clawback_body(shared, amount=300), format="json")
    assert first.status_code == 201, first.data
    data = first.data
    assert (data["amount"], data["requested_amount"], data["policy"]) == (300, 300, "proportional")
    parts = {r["return_mchid"]: r["amount"] for r in data["returns"]}
    assert parts == {SHOP_A: 200, SHOP_B: 100}  # in proportion; the person left out
    assert {r["state"] for r in data["returns"]} == {"succeeded"}  # sent at once, after commit
    assert all(r["out_return_no"] for r in data["returns"])
    assert len(posts(configured)) == 2

    again = client.post(CLAWBACKS, clawback_body(shared, amount=300), format="json")
    assert again.status_code == 200 and again.data["id"] == data["id"]
    assert len(posts(configured)) == 2 and ProfitSharingReturn.objects.count() == 2

    conflict = client.post(CLAWBACKS, clawback_body(shared, amount=301), format="json")
    assert conflict.status_code == 409
    assert conflict.data["code"] == "conflict" and conflict.data["existing"] == data["id"]
    assert "requested_amount" in conflict.data["out_clawback_no"][0]
    detail = client.get(f"{CLAWBACKS}{data['id']}/").data
    assert len(detail["returns"]) == 2


def test_the_clawback_state_follows_its_returns_over_rest(configured, shared):
    client = api_user()
    created = client.post(CLAWBACKS, clawback_body(shared, amount=300), format="json").data
    assert {r["state"] for r in created["returns"]} == {"succeeded"}
    assert client.get(f"{CLAWBACKS}{created['id']}/").data["state"] == "completed"


def test_everything_returnable_when_no_amount(configured, shared):
    response = api_user().post(CLAWBACKS, clawback_body(shared), format="json")
    assert response.status_code == 201, response.data
    assert response.data["amount"] == 900 and response.data["requested_amount"] is None


def test_over_asking_is_a_field_error_with_nothing_created_or_sent(configured, shared):
    response = api_user().post(CLAWBACKS, clawback_body(shared, amount=901), format="json")
    assert response.status_code == 400 and "amount" in response.data, response.data
    assert ProfitSharingClawback.objects.count() == 0
    assert ProfitSharingReturn.objects.count() == 0
    assert posts(configured) == []  # the order was queried (synced), nothing was sent


def test_in_order_takes_from_the_accounts_in_turn(configured, shared):
    client = api_user()
    body = clawback_body(shared, amount=400, policy="in_order", accounts=[SHOP_B, SHOP_A])
    response = client.post(CLAWBACKS, body, format="json")
    assert response.status_code == 201, response.data
    assert {r["return_mchid"]: r["amount"] for r in response.data["returns"]} == {
        SHOP_B: 300,
        SHOP_A: 100,
    }
    personal = clawback_body(shared, out_clawback_no="C2", policy="in_order", accounts=[PERSON])
    refused = client.post(CLAWBACKS, personal, format="json")
    assert refused.status_code == 400 and "accounts" in refused.data
    missing = clawback_body(shared, out_clawback_no="C3", policy="in_order")
    assert "accounts" in client.post(CLAWBACKS, missing, format="json").data


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "100"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": 0}, "amount"),
        ({"policy": "greedy"}, "policy"),
        ({"accounts": "86693852"}, "accounts"),
        ({"out_clawback_no": "a b"}, "out_clawback_no"),
        ({"transaction_id": "x" * 40}, "transaction_id"),
        ({"sub_mchid": "abc"}, "sub_mchid"),
        ({"state": "completed"}, "state"),  # read-only
        ({"returns": []}, "returns"),  # read-only
        ({"amont": 1}, "amont"),  # a typo is never dropped
    ],
)
def test_bad_fields_are_named_and_nothing_is_asked(configured, shared, change, field):
    body = clawback_body(shared, **change)
    response = api_user().post(CLAWBACKS, body, format="json")
    assert response.status_code == 400 and field in response.data, response.data
    assert ProfitSharingClawback.objects.count() == 0 and configured.calls() == []


def test_out_clawback_no_is_required(configured, shared):
    body = clawback_body(shared)
    del body["out_clawback_no"]
    response = api_user().post(CLAWBACKS, body, format="json")
    assert response.status_code == 400 and "out_clawback_no" in response.data


def test_an_unknown_order_is_a_400_naming_out_order_no(configured, shared):
    body = clawback_body(shared, out_order_no="NO-SUCH-ORDER")
    response = api_user().post(CLAWBACKS, body, format="json")
    assert response.status_code == 400 and "out_order_no" in response.data, response.data
    assert ProfitSharingOrder.objects.count() == 0


def test_wechat_pay_unavailable_is_a_503(configured, shared):
    configured.set_fault("http_500", endpoint="order_query")
    response = api_user().post(CLAWBACKS, clawback_body(shared), format="json")
    assert response.status_code == 503, response.data
    assert "try again" in response.data["detail"].lower()
    assert ProfitSharingClawback.objects.count() == 0


# --------------------------------------------------------- drafts and submit


def test_an_adder_gets_drafts_and_a_submitter_sends_them(configured, shared):
    adder = api_user("adder", ("view_profitsharingclawback", "add_profitsharingclawback"))
    created = adder.post(CLAWBACKS, clawback_body(shared, amount=90), format="json")
    assert created.status_code == 201, created.data
    assert {r["state"] for r in created.data["returns"]} == {"draft"}
    assert posts(configured) == []
    url = f"{CLAWBACKS}{created.data['id']}/submit/"
    assert adder.post(url, content_type="application/json").status_code == 403

    half = api_user("half", ("view_profitsharingclawback", "submit_profitsharingclawback"))
    assert (
        half.post(url, content_type="application/json").status_code == 403
    )  # may_submit wants the return permission too
    assert posts(configured) == []

    submitted = api_user().post(url, content_type="application/json")
    assert submitted.status_code == 200, submitted.data
    assert {r["state"] for r in submitted.data["returns"]} == {"succeeded"}
    assert submitted.data["state"] == "completed"
    assert len(posts(configured)) == 2


def test_submit_on_create_off_gives_drafts(sim, shared):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, SUBMIT_ON_CREATE=False)):
        response = api_user().post(CLAWBACKS, clawback_body(shared, amount=90), format="json")
    reset_client()
    assert {r["state"] for r in response.data["returns"]} == {"draft"}


# ---------------------------------------------------------------- reading


def test_list_filters_and_detail(configured, shared):
    client = api_user()
    client.post(CLAWBACKS, clawback_body(shared, amount=90), format="json")
    other = configured.seed_order(unique_no("PD"), sub_mchid=SUB_MCHID, amount=500)
    client.post(CLAWBACKS, clawback_body(other, out_clawback_no="C2", amount=5), format="json")
    assert len(client.get(CLAWBACKS).data["results"]) == 2
    only = client.get(CLAWBACKS, {"out_order_no": other["out_order_no"]}).data["results"]
    assert [c["out_clawback_no"] for c in only] == ["C2"]
    states = {c["state"] for c in client.get(CLAWBACKS).data["results"]}
    for state in states:
        assert len(client.get(CLAWBACKS, {"state": state}).data["results"]) == 2
    assert client.get(CLAWBACKS, {"state": ["open", "completed"]}).status_code == 200
    assert client.get(CLAWBACKS, {"state": "lost"}).status_code == 400
    page = client.get(CLAWBACKS, {"page_size": 1})
    assert len(page.data["results"]) == 1 and page.data["next"]
    assert client.get(f"{CLAWBACKS}999999/").status_code == 404
    assert client.get(f"{CLAWBACKS}{2**63}/").status_code == 404


def test_orders_sync_and_ledger(configured, shared):
    client = api_user()
    assert client.get(ORDERS).status_code == 400  # out_order_no is required
    assert client.get(ORDERS, {"out_order_no": shared["out_order_no"]}).data == []
    body = {k: shared[k] for k in ("out_order_no", "transaction_id")}
    synced = client.post(f"{ORDERS}sync/", {**body, "sub_mchid": SUB_MCHID}, format="json")
    assert synced.status_code == 200, synced.data
    assert synced.data["state"] == "FINISHED" and synced.data["synced_at"]
    lines = {line["account"]: line for line in synced.data["receivers"]}
    assert (lines[SHOP_A]["shared"], lines[SHOP_A]["returnable"]) == (600, 600)
    assert (lines[PERSON]["returnable"], lines[PERSON]["blocked"]) == (0, "personal")
    assert "personal" in lines[PERSON]["blocked_reason"]

    client.post(CLAWBACKS, clawback_body(shared, amount=300), format="json")
    [order] = client.get(ORDERS, {"out_order_no": shared["out_order_no"]}).data
    lines = {line["account"]: line for line in order["receivers"]}
    assert (lines[SHOP_A]["returned"], lines[SHOP_A]["returnable"]) == (200, 400)
    assert (lines[SHOP_B]["returned"], lines[SHOP_B]["returnable"]) == (100, 200)

    unknown = client.post(f"{ORDERS}sync/", {**body, "out_order_no": "NOPE"}, format="json")
    assert unknown.status_code == 400 and "out_order_no" in unknown.data
    extra = client.post(f"{ORDERS}sync/", {**body, "amount": 1}, format="json")
    assert extra.status_code == 400 and "amount" in extra.data


# --------------------------------------------------- retry now, claw back again


def short_balance_return(sim, shared, client):
    """A clawback whose one return waits, PROCESSING, for SHOP_A to top up."""
    sim.set_receiver_balance(SHOP_A, 50)
    body = clawback_body(shared, amount=100, policy="in_order", accounts=[SHOP_A])
    created = client.post(CLAWBACKS, body, format="json")
    assert created.status_code == 201, created.data
    [ret] = created.data["returns"]
    assert (ret["state"], ret["awaiting_topup"]) == ("processing", True), ret
    return ProfitSharingReturn.objects.get(pk=ret["id"])


@pytest.mark.parametrize("route", ["pk", "out_return_no"])
def test_retry_now_after_a_top_up_resends_the_identical_request(configured, shared, route):
    client = api_user()
    row = short_balance_return(configured, shared, client)
    url = f"{RETURNS}{row.pk}/retry/" if route == "pk" else f"{BY_NO}{row.out_return_no}/retry/"
    waiting = client.get(RETURNS, {"awaiting_topup": "true"}).data["results"]
    assert [r["id"] for r in waiting] == [row.pk]
    assert client.get(RETURNS, {"awaiting_topup": "maybe"}).status_code == 400
    configured.set_receiver_balance(SHOP_A, 10_000)
    retried = client.post(url, content_type="application/json")
    assert retried.status_code == 200, retried.data
    assert (retried.data["state"], retried.data["awaiting_topup"]) == ("succeeded", False)
    assert retried.data["clawback"] == row.clawback_id
    sent = [c for c in posts(configured) if c.get("out_return_no") == row.out_return_no]
    assert len(sent) == 2 and sent[0]["body_sha256"] == sent[1]["body_sha256"]
    assert ProfitSharingReturn.objects.count() == 1
    again = client.post(url, content_type="application/json")  # no longer waiting
    assert again.status_code == 409 and again.data["code"] == "not_waiting"


def test_claw_back_again_after_time_out_closed(configured, shared):
    client = api_user()
    row = short_balance_return(configured, shared, client)
    refused = client.post(f"{RETURNS}{row.pk}/claw-back-again/", content_type="application/json")
    assert refused.status_code == 400 and "state" in refused.data  # still processing
    configured.advance_clock(5 * 86400 + 60)
    row = services.refresh(row)
    assert (row.state, row.fail_reason) == (ReturnState.FAILED, "TIME_OUT_CLOSED")
    assert client.get(f"{CLAWBACKS}{row.clawback_id}/").data["state"] == "incomplete"
    configured.set_receiver_balance(SHOP_A, None)
    again = client.post(f"{RETURNS}{row.pk}/claw-back-again/", content_type="application/json")
    assert again.status_code == 201, again.data
    new = again.data
    assert new["replaces"] == row.pk and new["clawback"] == row.clawback_id
    assert new["out_return_no"] != row.out_return_no and new["amount"] == 100
    assert new["state"] == "succeeded"
    assert client.get(f"{CLAWBACKS}{row.clawback_id}/").data["state"] == "completed"
    twice = client.post(f"{RETURNS}{row.pk}/claw-back-again/", content_type="application/json")
    assert twice.status_code == 400 and "replaces" in twice.data


def test_the_return_serializer_shows_the_clawback_links(configured, shared):
    client = api_user()
    created = client.post(CLAWBACKS, clawback_body(shared, amount=9), format="json").data
    ret = client.get(f"{RETURNS}{created['returns'][0]['id']}/").data
    assert ret["clawback"] == created["id"] and ret["replaces"] is None
    assert ret["awaiting_topup"] is False and "wechat_order_id" in ret
    read_only = client.post(RETURNS, {"clawback": 1}, format="json")
    assert read_only.status_code == 400 and "clawback" in read_only.data


# --------------------------------------------------------------- permissions


def test_every_new_route_needs_its_permission(configured, shared):
    """Anonymous, reader, adder and submitter on each route: refused, or allowed."""
    owner = api_user()
    clawback = owner.post(CLAWBACKS, clawback_body(shared, amount=9), format="json").data
    ret = clawback["returns"][0]
    calls_before = len(configured.calls())
    sync_body = {k: shared[k] for k in ("out_order_no", "transaction_id")}
    routes = {
        # route: (call, the permissions that allow it)
        "clawback list": (lambda c: c.get(CLAWBACKS), {"view_profitsharingclawback"}),
        "clawback detail": (
            lambda c: c.get(f"{CLAWBACKS}{clawback['id']}/"),
            {"view_profitsharingclawback"},
        ),
        "clawback create": (
            lambda c: c.post(
                CLAWBACKS, clawback_body(shared, out_clawback_no="CX", amount=1), format="json"
            ),
            {"add_profitsharingclawback"},
        ),
        "clawback submit": (
            lambda c: c.post(
                f"{CLAWBACKS}{clawback['id']}/submit/", content_type="application/json"
            ),
            {"submit_profitsharingclawback"},
        ),
        "order list": (
            lambda c: c.get(ORDERS, {"out_order_no": shared["out_order_no"]}),
            {"view_profitsharingorder"},
        ),
        "order sync": (
            lambda c: c.post(
                f"{ORDERS}sync/", {**sync_body, "sub_mchid": SUB_MCHID}, format="json"
            ),
            {"add_profitsharingorder"},
        ),
        "retry": (
            lambda c: c.post(f"{RETURNS}{ret['id']}/retry/", content_type="application/json"),
            {"submit_profitsharingreturn"},
        ),
        "retry by number": (
            lambda c: c.post(
                f"{BY_NO}{ret['out_return_no']}/retry/", content_type="application/json"
            ),
            {"submit_profitsharingreturn"},
        ),
        "claw back again": (
            lambda c: c.post(
                f"{RETURNS}{ret['id']}/claw-back-again/", content_type="application/json"
            ),
            {"add_profitsharingreturn"},
        ),
        "claw back again by number": (
            lambda c: c.post(
                f"{BY_NO}{ret['out_return_no']}/claw-back-again/", content_type="application/json"
            ),
            {"add_profitsharingreturn"},
        ),
    }
    users = {
        "anonymous": None,
        "reader": {"view_profitsharingclawback", "view_profitsharingorder",
                   "view_profitsharingreturn"},
        "adder": {"add_profitsharingclawback", "add_profitsharingorder",
                  "add_profitsharingreturn"},
        "submitter": {"submit_profitsharingclawback", "submit_profitsharingreturn"},
    }  # fmt: skip
    for who, perms in users.items():
        client = APIClient() if perms is None else api_user(who, perms)
        for route, (call, needed) in routes.items():
            rows = (ProfitSharingClawback.objects.count(), ProfitSharingReturn.objects.count())
            response = call(client)
            if perms is not None and needed <= perms:
                # allowed: the answer is the route's own (a 409 or 400 on this
                # succeeded return is the route speaking, not the permission)
                assert response.status_code not in (401, 403), (who, route, response.data)
                continue
            assert response.status_code in ((401, 403) if perms is None else (403,)), (
                who,
                route,
                response.status_code,
            )
            assert rows == (
                ProfitSharingClawback.objects.count(),
                ProfitSharingReturn.objects.count(),
            ), (who, route)
    # Only the allowed calls reached WeChat Pay: the adder's clawback (sync + nothing
    # sent: a draft) and order sync, the adder's sync; nobody else's.
    assert all(c["method"] == "GET" for c in configured.calls()[calls_before:])
