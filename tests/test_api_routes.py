"""The REST API through DRF's test client, against the simulator."""

from __future__ import annotations

import json
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
BY_NO = f"{LIST}by-out-return-no/"
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
    assert client.get(f"{BY_NO}R-by_no*1/").data["id"] == row.pk
    assert client.get(f"{LIST}R-by_no*1/").status_code == 404  # {pk} is digits only
    assert client.get(f"{LIST}999999/").status_code == 404
    assert client.get(f"{LIST}{2**63}/").status_code == 404  # beyond a 64-bit key
    assert client.get(f"{BY_NO}R-missing/").status_code == 404


def test_a_numeric_out_return_no_never_reaches_the_row_with_that_id(configured, order):
    """Issue 12.1: out_return_no "N" and pk N are two returns, each on its own route."""
    client = api_user()
    by_id = services.create_return(**body(order, out_return_no="RID1"), submit=True)
    by_no = services.create_return(**body(order, out_return_no=str(by_id.pk)), submit=True)
    assert by_no.pk != by_id.pk
    assert client.get(f"{LIST}{by_id.pk}/").data["out_return_no"] == "RID1"
    assert client.get(f"{BY_NO}{by_id.pk}/").data["id"] == by_no.pk

    submitted = client.post(f"{BY_NO}{by_id.pk}/submit/", content_type="application/json")
    assert submitted.status_code == 200 and submitted.data["id"] == by_no.pk
    posts = [c for c in configured.calls() if c["method"] == "POST"]
    assert [c["out_return_no"] for c in posts] == [str(by_id.pk)]
    by_id.refresh_from_db()
    assert (by_id.state, by_id.attempts) == (ReturnState.PENDING, 0)

    refreshed = client.post(f"{BY_NO}{by_id.pk}/refresh/", content_type="application/json")
    assert refreshed.status_code == 200 and refreshed.data["id"] == by_no.pk
    assert (
        client.post(f"{LIST}{by_id.pk}/submit/", content_type="application/json").data["id"]
        == by_id.pk
    )
    assert (
        client.post(f"{LIST}{by_id.pk}/refresh/", content_type="application/json").data["id"]
        == by_id.pk
    )
    assert ProfitSharingReturn.objects.get(pk=by_id.pk).attempts == 1


