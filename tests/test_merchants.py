"""Two merchants in one site, against a simulator serving both (``--merchants 2``).

Each request is signed with its own merchant's key (the simulator's call log names the
mchid and serial of every Authorization), each return is listed under its merchant
(API, admin), one merchant's bad key leaves the other's returns going, the checks
name the merchant, and ``MERCHANT_PROVIDER`` can supply the entries.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import checks
from django.test import Client, override_settings

from django_wxpay_profitsharing import polling, services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState
from wxpay_simulator.testing import SimulatorProcess

from .conftest import FAST, RECEIVER, SUB_MCHID, unique_no
from .test_api_routes import LIST, api_user

pytestmark = pytest.mark.django_db(transaction=True)
FIRST, SECOND = "1900000100", "1900000101"
CHANGELIST = "/admin/wxpay_profitsharing/profitsharingreturn/"
#: What :func:`provided_merchants` hands out (set by the test that uses it).
PROVIDED: dict[str, Any] = {}


def provided_merchants() -> dict[str, Any]:
    """A ``MERCHANT_PROVIDER``: the entries come from here, not from the settings."""
    return dict(PROVIDED)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """A simulator of this module's own, serving two merchants."""
    with SimulatorProcess(tmp_path_factory.mktemp("two-merchants"), merchants=2) as sim:
        yield sim


@pytest.fixture
def sim2(two):
    two.reset()
    two.configure(processing_seconds=0, latency_ms=0, qps_limit=0)
    yield two
    two.clear_faults()


def settings_for(sim: SimulatorProcess, **changes: dict[str, Any]) -> dict[str, Any]:
    """Both merchants' settings, with per-merchant ``changes`` ({mchid: {key: value}})."""
    config = {**sim.multi_settings_dict(), **FAST}
    config["MERCHANTS"] = {
        mchid: {**entry, **changes.get(mchid, {})} for mchid, entry in config["MERCHANTS"].items()
    }
    return config


@pytest.fixture
def both(sim2):
    """``WXPAY_PROFITSHARING`` with both merchants, DEFAULT_MCHID the first."""
    with override_settings(WXPAY_PROFITSHARING=settings_for(sim2)):
        yield sim2
    reset_client()


def seed(sim: SimulatorProcess, mchid: str, number: str | None = None) -> dict[str, Any]:
    return sim.seed_order(number or unique_no("P"), sub_mchid=SUB_MCHID, amount=1000, mchid=mchid)


def pending(order: dict[str, Any], mchid: str, **fields: Any) -> ProfitSharingReturn:
    values = {
        "sub_mchid": SUB_MCHID,
        "out_order_no": order["out_order_no"],
        "return_mchid": RECEIVER,
        "amount": 100,
        "description": "two merchants",
        "submit": True,
        "mchid": mchid,
        **fields,
    }
    return services.create_return(**values)


def serials(sim: SimulatorProcess) -> dict[str, str]:
    return {m["mchid"]: m["merchant_serial_no"] for m in sim.merchant_credentials()}


def test_each_request_is_signed_with_its_own_merchants_key(both):
    # The same out_order_no in both merchants' books: two different orders.
    number = unique_no("P")
    rows = [pending(seed(both, mchid, number), mchid) for mchid in (FIRST, SECOND, SECOND)]
    summary = polling.process_due()
    assert summary["succeeded"] == 3 and summary["errors"] == 0
    owner = {row.out_return_no: row.mchid for row in rows}
    calls = [c for c in both.calls() if c["out_return_no"] in owner]
    assert calls and {c["status"] for c in calls} == {200}
    for call in calls:
        mchid = owner[call["out_return_no"]]
        assert (call["mchid"], call["serial_no"]) == (mchid, serials(both)[mchid]), call
    assert {c["mchid"] for c in calls} == {FIRST, SECOND}
    # Each return is in its merchant's books at WeChat Pay, and in ours.
    theirs = {r["out_return_no"]: r["mchid"] for r in both.returns()}
    assert theirs == owner
    assert set(ProfitSharingReturn.objects.filter(mchid=SECOND).values_list("pk", flat=True)) == {
        rows[1].pk,
        rows[2].pk,
    }


