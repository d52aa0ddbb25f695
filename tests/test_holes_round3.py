"""Holes found by the third attack (issue 20), each through the API, the admin or the code
a shop calls, against the simulator. Scoping (item 4) is ``test_merchant_scope.py``;
REPEATABLE READ (item 3) is ``test_isolation.py``; a large Submit approved in the
background (item 13) is ``test_desk_doors.py``.
"""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from django_wxpay_profitsharing import clawbacks, desk, order_sync, services
from django_wxpay_profitsharing.answers import AnswerMismatch
from django_wxpay_profitsharing.models import (
    ClawbackState,
    ProfitSharingClawback,
    ProfitSharingEvent,
    ProfitSharingOrder,
    ProfitSharingOrderReceiver,
    ProfitSharingReturn,
    ReturnState,
)

from .conftest import SUB_MCHID, unique_no
from .test_attack_holes import CraftedAnswers, crafted_client, wechat_key  # noqa: F401
from .test_clawbacks_api import (
    CLAWBACKS,
    OPERATOR,
    PERSON,
    RETURNS,
    SHOP_A,
    SHOP_B,
    api_user,
    clawback_body,
    shared,  # noqa: F401
)

pytestmark = pytest.mark.django_db(transaction=True)
ADMIN_RETURNS = "/admin/wxpay_profitsharing/profitsharingreturn/"


def drafts_of(client, order, **extra):
    """A clawback made by an adder only: its returns are drafts."""
    body = clawback_body(order, out_clawback_no=unique_no("CD"), **extra)
    made = client.post(CLAWBACKS, body, format="json")
    assert made.status_code == 201, made.data
    assert {r["state"] for r in made.data["returns"]} == {"draft"}
    return ProfitSharingClawback.objects.get(pk=made.data["id"])


def adder():
    return api_user(unique_no("adder"), [p for p in OPERATOR if not p.startswith("submit")])


# ------------------------------------------ 1. "completed" means the money is back


def test_a_clawbacks_return_is_frozen_to_its_allocation_in_the_admin(configured, shared):  # noqa: F811
    clawback = drafts_of(adder(), shared, amount=300)
    row = clawback.returns.order_by("pk").first()
    staff = User.objects.create_user("editor", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename__endswith="profitsharingreturn"))
    client = Client()
    client.force_login(staff)
    edit = client.post(
        f"{ADMIN_RETURNS}{row.pk}/change/",
        {"mchid": row.mchid, "sub_mchid": SUB_MCHID, "out_order_no": "POTHER",
         "return_mchid": row.return_mchid, "amount_yuan": "20.00", "description": "moved"},
    )  # fmt: skip
    assert edit.status_code in (200, 302, 403)
    assert client.post(f"{ADMIN_RETURNS}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    client.post(ADMIN_RETURNS, {"action": "delete_selected", "_selected_action": [row.pk],
                                "post": "yes"})  # fmt: skip
    assert not services.update_draft(row, amount=2000)
    row.refresh_from_db()
    assert (row.amount, row.out_order_no, row.description) == (200, shared["out_order_no"],
                                                                "refund 1")  # fmt: skip
    assert clawback.returns.count() == 2


def test_approval_checks_a_clawbacks_return_against_the_ledger_again(configured, shared):  # noqa: F811
    clawback = drafts_of(adder(), shared, amount=300)
    row = clawback.returns.get(return_mchid=SHOP_A)
    # However the row came to ask for more than the receiver got (an edit the admin used
    # to allow), approval reads the ledger again: 400 naming the amount, nothing sent.
    ProfitSharingReturn.objects.filter(pk=row.pk).update(amount=2000)
    response = api_user("approver").post(
        f"{RETURNS}{row.pk}/submit/", content_type="application/json"
    )
    assert response.status_code == 400 and "amount" in response.data, response.data
    row.refresh_from_db()
    assert row.state == ReturnState.DRAFT
    assert not [c for c in configured.calls() if c["method"] == "POST"]