def test_both_routes_are_in_the_openapi_schema(tmp_path):
    """The example shop's schema (drf-spectacular, as an integrator sees it)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'shop.sqlite3'}",
    }
    manage = [sys.executable, str(root / "example_project" / "manage.py")]
    out = subprocess.run(
        [*manage, "spectacular", "--skip-checks", "--format", "openapi-json", "--validate"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    paths = json.loads(out)["paths"]
    by_no = "/api/wxpay/returns/by-out-return-no/{out_return_no}/"
    for path in ("/api/wxpay/returns/{id}/", by_no):
        for suffix in ("", "submit/", "refresh/"):
            assert path + suffix in paths, sorted(paths)
            for operation in paths[path + suffix].values():
                params = operation["parameters"]
                in_path = [(p["name"], p["schema"]["type"]) for p in params if p["in"] == "path"]
                assert in_path == ([("id", "integer")] if "{id}" in path else
                                   [("out_return_no", "string")])  # fmt: skip
                in_query = [p["name"] for p in params if p["in"] == "query"]
                assert in_query == ([] if "{id}" in path else ["mchid"])  # whose number
    create = paths["/api/wxpay/returns/"]["post"]
    assert list(create["requestBody"]["content"]) == ["application/json"]
    assert {"400", "415"} <= set(create["responses"])


def test_submit_refresh_and_bulk(configured, order):
    client = api_user()
    configured.configure(processing_seconds=0.2)
    row = services.create_return(**body(order), submit=True)
    assert (
        client.post(f"{LIST}{row.pk}/submit/", content_type="application/json").data["state"]
        == "processing"
    )
    configured.advance_clock(0.25)
    assert (
        client.post(f"{LIST}{row.pk}/refresh/", content_type="application/json").data["state"]
        == "succeeded"
    )
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
    assert (
        reader.post(f"{LIST}{row.pk}/submit/", content_type="application/json").status_code == 403
    )
    assert (
        reader.post(f"{LIST}{row.pk}/refresh/", content_type="application/json").status_code == 403
    )
    nobody = api_user("nobody", ())
    assert nobody.get(LIST).status_code == 403
    assert nobody.get(f"{LIST}{row.pk}/").status_code == 403
    assert ProfitSharingReturn.objects.get(pk=row.pk).state == ReturnState.PENDING
    assert configured.calls() == []


# ---------------------------------------------------- issue 12: a strict API
def refused_without_trace(configured, response, status=400):
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert ProfitSharingReturn.objects.count() == 0
    assert configured.calls() == []
    return response.json() if response["Content-Type"].startswith("application/json") else None


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"out_returnno": "R1"}, "out_returnno"),  # a typo must not get a generated number
        ({"state": "succeeded"}, "state"),
        ({"id": 7}, "id"),
        ({"amount_yuan": "1.00"}, "amount_yuan"),
        ({"return_id": "X", "attempts": 0}, "return_id"),
    ],
)
def test_unknown_and_read_only_fields_are_named(configured, order, extra, named):
    answer = refused_without_trace(
        configured, api_user().post(LIST, body(order, **extra), format="json")
    )
    assert set(answer) == set(extra) and named in answer


def test_bulk_submit_names_unknown_fields_too(configured, order):
    row = services.create_return(**body(order), submit=True)
    response = api_user().post(f"{LIST}bulk-submit/", {"ids": [row.pk], "id": 1}, format="json")
    assert response.status_code == 400 and set(response.data) == {"id"}
    assert configured.calls() == []


def test_duplicate_json_keys_are_refused(configured, order):
    """The last key used to win: amount 1 then 100000 was 100000."""
    rest = ", ".join(f'"{k}": "{v}"' for k, v in body(order).items() if k != "amount")
    text = '{"amount": 1, "amount": 100000, ' + rest + "}"
    answer = refused_without_trace(
        configured, api_user().post(LIST, text, content_type="application/json")
    )
    assert "duplicate key 'amount'" in answer["detail"]


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, '{"a":' * 50_000, '{"amount": NaN}', '{"amount": Infinity}', "1" * 5000],
    ids=["brackets", "objects", "nan", "infinity", "long-integer"],
)
def test_malformed_json_is_a_400(configured, text):
    answer = refused_without_trace(
        configured, api_user().post(LIST, text, content_type="application/json")
    )
    assert answer["detail"].startswith("JSON parse error")


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"],
)
def test_writes_take_json_only(configured, order, content_type):
    """A form a foreign page posts (with cached Basic credentials) is a 415, not a return."""
    client = api_user()
    row = services.create_return(**body(order), submit=True)
    form = "&".join(f"{k}={v}" for k, v in body(order).items())
    for url, data in ((LIST, form), (f"{LIST}{row.pk}/submit/", ""),
                      (f"{BY_NO}{row.out_return_no}/refresh/", ""),
                      (f"{LIST}bulk-submit/", f"ids={row.pk}")):  # fmt: skip
        response = client.post(url, data, content_type=content_type)
        assert response.status_code == 415, (url, response.status_code)
    undeclared = client.generic("POST", LIST, form, content_type=None)  # a body, no type
    assert undeclared.status_code == 415
    assert ProfitSharingReturn.objects.count() == 1 and configured.calls() == []
    assert ProfitSharingReturn.objects.get().attempts == 0
    # Even without a body a write must declare JSON: a foreign page's bodiless fetch
    # (no type) or empty form with cached Basic credentials must not submit.
    bodiless = client.generic("POST", f"{LIST}{row.pk}/submit/", "", content_type=None)
    assert bodiless.status_code == 415 and configured.calls() == []
    assert (
        client.post(f"{LIST}{row.pk}/submit/", content_type="application/json").status_code == 200
    )
    typed = "application/json; charset=utf-8"
    json_ok = client.post(LIST, json.dumps(body(order, amount=2)), content_type=typed)
    assert json_ok.status_code == 201


@pytest.mark.parametrize(
    "amount", [1e3, 100.0, "100", " 100.00 ", "１００", "1_000", "٣", True, None, [100], {"fen": 1}]
)
def test_the_amount_is_a_json_integer_only(configured, order, amount):
    answer = refused_without_trace(
        configured, api_user().post(LIST, body(order, amount=amount), format="json")
    )
    assert set(answer) == {"amount"}


@pytest.mark.parametrize(
    "description",
    ["\u200b", " \u200b\u2060 ", "ok\u202eevil", "a\u2066b\u2069", "del\x7f", "line\u2028two",
     "para\u2029two", "next\x85line", "tab\tbed", "bom\ufeff", "soft\u00adhyphen", "\u3000 ", 7],
)  # fmt: skip
def test_invisible_and_control_characters_in_a_description(configured, order, description):
    answer = refused_without_trace(
        configured, api_user().post(LIST, body(order, description=description), format="json")
    )
    assert set(answer) == {"description"}


def test_text_fields_take_json_strings_only(configured, order):
    answer = refused_without_trace(
        configured, api_user().post(LIST, body(order, return_mchid=86693852), format="json")
    )
    assert set(answer) == {"return_mchid"}


def test_a_tampered_cursor_is_a_400_naming_it(configured, order):
    import base64

    client = api_user()
    for _ in range(3):
        services.create_return(**body(order, amount=1), submit=True)
    page = client.get(LIST, {"page_size": 1})
    assert client.get(page.data["next"]).status_code == 200
    tampered = [
        "\u00e9",  # not ASCII: not base64
        base64.b64encode(b"o=x").decode(),
        base64.b64encode(b"p=not-a-date").decode(),
        base64.b64encode(b"p=0001-01-01 00:00:00").decode(),  # before year 1 in UTC here
        base64.b64encode(b"p=2026-01-01 00:00:00+99:00").decode(),
        base64.b64encode("p=２０２６".encode()).decode(),
    ]
    for cursor in tampered:
        response = client.get(LIST, {"cursor": cursor})
        assert response.status_code == 400, (cursor, response.status_code)
        assert list(response.data) == ["cursor"]


@pytest.mark.parametrize(
    "value",
    ["0001-01-01T00:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
     "2026-02-30T00:00:00", "2026-01-01T00:00:00+25:00"],
)  # fmt: skip
def test_out_of_range_dates_in_filters_are_a_400(configured, value):
    client = api_user()
    for name in ("created_after", "created_before"):
        response = client.get(LIST, {name: value})
        assert response.status_code == 400 and list(response.data) == [name], response.data