def test_api_create_takes_a_configured_mchid_and_lists_by_merchant(both):
    client = api_user()
    first, second = seed(both, FIRST), seed(both, SECOND)

    def create(order: dict[str, Any], **extra: Any) -> Any:
        data = {
            "sub_mchid": SUB_MCHID,
            "out_order_no": order["out_order_no"],
            "return_mchid": RECEIVER,
            "amount": 100,
            "description": "api",
            "out_return_no": "RSAME1",
            **extra,
        }
        return client.post(LIST, data, format="json")

    made_second = create(second, mchid=SECOND)
    assert made_second.status_code == 201, made_second.data
    assert made_second.data["mchid"] == SECOND and made_second.data["state"] == "succeeded"
    made_first = create(first)  # no mchid: DEFAULT_MCHID; the same number is the first's own
    assert made_first.status_code == 201, made_first.data
    assert made_first.data["mchid"] == FIRST

    unknown = create(second, mchid="1900000199", out_return_no="RNOPE")
    assert unknown.status_code == 400 and set(unknown.data) == {"mchid"}, unknown.data
    assert not ProfitSharingReturn.objects.filter(out_return_no="RNOPE").exists()

    listed = client.get(LIST, {"mchid": SECOND})
    assert [r["id"] for r in listed.data["results"]] == [made_second.data["id"]]
    by_no = f"{LIST}by-out-return-no/RSAME1/"
    assert client.get(by_no).data["id"] == made_first.data["id"]
    assert client.get(by_no, {"mchid": SECOND}).data["id"] == made_second.data["id"]
    assert client.get(by_no, {"mchid": "1900000199"}).status_code == 404


def test_admin_filters_by_merchant_and_the_add_form_picks_one(both):
    admin = Client()
    admin.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
    first, second = seed(both, FIRST), seed(both, SECOND)
    mine = pending(first, FIRST, out_return_no="RADM1")
    theirs = pending(second, SECOND, out_return_no="RADM2")
    page = admin.get(CHANGELIST, {"mchid": SECOND})
    assert page.status_code == 200
    shown = {row.pk for row in page.context["cl"].result_list}
    assert shown == {theirs.pk} and mine.pk not in shown
    assert "mchid" in page.context["cl"].params

    form = admin.get(CHANGELIST + "add/")
    field = form.context["adminform"].form.fields["mchid"]
    assert [value for value, _label in field.choices] == [FIRST, SECOND]
    assert not field.widget.is_hidden
    data = {
        "mchid": SECOND,
        "sub_mchid": SUB_MCHID,
        "out_order_no": second["out_order_no"],
        "out_return_no": "RADM3",
        "return_mchid": RECEIVER,
        "amount_yuan": "1.00",
        "description": "admin",
        "calls-TOTAL_FORMS": "0",
        "calls-INITIAL_FORMS": "0",
    }
    saved = admin.post(CHANGELIST + "add/", data)
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert ProfitSharingReturn.objects.get(out_return_no="RADM3").mchid == SECOND
    unknown = {**data, "mchid": "1900000199", "out_return_no": "RADM4"}
    refused = admin.post(CHANGELIST + "add/", unknown)
    assert refused.status_code == 200 and "mchid" in refused.context["adminform"].form.errors


def test_the_add_form_hides_the_merchant_when_there_is_one(sim2):
    with override_settings(WXPAY_PROFITSHARING={**sim2.settings_dict(), **FAST}):
        admin = Client()
        admin.force_login(User.objects.create_superuser("root", "r@example.com", "pw"))
        field = admin.get(CHANGELIST + "add/").context["adminform"].form.fields["mchid"]
        assert field.widget.is_hidden and field.initial == FIRST
        order = seed(sim2, FIRST)
        data = {
            "sub_mchid": SUB_MCHID,
            "out_order_no": order["out_order_no"],
            "out_return_no": "RONE1",
            "return_mchid": RECEIVER,
            "amount_yuan": "1.00",
            "description": "admin",
            "calls-TOTAL_FORMS": "0",
            "calls-INITIAL_FORMS": "0",
        }
        assert admin.post(CHANGELIST + "add/", data).status_code == 302
        assert ProfitSharingReturn.objects.get(out_return_no="RONE1").mchid == FIRST
    reset_client()


@pytest.mark.parametrize("bad_key", ["the other merchant's key", "a missing file"])
def test_one_merchants_bad_key_does_not_stop_the_others_returns(sim2, tmp_path, bad_key):
    first_key = sim2.merchant_credentials()[0]["private_key_path"]
    key = first_key if bad_key == "the other merchant's key" else str(tmp_path / "gone.pem")
    config = settings_for(sim2, **{SECOND: {"PRIVATE_KEY": key}})
    with override_settings(WXPAY_PROFITSHARING=config):
        good = [pending(seed(sim2, FIRST), FIRST) for _ in range(2)]
        stuck = pending(seed(sim2, SECOND), SECOND)
        summary = polling.process_due()
        for row in good:
            row.refresh_from_db()
            assert row.state == ReturnState.SUCCEEDED, (row.state, row.last_error_code)
        stuck.refresh_from_db()
        assert stuck.state == ReturnState.PENDING
        assert summary["succeeded"] == 2
        second_calls = [c for c in sim2.calls() if c["mchid"] == SECOND]
        if bad_key == "a missing file":  # left out of the pass: never claimed, never sent
            assert second_calls == [] and stuck.attempts == 0
        else:  # sent, signed with the wrong key: refused, and waits for a fixed key
            assert {(c["status"], c["code"]) for c in second_calls} == {(401, "SIGN_ERROR")}
            assert stuck.last_error_code == "SIGN_ERROR"
    reset_client()


