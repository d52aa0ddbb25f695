"""Refund jobs over REST, against the simulator: create, list, read, approve, look now, and
each operator action, with the permissions and the merchant scope."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import override_settings
from rest_framework.test import APIClient

from django_wxpay_profitsharing.models import Payment, RefundJob
from django_wxpay_profitsharing.refund_states import Attention, RefundJobState

from .conftest import SUB_MCHID, unique_no, wxpay_config
from .test_refund_jobs import SHOP_B, split_payment

pytestmark = pytest.mark.django_db(transaction=True)
REFUNDS = "/api/wxpay/refunds/"
EVERYTHING = ("view_refundjob", "add_refundjob", "submit_refundjob", "operate_refundjob")
ACTIONS = ("proceed", "retry", "to-merchant-bank", "cancel", "try-again")


@pytest.fixture
def site(sim):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        yield sim


def api_user(username="operator", perms=EVERYTHING, groups=()):
    user = User.objects.create_user(username, password="pw")
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    client = APIClient()
    client.force_authenticate(User.objects.get(pk=user.pk))
    return client


def body(payment, amount, number=None, **extra):
    return {"out_refund_no": number or unique_no("RF"), "transaction_id": payment["transaction_id"],
            "sub_mchid": SUB_MCHID, "amount": amount, "reason": "退货", **extra}  # fmt: skip


def post(client, url, data=None):
    if data is None:  # an action: no body, declared JSON all the same
        return client.post(url, content_type="application/json")
    return client.post(url, data, format="json")


def refund_posts(sim):
    return [c for c in sim.calls() if c["endpoint"] == "refund_create"]


# ------------------------------------------------------------------------ create


def test_create_is_201_then_200_the_same_then_409_for_other_fields(site):
    client = api_user()
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    sent = body(payment, 3000)
    first = post(client, REFUNDS, sent)
    assert first.status_code == 201, first.data
    data = first.data
    assert (data["amount"], data["amount_yuan"], data["reason"]) == (3000, "30.00", "退货")
    assert data["state"] == "succeeded", data  # approved at once (SUBMIT_ON_CREATE), inline
    assert data["plan"]["first_step"] == "fits_frozen" and data["plan"]["shop_funds"] == 0
    [attempt] = data["refunds"]
    assert attempt["out_refund_no"] == sent["out_refund_no"] and attempt["status"] == "SUCCESS"
    assert attempt["refund_id"] and attempt["replaces"] is None
    assert len(refund_posts(site)) == 1

    again = post(client, REFUNDS, sent)
    assert again.status_code == 200 and again.data["id"] == data["id"]
    assert len(refund_posts(site)) == 1 and RefundJob.objects.count() == 1

    conflict = post(client, REFUNDS, {**sent, "amount": 3001})
    assert conflict.status_code == 409, conflict.data
    assert (conflict.data["code"], conflict.data["existing"]) == ("conflict", data["id"])
    assert "amount" in conflict.data["out_refund_no"][0]


def test_a_user_who_may_only_add_makes_a_draft_with_its_plan(site):
    payment, _order = split_payment(site)
    response = post(api_user(perms=("view_refundjob", "add_refundjob")), REFUNDS,
                    body(payment, 10000))  # fmt: skip
    assert response.status_code == 201, response.data
    assert response.data["state"] == "draft" and refund_posts(site) == []
    plan = response.data["plan"]
    assert (plan["first_step"], plan["unfreeze"], plan["clawback"], plan["shop_funds"]) == (
        "needs_unfreeze", 4000, 5000, 1000)  # fmt: skip
    assert plan["reasons"] == ["not_returnable"]
    assert sorted(amount for _number, amount in plan["clawbacks"]) == [5000]


def test_an_amount_above_what_the_payment_can_refund_is_a_400_naming_amount(site):
    client = api_user()
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    assert post(client, REFUNDS, body(payment, 6000)).status_code == 201
    response = post(client, REFUNDS, body(payment, 5000))
    assert response.status_code == 400 and list(response.data) == ["amount"], response.data
    assert "4000" in str(response.data["amount"][0])
    assert RefundJob.objects.count() == 1 and len(refund_posts(site)) == 1


def test_an_unknown_payment_is_a_400_naming_transaction_id(site):
    response = post(api_user(), REFUNDS, body({"transaction_id": "4200009999"}, 100))
    assert response.status_code == 400 and "transaction_id" in response.data, response.data
    assert not RefundJob.objects.exists() and not Payment.objects.exists()


def test_wechat_pay_unreachable_is_a_503_with_nothing_created(site):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    site.set_fault("http_500", endpoint="payment_query")
    response = post(api_user(), REFUNDS, body(payment, 100))
    assert response.status_code == 503, response.data
    assert response.data["code"] == "wechat_pay_unavailable"
    assert not RefundJob.objects.exists() and refund_posts(site) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "100"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": True}, "amount"),
        ({"out_refund_no": "no spaces"}, "out_refund_no"),
        ({"out_refund_no": 12}, "out_refund_no"),
        ({"transaction_id": "42-00"}, "transaction_id"),
        ({"sub_mchid": "abc"}, "sub_mchid"),
        ({"mchid": "1999999999"}, "mchid"),
        ({"allow_unfreeze": "yes"}, "allow_unfreeze"),
        ({"allow_unfreeze": 1}, "allow_unfreeze"),
        ({"reason": "a\x00b"}, "reason"),
        ({"state": "succeeded"}, "state"),
        ({"plan": {}}, "plan"),
        ({"amout": 100}, "amout"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_with_nothing_asked(site, change, field):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    calls = len(site.calls())
    response = post(api_user(), REFUNDS, {**body(payment, 100), **change})
    assert response.status_code == 400 and field in response.data, response.data
    assert not RefundJob.objects.exists()
    if field != "mchid":
        assert len(site.calls()) == calls  # refused before WeChat Pay was asked


def test_writes_take_json_only(site):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    response = api_user().post(REFUNDS, body(payment, 100))  # a form
    assert response.status_code == 415
    assert not RefundJob.objects.exists()


# --------------------------------------------------------------- list and detail


def test_list_filters_and_cursor_pages(site):
    client = api_user()
    one = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    two, _order = split_payment(site)
    done = post(client, REFUNDS, body(one, 100)).data
    site.set_merchant(SUB_MCHID, balance=0)
    short = post(client, REFUNDS, body(two, 10000)).data  # NOT_ENOUGH: waits for an operator
    assert (short["state"], short["attention"]) == ("needs_operator", "balance_short"), short
    draft = post(api_user("adder", ("add_refundjob",)), REFUNDS, body(one, 200)).data

    def ids(query=""):
        response = client.get(f"{REFUNDS}{query}")
        assert response.status_code == 200, response.data
        return [row["id"] for row in response.data["results"]]

    assert ids() == [draft["id"], short["id"], done["id"]]
    assert ids("?state=draft&state=succeeded") == [draft["id"], done["id"]]
    assert ids(f"?transaction_id={one['transaction_id']}") == [draft["id"], done["id"]]
    assert ids("?attention=true") == [short["id"]]
    assert ids("?attention=false") == [draft["id"], done["id"]]
    assert ids(f"?mchid={site.credentials['mchid']}") == [draft["id"], short["id"], done["id"]]
    assert ids("?mchid=1900000999") == []
    for bad in ("?state=nope", "?attention=maybe", "?cursor=garbage", "?transaction_id=a%00b"):
        answer = client.get(f"{REFUNDS}{bad}")
        assert answer.status_code == 400, (bad, answer.data)
        assert bad[1:].split("=")[0] in answer.data
    first = client.get(f"{REFUNDS}?page_size=2").data
    rest = client.get(first["next"]).data
    assert [r["id"] for r in first["results"] + rest["results"]] == ids()
    assert rest["next"] is None


def test_detail_shows_the_plan_the_clawbacks_and_the_refunds(site):
    client = api_user()
    payment, _order = split_payment(site)
    made = post(client, REFUNDS, body(payment, 9000)).data
    response = client.get(f"{REFUNDS}{made['id']}/")
    assert response.status_code == 200
    job = response.data
    assert set(job) == {
        "id", "mchid", "sub_mchid", "out_refund_no", "transaction_id", "amount", "amount_yuan",
        "reason", "allow_unfreeze", "state", "step", "attention", "plan", "unfrozen",
        "unfreeze_out_order_no", "last_error_code", "last_error_message", "refunds",
        "clawbacks", "created", "updated", "finished_at",
    }  # fmt: skip
    assert job["state"] == "succeeded", job
    assert (job["unfrozen"], job["plan"]["clawback"]) == (4000, 5000)  # the plan made again
    assert job["unfreeze_out_order_no"]
    [clawback] = job["clawbacks"]
    assert (clawback["state"], clawback["amount"]) == ("completed", 5000)
    assert client.get(f"/api/wxpay/clawbacks/{clawback['id']}/").status_code == 403  # no view
    assert job["finished_at"] is not None and job["refunds"][0]["status"] == "SUCCESS"
    assert client.get(f"{REFUNDS}{made['id'] + 1000}/").status_code == 404
    assert client.get(f"{REFUNDS}99999999999999999999999/").status_code == 404


def test_reads_need_the_view_permission(site):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    made = post(api_user(), REFUNDS, body(payment, 100)).data
    blind = api_user("blind", ("add_refundjob", "operate_refundjob"))
    assert blind.get(REFUNDS).status_code == 403
    assert blind.get(f"{REFUNDS}{made['id']}/").status_code == 403
    assert APIClient().get(REFUNDS).status_code in (401, 403)


# ------------------------------------------------------------------ submit, refresh


def test_submit_with_four_eyes(site):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(site, REQUIRE_SEPARATE_SUBMITTER=True)):
        maker = api_user("maker")
        made = post(maker, REFUNDS, body(payment, 500)).data
        assert made["state"] == "draft"  # its creator may not approve it
        refused = post(maker, f"{REFUNDS}{made['id']}/submit/")
        assert refused.status_code == 403 and refund_posts(site) == []
        no_perm = api_user("viewer", ("view_refundjob", "add_refundjob"))
        assert post(no_perm, f"{REFUNDS}{made['id']}/submit/").status_code == 403
        checker = api_user("checker")
        approved = post(checker, f"{REFUNDS}{made['id']}/submit/")
        assert approved.status_code == 200, approved.data
        assert approved.data["state"] == "succeeded" and len(refund_posts(site)) == 1
        again = post(checker, f"{REFUNDS}{made['id']}/submit/")  # no draft: as it stands
        assert again.status_code == 200 and len(refund_posts(site)) == 1
    job = RefundJob.objects.get(pk=made["id"])
    assert (job.created_by.username, job.submitted_by.username) == ("maker", "checker")


def test_refresh_looks_now_with_the_view_permission(site):
    site.configure(processing_seconds=600)
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    made = post(api_user(), REFUNDS, body(payment, 100)).data
    assert made["state"] == "following", made
    site.advance_clock(601)
    viewer = api_user("viewer", ("view_refundjob",))
    response = post(viewer, f"{REFUNDS}{made['id']}/refresh/")
    assert response.status_code == 200, response.data
    assert response.data["state"] == "succeeded"
    assert response.data["refunds"][0]["success_time"] is not None


# ------------------------------------------------------------------ operator routes


def test_retry_after_a_top_up(site):
    client = api_user()
    payment, _order = split_payment(site)
    site.set_merchant(SUB_MCHID, balance=0)
    made = post(client, REFUNDS, body(payment, 10000)).data
    assert made["attention"] == Attention.BALANCE_SHORT
    site.set_merchant(SUB_MCHID, balance=None)
    site.advance_clock(61)
    response = post(client, f"{REFUNDS}{made['id']}/retry/")
    assert response.status_code == 200, response.data
    assert response.data["state"] == "succeeded"
    assert [r["out_refund_no"] for r in response.data["refunds"]] == [made["out_refund_no"]]


def test_proceed_after_a_short_clawback(site):
    client = api_user()
    payment, _order = split_payment(site)
    site.mark_receiver(SHOP_B, return_enabled=False)  # its 2000 never come back
    made = post(client, REFUNDS, body(payment, 9000)).data
    assert (made["state"], made["attention"]) == ("needs_operator", "clawback_short"), made
    response = post(client, f"{REFUNDS}{made['id']}/proceed/")
    assert response.status_code == 200, response.data
    assert response.data["state"] == "succeeded", response.data


def test_to_merchant_bank_takes_an_abnormal_refund_on(site):
    client = api_user()
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    site.set_fault("abnormal", endpoint="refund_create", count=1)
    made = post(client, REFUNDS, body(payment, 100)).data
    assert (made["state"], made["attention"]) == ("needs_operator", "abnormal"), made
    response = post(client, f"{REFUNDS}{made['id']}/to-merchant-bank/")
    assert response.status_code == 200, response.data
    assert [c for c in site.calls() if c["endpoint"] == "abnormal_refund"]
    assert response.data["attention"] != "abnormal"


def test_cancel_a_draft_and_try_again_after_closed(site):
    client = api_user()
    draft = post(api_user("adder", ("add_refundjob",)), REFUNDS,
                 body(site.seed_payment(100, sub_mchid=SUB_MCHID), 100)).data  # fmt: skip
    cancelled = post(client, f"{REFUNDS}{draft['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.data["state"] == "cancelled"

    payment, _order = split_payment(site)
    site.set_merchant(SUB_MCHID, balance=0, refund_when_short="hold")
    made = post(client, REFUNDS, body(payment, 10000)).data
    site.advance_clock(7 * 86400 + 60)
    assert post(client, f"{REFUNDS}{made['id']}/refresh/").data["state"] == "closed"
    site.set_merchant(SUB_MCHID, balance=None)
    site.advance_clock(61)
    again = post(client, f"{REFUNDS}{made['id']}/try-again/")
    assert again.status_code == 200, again.data
    assert again.data["state"] == "succeeded", again.data
    first, second = again.data["refunds"]
    assert (first["status"], second["status"]) == ("CLOSED", "SUCCESS")
    assert second["replaces"] == first["out_refund_no"] == made["out_refund_no"]


@pytest.mark.parametrize("route", ACTIONS)
def test_an_action_not_open_is_a_409_and_without_the_permission_a_403(site, route):
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    made = post(api_user(), REFUNDS, body(payment, 100)).data
    assert made["state"] == "succeeded"
    calls = len(site.calls())
    refused = post(api_user("late"), f"{REFUNDS}{made['id']}/{route}/")
    assert refused.status_code == 409, refused.data
    assert (refused.data["code"], refused.data["state"]) == ("not_open", "succeeded")
    reader = api_user("reader", ("view_refundjob", "add_refundjob", "submit_refundjob"))
    assert post(reader, f"{REFUNDS}{made['id']}/{route}/").status_code == 403
    assert post(reader, f"{REFUNDS}{made['id'] + 1000}/{route}/").status_code == 403
    assert post(api_user("op2"), f"{REFUNDS}{made['id'] + 1000}/{route}/").status_code == 404
    assert len(site.calls()) == calls
    assert RefundJob.objects.get(pk=made["id"]).state == RefundJobState.SUCCEEDED


# ------------------------------------------------------------------- merchant scope


def test_merchant_groups_hide_another_merchants_refunds(site):
    mchid = site.credentials["mchid"]
    payment = site.seed_payment(10000, sub_mchid=SUB_MCHID)
    mine = post(api_user(), REFUNDS, body(payment, 100)).data
    other = RefundJob.objects.get(pk=mine["id"])
    other.pk, other.mchid, other.out_refund_no = None, "1900000999", "THEIRS"
    other.payment = Payment.objects.create(mchid="1900000999", transaction_id="4200000999")
    other.save()
    config = wxpay_config(site, MERCHANT_SCOPE="django_wxpay_profitsharing.access.merchant_groups")
    with override_settings(WXPAY_PROFITSHARING=config):
        client = api_user("scoped", groups=[f"wxpay:{mchid}"])
        listed = client.get(REFUNDS).data["results"]
        assert [row["id"] for row in listed] == [mine["id"]]
        assert client.get(f"{REFUNDS}{other.pk}/").status_code == 404
        assert client.get(f"{REFUNDS}?mchid=1900000999").data["results"] == []
        for route in ("submit", "refresh", *ACTIONS):
            assert post(client, f"{REFUNDS}{other.pk}/{route}/").status_code == 404, route
        assert client.get(f"{REFUNDS}{mine['id']}/").status_code == 200
        nobody = api_user("nobody")
        assert nobody.get(REFUNDS).data["results"] == []
