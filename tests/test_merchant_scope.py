"""Operators of one merchant stay in it: ``MERCHANT_SCOPE`` everywhere a row is listed,
looked up, approved or sent (issue 20, item 4).

Two merchants in one site (a simulator serving both); an operator in the group
``wxpay:<FIRST>`` sees and acts on the first merchant's rows only: through the API
(lists, lookups, bulk-submit, creates, syncs, clawbacks, ``?mchid=``), the admin
(changelists, change pages, actions, the claw-back page, the add and sync forms), and
the service layer's own approval, which checks again whoever asks.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import PermissionDenied
from django.test import Client, override_settings
from rest_framework.test import APIClient

from django_wxpay_profitsharing import access, desk, services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import (
    ProfitSharingClawback,
    ProfitSharingOrder,
    ProfitSharingReturn,
    ReturnState,
)

from .conftest import RECEIVER, SUB_MCHID, unique_no
from .test_merchants import FIRST, SECOND, seed, settings_for, sim2, two  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
RETURNS, CLAWBACKS, ORDERS = "/api/wxpay/returns/", "/api/wxpay/clawbacks/", "/api/wxpay/orders/"
ADMIN_RETURNS = "/admin/wxpay_profitsharing/profitsharingreturn/"
ADMIN_ORDERS = "/admin/wxpay_profitsharing/profitsharingorder/"
EVERYTHING = (
    "view_profitsharingreturn", "add_profitsharingreturn", "change_profitsharingreturn",
    "submit_profitsharingreturn", "refresh_profitsharingreturn", "view_profitsharingclawback",
    "add_profitsharingclawback", "submit_profitsharingclawback", "view_profitsharingorder",
    "add_profitsharingorder",
)  # fmt: skip


@pytest.fixture
def scoped_site(sim2):  # noqa: F811
    """Both merchants, ``MERCHANT_SCOPE = merchant_groups``."""
    config = {
        **settings_for(sim2),
        "MERCHANT_SCOPE": "django_wxpay_profitsharing.access.merchant_groups",
    }
    with override_settings(WXPAY_PROFITSHARING=config):
        yield sim2
    reset_client()


def operator(name: str, *groups: str) -> User:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=EVERYTHING))
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return User.objects.get(pk=user.pk)


def api(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def draft(order, mchid: str, **fields) -> ProfitSharingReturn:
    values = {"sub_mchid": SUB_MCHID, "out_order_no": order["out_order_no"],
              "return_mchid": RECEIVER, "amount": 100, "description": "scope", "mchid": mchid,
              **fields}  # fmt: skip
    return services.create_return(**values)


@pytest.fixture
def rows(scoped_site):
    """One draft of each merchant, and the operator of the first."""
    first = draft(seed(scoped_site, FIRST), FIRST)
    second = draft(seed(scoped_site, SECOND), SECOND)
    return first, second, operator("first-ops", f"wxpay:{FIRST}")


def test_the_ready_scope_reads_groups():
    user = operator("reader", f"wxpay:{FIRST}", f"wxpay:{SECOND}:{SUB_MCHID}", "accounting")
    assert access.merchant_groups(user) == frozenset({(FIRST, None), (SECOND, SUB_MCHID)})
    boss = User.objects.create_superuser("boss", password="pw")
    assert access.merchant_groups(boss) is None
    assert access.merchant_groups(operator("nobody")) == frozenset()
    assert access.every_merchant(user) is None


def test_api_lists_and_looks_up_only_the_users_merchants(rows):
    first, second, user = rows
    client = api(user)
    listed = client.get(RETURNS).data["results"]
    assert [r["id"] for r in listed] == [first.pk]
    assert client.get(f"{RETURNS}{second.pk}/").status_code == 404
    by_no = f"{RETURNS}by-out-return-no/{second.out_return_no}/?mchid={SECOND}"
    assert client.get(by_no).status_code == 404
    submit = client.post(f"{RETURNS}{second.pk}/submit/", content_type="application/json")
    assert submit.status_code == 404
    second.refresh_from_db()
    assert second.state == ReturnState.DRAFT


def test_bulk_submit_never_approves_another_merchants_drafts(rows):
    first, second, user = rows
    response = api(user).post(
        f"{RETURNS}bulk-submit/", {"ids": [first.pk, second.pk]}, format="json"
    )
    assert response.status_code == 200, response.data
    assert [r["id"] for r in response.data["results"]] == [first.pk]
    second.refresh_from_db()
    assert second.state == ReturnState.DRAFT and second.submitted_by is None


def test_creates_and_syncs_for_another_merchant_are_refused_naming_the_field(rows, scoped_site):
    _first, _second, user = rows
    client = api(user)
    order = seed(scoped_site, SECOND)
    body = {"mchid": SECOND, "sub_mchid": SUB_MCHID, "out_order_no": order["out_order_no"],
            "return_mchid": RECEIVER, "amount": 1, "description": "no"}  # fmt: skip
    created = client.post(RETURNS, body, format="json")
    assert created.status_code == 400 and "mchid" in created.data, created.data
    synced = client.post(
        f"{ORDERS}sync/",
        {"mchid": SECOND, "out_order_no": order["out_order_no"],
         "transaction_id": order["transaction_id"], "sub_mchid": SUB_MCHID},
        format="json",
    )  # fmt: skip
    assert synced.status_code == 400 and "mchid" in synced.data, synced.data
    clawback = client.post(
        CLAWBACKS,
        {"mchid": SECOND, "out_clawback_no": unique_no("CS"), "out_order_no":
         order["out_order_no"], "transaction_id": order["transaction_id"],
         "sub_mchid": SUB_MCHID, "description": "no"},
        format="json",
    )  # fmt: skip
    assert clawback.status_code == 400 and "mchid" in clawback.data, clawback.data
    assert not ProfitSharingOrder.objects.filter(mchid=SECOND).exists()
    assert not ProfitSharingClawback.objects.exists()


def test_clawbacks_and_orders_are_scoped_and_take_mchid(rows, scoped_site):
    _first, _second, user = rows
    mine, theirs = seed(scoped_site, FIRST), seed(scoped_site, SECOND)
    for mchid, order in ((FIRST, mine), (SECOND, theirs)):
        desk.claw_back(
            {"mchid": mchid, "out_clawback_no": f"C{mchid}", "out_order_no": order["out_order_no"],
             "transaction_id": order["transaction_id"], "sub_mchid": SUB_MCHID,
             "description": "scope"},
            by=None, door=desk.Door.CODE,
        )  # fmt: skip
    client = api(user)
    assert [c["mchid"] for c in client.get(CLAWBACKS).data["results"]] == [FIRST]
    assert client.get(f"{CLAWBACKS}?mchid={SECOND}").data["results"] == []
    theirs_pk = ProfitSharingClawback.objects.get(mchid=SECOND).pk
    assert client.get(f"{CLAWBACKS}{theirs_pk}/").status_code == 404
    assert client.get(f"{ORDERS}?out_order_no={theirs['out_order_no']}").data == []
    listed = client.get(f"{ORDERS}?out_order_no={mine['out_order_no']}&mchid={FIRST}").data
    assert [o["mchid"] for o in listed] == [FIRST]


def test_the_admin_lists_and_acts_on_the_users_merchants_only(rows):
    first, second, user = rows
    client = Client()
    client.force_login(user)
    page = client.get(ADMIN_RETURNS)
    assert first.out_return_no in page.content.decode()
    assert second.out_return_no not in page.content.decode()
    assert client.get(f"{ADMIN_RETURNS}{second.pk}/change/").status_code in (302, 404)
    client.post(
        ADMIN_RETURNS,
        {"action": "submit_to_wechat_pay", "_selected_action": [first.pk, second.pk],
         "post": "yes"},
    )  # fmt: skip
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == ReturnState.SUCCEEDED and second.state == ReturnState.DRAFT
    add = client.get(f"{ADMIN_RETURNS}add/").content.decode()
    assert SECOND not in add  # the merchant choice offers the first merchant only


def test_the_admin_sync_form_offers_the_users_merchants_and_refuses_another(rows, scoped_site):
    _first, _second, user = rows
    other = operator("both-ops", f"wxpay:{FIRST}", f"wxpay:{SECOND}")
    client = Client()
    client.force_login(other)
    order = seed(scoped_site, SECOND)
    form = client.get(f"{ADMIN_ORDERS}add/").content.decode()
    assert f'value="{SECOND}"' in form  # a second merchant's order can be synced here
    synced = client.post(
        f"{ADMIN_ORDERS}add/",
        {"mchid": SECOND, "out_order_no": order["out_order_no"],
         "transaction_id": order["transaction_id"], "sub_mchid": SUB_MCHID},
    )  # fmt: skip
    assert synced.status_code == 302, synced.content.decode()[:2000]
    mirror = ProfitSharingOrder.objects.get(mchid=SECOND)
    client.force_login(user)  # the first merchant's operator: neither the page nor the order
    assert client.get(f"{ADMIN_ORDERS}{mirror.pk}/claw-back/").status_code == 404
    refused = client.post(
        f"{ADMIN_ORDERS}add/",
        {"mchid": SECOND, "out_order_no": order["out_order_no"],
         "transaction_id": order["transaction_id"], "sub_mchid": SUB_MCHID},
    )  # fmt: skip
    assert refused.status_code == 200 and "mchid" in refused.context["form"].errors


def test_approval_checks_the_scope_again_whoever_asks(rows):
    _first, second, user = rows
    with pytest.raises(PermissionDenied):
        services.approve(second, by=user)
    second.refresh_from_db()
    assert second.state == ReturnState.DRAFT


def test_a_sub_merchant_group_sees_that_sub_merchant_only(scoped_site):
    order = seed(scoped_site, FIRST)
    mine = draft(order, FIRST)
    other_sub = ProfitSharingReturn.objects.create(
        mchid=FIRST, sub_mchid="1900000999", out_order_no="POTHER", out_return_no="ROTHER",
        return_mchid=RECEIVER, amount=1, description="other sub",
    )  # fmt: skip
    user = operator("sub-ops", f"wxpay:{FIRST}:{SUB_MCHID}")
    listed = [r["id"] for r in api(user).get(RETURNS).data["results"]]
    assert listed == [mine.pk] and other_sub.pk not in listed


def test_reconciliation_runs_and_discrepancies_are_scoped(rows):
    import datetime as dt

    from django.utils import timezone

    from django_wxpay_profitsharing.models import Discrepancy, ReconciliationRun

    _first, _second, user = rows
    now = timezone.now()
    for mchid in (FIRST, SECOND):
        run = ReconciliationRun.objects.create(bill_date=dt.date(2026, 12, 1), mchid=mchid,
                                               started=now, finished=now)  # fmt: skip
        Discrepancy.objects.create(run=run, out_return_no=f"R{mchid}", kind="missing_locally")
    client = Client()
    client.force_login(user)
    views = ["view_reconciliationrun", "view_discrepancy"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=views))
    runs = client.get("/admin/wxpay_profitsharing/reconciliationrun/").content.decode()
    assert FIRST in runs and SECOND not in runs
    found = client.get("/admin/wxpay_profitsharing/discrepancy/").content.decode()
    assert f"R{FIRST}" in found and f"R{SECOND}" not in found