def test_completed_only_when_the_succeeded_returns_add_up_to_the_amount(
    configured,
    shared,  # noqa: F811
):
    clawback = drafts_of(adder(), shared, amount=300)
    short = clawback.returns.get(return_mchid=SHOP_A)
    ProfitSharingReturn.objects.filter(pk=short.pk).update(amount=short.amount - 1)
    sent = api_user("approver").post(
        f"{CLAWBACKS}{clawback.pk}/submit/", content_type="application/json"
    )
    assert sent.status_code == 200, sent.data
    assert {r["state"] for r in sent.data["returns"]} == {"succeeded"}
    clawback.refresh_from_db()
    assert clawback.state == ClawbackState.INCOMPLETE  # 299 back of 300: not "completed"
    events = ProfitSharingEvent.objects.filter(clawback=clawback)
    assert set(events.values_list("signal", flat=True)) == {"clawback_incomplete"}


def test_a_clawback_is_cancelled_as_a_whole_while_nothing_was_sent(configured, shared):  # noqa: F811
    clawback = drafts_of(adder(), shared, amount=300)
    canceller = api_user("canceller", [*OPERATOR, "cancel_profitsharingclawback"])
    refused = api_user("nocancel").post(
        f"{CLAWBACKS}{clawback.pk}/cancel/", content_type="application/json"
    )
    assert refused.status_code == 403
    done = canceller.post(f"{CLAWBACKS}{clawback.pk}/cancel/", content_type="application/json")
    assert done.status_code == 200 and done.data["state"] == "cancelled", done.data
    assert done.data["returns"] == [] and not ProfitSharingReturn.objects.exists()
    # What it reserved is free again: a new clawback takes the whole 900.
    again = canceller.post(CLAWBACKS, clawback_body(shared, out_clawback_no="CNEW"), format="json")
    assert again.status_code == 201 and again.data["amount"] == 900, again.data
    sent = ProfitSharingClawback.objects.get(out_clawback_no="CNEW")
    late = canceller.post(f"{CLAWBACKS}{sent.pk}/cancel/", content_type="application/json")
    assert late.status_code == 400 and "state" in late.data


# --------------------------------------------------------- 5. the 50-return cap


def test_a_multi_receiver_clawback_never_passes_fifty_returns(configured, shared):  # noqa: F811
    order = ProfitSharingOrder.objects.none()  # made by the first sync below
    client = api_user()
    for _ in range(49):  # 49 + one return per merchant receiver (2) would be 51
        services.create_return(
            sub_mchid=SUB_MCHID, out_order_no=shared["out_order_no"], return_mchid=SHOP_A,
            amount=1, description="one of 49", check_ledger=False,
        )  # fmt: skip
    over = client.post(CLAWBACKS, clawback_body(shared, amount=10), format="json")
    assert over.status_code == 400 and "out_order_no" in over.data, over.data
    assert "50" in str(over.data["out_order_no"])
    order = ProfitSharingOrder.objects.get(out_order_no=shared["out_order_no"])
    assert not order.clawbacks.exists() and ProfitSharingReturn.objects.count() == 49


# ------------------------------------- 6. refused approvals are answers, not 500s


def test_bulk_submit_lists_the_refused_and_goes_on(configured, shared):  # noqa: F811
    clawback = drafts_of(adder(), shared, amount=300)
    a, b = clawback.returns.get(return_mchid=SHOP_A), clawback.returns.get(return_mchid=SHOP_B)
    ProfitSharingReturn.objects.filter(pk=a.pk).update(amount=5000)
    response = api_user("approver").post(
        f"{RETURNS}bulk-submit/", {"ids": [a.pk, b.pk]}, format="json"
    )
    assert response.status_code == 200, response.data
    assert [r["id"] for r in response.data["results"]] == [b.pk]
    [refused] = response.data["refused"]
    assert (refused["id"], refused["field"]) == (a.pk, "amount")
    a.refresh_from_db()
    assert a.state == ReturnState.DRAFT


