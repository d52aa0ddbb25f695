"""The REST API through DRF's test client, against the simulator."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from rest_framework.test import APIClient

from django_wxpay_profitsharing import services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState

from .conftest import RECEIVER, SUB_MCHID, wxpay_config

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/api/wxpay/returns/"
ALL_PERMS = (
    "view_profitsharingreturn",
    "add_profitsharingreturn",
    "submit_profitsharingreturn",
    "refresh_profitsharingreturn",
)


def api_user(username="svc", perms=ALL_PERMS):
    user = User.objects.create_user(username, password="pw")
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = APIClient()
    client.force_authenticate(user)
    return client


def body(order, **extra):
    data = {
        "sub_mchid": SUB_MCHID,
        "out_order_no": order["out_order_no"],
        "return_mchid": RECEIVER,
        "amount": 100,
        "description": "api",
    }
    data.update(extra)
    return data


def test_create_submits_and_is_idempotent(configured, order, signal_log):
    client = api_user()
    first = client.post(LIST, body(order, out_return_no="RAPI1"), format="json")
    assert first.status_code == 201, first.data
    assert first.data["state"] == "succeeded" and first.data["amount_yuan"] == "1.00"
    again = client.post(LIST, body(order, out_return_no="RAPI1"), format="json")
    assert again.status_code == 200 and again.data["id"] == first.data["id"]
    conflict = client.post(LIST, body(order, out_return_no="RAPI1", amount=101), format="json")
    assert conflict.status_code == 409
    assert conflict.data["code"] == "conflict" and "amount" in conflict.data["out_return_no"][0]
    posts = [c for c in configured.calls() if c["method"] == "POST"]
    assert len(posts) == 1
    assert signal_log.counts()["return_succeeded"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"amount": 2**70}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"description": ""}, "description"),
        ({"description": "x" * 81}, "description"),
        ({"return_mchid": "abc"}, "return_mchid"),
        ({"out_return_no": "a b"}, "out_return_no"),
        ({"out_return_no": "R\x00"}, "out_return_no"),
        ({"out_order_no": ""}, "out_order_no"),
        ({"sub_mchid": ["1"]}, "sub_mchid"),
    ],
)
def test_bad_fields_answer_400_naming_the_field(configured, order, change, field):
    response = api_user().post(LIST, body(order, **change), format="json")
    assert response.status_code == 400, response.data
    assert field in response.data
    assert ProfitSharingReturn.objects.count() == 0


def test_non_json_body_is_a_400(configured):
    response = api_user().post(LIST, "not json", content_type="application/json")
    assert response.status_code == 400


def test_list_filters_and_pagination(configured, order):
    client = api_user()
    rows = [services.create_return(**body(order, amount=10), submit=True) for _ in range(5)]
    services.submit(rows[0])
    assert client.get(LIST, {"state": "succeeded"}).data["results"][0]["id"] == rows[0].pk
    assert len(client.get(LIST, {"state": ["pending", "succeeded"]}).data["results"]) == 5
    assert client.get(LIST, {"out_order_no": "nope"}).data["results"] == []
    assert len(client.get(LIST, {"sub_mchid": SUB_MCHID}).data["results"]) == 5
    assert len(client.get(LIST, {"return_mchid": RECEIVER}).data["results"]) == 5
    assert client.get(LIST, {"created_after": "2999-01-01T00:00:00Z"}).data["results"] == []
    bad = client.get(LIST, {"created_before": "yesterday"})
    assert bad.status_code == 400 and "created_before" in bad.data
    assert client.get(LIST, {"state": "lost"}).status_code == 400
    page = client.get(LIST, {"page_size": 2})
    assert len(page.data["results"]) == 2 and page.data["next"]
    second = client.get(page.data["next"])
    assert len(second.data["results"]) == 2
    assert not {r["id"] for r in second.data["results"]} & {r["id"] for r in page.data["results"]}


def test_list_query_count_is_constant(configured, order):
    client = api_user()
    for _ in range(3):
        services.create_return(**body(order, amount=1), submit=True)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(LIST)  # warm the per-user permission cache
    with CaptureQueriesContext(connection) as small:
        client.get(LIST)
    for _ in range(40):
        services.create_return(**body(order, amount=1), submit=True)
    with CaptureQueriesContext(connection) as large:
        client.get(LIST)
    assert len(small) == len(large)


def test_retrieve_by_id_and_by_out_return_no(configured, order):
    client = api_user()
    row = services.create_return(**body(order, out_return_no="R-by_no*1"), submit=True)
    assert client.get(f"{LIST}{row.pk}/").data["out_return_no"] == "R-by_no*1"
    assert client.get(f"{LIST}R-by_no*1/").data["id"] == row.pk
    assert client.get(f"{LIST}999999/").status_code == 404
    assert client.get(f"{LIST}R-missing/").status_code == 404


def test_submit_refresh_and_bulk(configured, order):
    client = api_user()
    configured.configure(processing_seconds=0.2)
    row = services.create_return(**body(order), submit=True)
    assert client.post(f"{LIST}{row.pk}/submit/").data["state"] == "processing"
    time.sleep(0.25)
    assert client.post(f"{LIST}{row.pk}/refresh/").data["state"] == "succeeded"
    configured.configure(processing_seconds=0)
    more = [services.create_return(**body(order, amount=5), submit=True) for _ in range(2)]
    response = client.post(f"{LIST}bulk-submit/", {"ids": [r.pk for r in more]}, format="json")
    assert response.status_code == 200
    assert [r["state"] for r in response.data["results"]] == ["succeeded", "succeeded"]
    assert client.post(f"{LIST}bulk-submit/", {"ids": []}, format="json").status_code == 400


def test_bulk_submit_queues_large_batches(sim, order):
    client = api_user()
    rows = [services.create_return(**body(order, amount=5), submit=True) for _ in range(4)]
    config = wxpay_config(sim, TASK_BACKEND="thread", BULK_BACKGROUND_THRESHOLD=2)
    with override_settings(WXPAY_PROFITSHARING=config):
        response = client.post(f"{LIST}bulk-submit/", {"ids": [r.pk for r in rows]}, format="json")
        assert response.status_code == 202 and response.data["queued"] == 4
        deadline = time.monotonic() + 20
        while ProfitSharingReturn.objects.filter(state="pending").exists():
            assert time.monotonic() < deadline
            time.sleep(0.1)
    reset_client()
    assert set(ProfitSharingReturn.objects.values_list("state", flat=True)) == {"succeeded"}


def test_no_update_or_delete(configured, order):
    # Even with every model permission, money records are not edited over the API.
    client = api_user(
        "admin", (*ALL_PERMS, "change_profitsharingreturn", "delete_profitsharingreturn")
    )
    row = services.create_return(**body(order), submit=True)
    assert client.put(f"{LIST}{row.pk}/", body(order), format="json").status_code == 405
    assert client.patch(f"{LIST}{row.pk}/", {"amount": 1}, format="json").status_code == 405
    assert client.delete(f"{LIST}{row.pk}/").status_code == 405


def test_anonymous_and_under_privileged(configured, order):
    row = services.create_return(**body(order), submit=True)
    anonymous = APIClient()
    for method, url in (
        ("get", LIST),
        ("post", LIST),
        ("get", f"{LIST}{row.pk}/"),
        ("post", f"{LIST}{row.pk}/submit/"),
        ("post", f"{LIST}{row.pk}/refresh/"),
        ("post", f"{LIST}bulk-submit/"),
    ):
        assert getattr(anonymous, method)(url).status_code in (401, 403), url
    reader = api_user("reader", ("view_profitsharingreturn",))
    assert reader.get(LIST).status_code == 200
    assert reader.post(LIST, body(order), format="json").status_code == 403
    assert reader.post(f"{LIST}{row.pk}/submit/").status_code == 403
    assert reader.post(f"{LIST}{row.pk}/refresh/").status_code == 403
    nobody = api_user("nobody", ())
    assert nobody.get(LIST).status_code == 403
    assert nobody.get(f"{LIST}{row.pk}/").status_code == 403
    assert ProfitSharingReturn.objects.get(pk=row.pk).state == ReturnState.PENDING
    assert configured.calls() == []