def app_errors() -> list[checks.CheckMessage]:
    """The app's errors (its warnings, e.g. plain HTTP to the simulator, left out)."""
    found = checks.run_checks()
    return [m for m in found if m.id.startswith("wxpay_profitsharing") and m.is_serious()]


def test_checks_name_the_merchant_whose_key_is_bad(sim2, tmp_path):
    config = settings_for(sim2, **{SECOND: {"PRIVATE_KEY": str(tmp_path / "gone.pem")}})
    with override_settings(WXPAY_PROFITSHARING=config):
        errors = app_errors()
    assert [m.id for m in errors] == ["wxpay_profitsharing.E003"]
    assert f"WXPAY_PROFITSHARING['MERCHANTS']['{SECOND}']['PRIVATE_KEY']" in errors[0].msg
    assert FIRST not in errors[0].msg
    with override_settings(WXPAY_PROFITSHARING=settings_for(sim2)):
        assert app_errors() == []
    reset_client()


def test_a_merchant_provider_supplies_the_entries(sim2):
    config = settings_for(sim2)
    PROVIDED.clear()
    PROVIDED.update(config.pop("MERCHANTS"))
    config["MERCHANT_PROVIDER"] = f"{__name__}.provided_merchants"
    try:
        with override_settings(WXPAY_PROFITSHARING=config):
            row = pending(seed(sim2, SECOND), SECOND)
            polling.process_due()
            row.refresh_from_db()
            assert row.state == ReturnState.SUCCEEDED
            named = {(c["mchid"], c["serial_no"]) for c in sim2.calls()}
            assert named == {(SECOND, serials(sim2)[SECOND])}
    finally:
        PROVIDED.clear()
        reset_client()


def test_taking_turns_alternates_merchants_and_keeps_each_ones_order():
    items = ["A1", "A2", "A3", "B1", "C1", "B2"]
    assert services.taking_turns(items, lambda item: item[0]) == [
        "A1", "B1", "C1", "A2", "B2", "A3",
    ]  # fmt: skip


def test_a_pass_shares_its_batch_among_the_merchants(both):
    # One merchant's backlog first: an oldest-first batch would be that merchant's only.
    rows = [pending(seed(both, FIRST), FIRST) for _ in range(6)]
    rows += [pending(seed(both, SECOND), SECOND) for _ in range(6)]
    summary = polling.process_due(limit=4)
    assert summary["claimed"] == 4 and summary["succeeded"] == 4
    done = ProfitSharingReturn.objects.filter(state=ReturnState.SUCCEEDED)
    assert sorted(done.values_list("mchid", flat=True)) == [FIRST, FIRST, SECOND, SECOND]
    # Bulk submits too: the rows' merchants take turns, the answers in the pks' order.
    rest = [row.pk for row in rows if not done.filter(pk=row.pk).exists()]
    answered = services.run_many(rest, "submit")
    assert [row.pk for row, _ran in answered] == rest
    assert all(ran and row.state == ReturnState.SUCCEEDED for row, ran in answered)


def test_celery_batches_cut_from_two_backlogs_hold_both_merchants(both, monkeypatch):
    """Each run_returns message carries both merchants' returns, taking turns."""
    from django_wxpay_profitsharing import task_backends, tasks

    pks = [pending(seed(both, FIRST), FIRST).pk for _ in range(4)]
    pks += [pending(seed(both, SECOND), SECOND).pk for _ in range(4)]
    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.run_returns, "delay", lambda chunk, *args: sent.append(chunk))
    with override_settings(WXPAY_PROFITSHARING={**settings_for(both), "PROCESS_BATCH_SIZE": 4}):
        task_backends._enqueue_celery(pks, task_backends.Action.SUBMIT, False, None)
    owners = dict(ProfitSharingReturn.objects.values_list("pk", "mchid"))
    assert [[owners[pk] for pk in chunk] for chunk in sent] == [[FIRST, SECOND] * 2] * 2