def test_the_admins_submit_lists_the_refused_and_goes_on(configured, shared):  # noqa: F811
    clawback = drafts_of(adder(), shared, amount=300)
    a, b = clawback.returns.get(return_mchid=SHOP_A), clawback.returns.get(return_mchid=SHOP_B)
    ProfitSharingReturn.objects.filter(pk=a.pk).update(amount=5000)
    boss = User.objects.create_superuser("boss", password="pw")
    client = Client()
    client.force_login(boss)
    response = client.post(
        ADMIN_RETURNS,
        {"action": "submit_to_wechat_pay", "_selected_action": [a.pk, b.pk], "post": "yes"},
        follow=True,
    )
    said = " | ".join(str(m) for m in response.context["messages"])
    assert response.status_code == 200
    assert "1 return succeeded." in said and "1 return was refused" in said, said
    assert a.out_return_no in said


# ---------------------------------- 7. a sync replaces the line set; claw back again syncs


def test_a_sync_drops_receivers_wechat_no_longer_lists(configured, shared):  # noqa: F811
    desk.sync_order(out_order_no=shared["out_order_no"], transaction_id=shared["transaction_id"],
                    sub_mchid=SUB_MCHID, by=None)  # fmt: skip
    configured.seed_order(
        shared["out_order_no"],
        receivers=[{"account": SHOP_A, "amount": 600, "type": "MERCHANT_ID", "result": "SUCCESS"}],
        sub_mchid=SUB_MCHID,
        transaction_id=shared["transaction_id"],
    )
    order = desk.sync_order(
        out_order_no=shared["out_order_no"], transaction_id=shared["transaction_id"],
        sub_mchid=SUB_MCHID, by=None,
    )  # fmt: skip
    assert set(order.receivers.values_list("account", flat=True)) == {SHOP_A}
    made = api_user().post(CLAWBACKS, clawback_body(shared), format="json")
    assert made.status_code == 201 and made.data["amount"] == 600, made.data
    assert {r["return_mchid"] for r in made.data["returns"]} == {SHOP_A}
    assert PERSON and SHOP_B not in ProfitSharingOrderReceiver.objects.values_list(
        "account", flat=True
    )


# -------------------------- 8. an answer about another order is never stored as this one


def test_an_answer_naming_another_order_writes_nothing(configured, shared, wechat_key, monkeypatch):  # noqa: F811
    answer = {
        "sub_mchid": SUB_MCHID, "transaction_id": shared["transaction_id"],
        "out_order_no": "PSOMEONE-ELSES", "order_id": "3008450740201411110007820472",
        "state": "FINISHED",
        "receivers": [{"amount": 10**20, "description": "x", "type": "MERCHANT_ID",
                       "account": SHOP_A, "result": "SUCCESS", "detail_id": "1",
                       "create_time": "2026-12-02T10:00:00+08:00",
                       "finish_time": "2026-12-02T10:00:01+08:00"}],
    }  # fmt: skip
    crafted = crafted_client(configured, wechat_key, CraftedAnswers(wechat_key, answer))
    with pytest.raises(AnswerMismatch) as caught:
        clawbacks.sync_order(out_order_no=shared["out_order_no"],
                             transaction_id=shared["transaction_id"], sub_mchid=SUB_MCHID,
                             client=crafted)  # fmt: skip
    assert "out_order_no" in caught.value.fields and "receivers[0].amount" in caught.value.fields
    assert not ProfitSharingOrder.objects.exists()
    monkeypatch.setattr(order_sync, "client_for", lambda mchid: crafted)
    response = api_user().post(CLAWBACKS, clawback_body(shared), format="json")
    assert response.status_code == 503, response.data
    assert "does not match" in json.dumps(response.data, ensure_ascii=False)
    assert not ProfitSharingOrder.objects.exists() and not ProfitSharingClawback.objects.exists()


# ------------------------- the last paragraph: one number, one transaction


def test_the_same_out_clawback_no_with_another_transaction_is_a_conflict(configured, shared):  # noqa: F811
    client = api_user()
    first = client.post(CLAWBACKS, clawback_body(shared, amount=9), format="json")
    assert first.status_code == 201
    other = clawback_body(shared, amount=9, transaction_id="4200000000000000000000000001")
    again = client.post(CLAWBACKS, other, format="json")
    assert again.status_code == 409, again.data
    assert "transaction_id" in again.data["out_clawback_no"][0]
