"""The admin through Django's test client, against the simulator."""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from django_wxpay_profitsharing import services
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn, ReturnState

from .conftest import RECEIVER, SUB_MCHID, pending_return, wxpay_config

pytestmark = pytest.mark.django_db(transaction=True)
CHANGELIST = "admin:wxpay_profitsharing_profitsharingreturn_changelist"
ADD = "admin:wxpay_profitsharing_profitsharingreturn_add"


def returns(order, amounts):
    return [pending_return(order, amount) for amount in amounts]


def staff(username, *codenames):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


@pytest.fixture
def operator(client):
    user = staff(
        "operator",
        "view_profitsharingreturn",
        "add_profitsharingreturn",
        "change_profitsharingreturn",
        "submit_profitsharingreturn",
        "refresh_profitsharingreturn",
    )
    client.force_login(user)
    return client


def post_action(client, action, rows, **extra):
    data = {"action": action, "_selected_action": [r.pk for r in rows], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


def texts(response):
    return [str(m) for m in response.context["messages"]]


def test_changelist_shows_yuan_and_state(operator, configured, order):
    returns(order, [1234])
    page = operator.get(reverse(CHANGELIST)).content.decode()
    assert "¥12.34" in page and "Pending" in page


def test_submit_asks_for_confirmation_with_count_and_total(operator, configured, order):
    rows = returns(order, [100, 250])
    page = operator.post(
        reverse(CHANGELIST),
        {"action": "submit_to_wechat_pay", "_selected_action": [r.pk for r in rows]},
    )
    assert page.status_code == 200
    body = page.content.decode()
    assert "2 returns for a total of ¥3.50" in body
    assert rows[0].out_return_no in body
    assert configured.calls() == []  # nothing sent before confirming


def test_confirmed_submit_reports_each_outcome(operator, sim, order):
    retry, ok, over = returns(order, [50, 100, 5000])
    sim.set_fault("http_500", endpoint="create", count=1)
    # One at a time, in pk order, so the 500 meets the first row (PostgreSQL would
    # otherwise run the three on the pool in any order).
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, POOL_SIZE=1)):
        response = post_action(operator, "submit_to_wechat_pay", [retry, ok, over], post="yes")
    reset_client()
    messages = " | ".join(texts(response))
    assert "1 return succeeded." in messages
    assert "1 return was rejected by WeChat Pay: INVALID_REQUEST ×1." in messages
    assert "1 return got no definite answer and will be retried." in messages
    states = dict(ProfitSharingReturn.objects.values_list("pk", "state"))
    assert states == {
        ok.pk: ReturnState.SUCCEEDED,
        over.pk: ReturnState.REJECTED,
        retry.pk: ReturnState.PENDING,
    }


def test_refresh_action(operator, configured, order):
    configured.configure(processing_seconds=0.2)
    [row] = returns(order, [100])
    services.submit(row)
    configured.advance_clock(0.25)
    response = post_action(operator, "refresh_from_wechat_pay", [row])
    assert "1 return succeeded." in texts(response)


def test_large_selections_go_to_the_background(operator, sim, order):
    rows = returns(order, [10] * 5)
    config = wxpay_config(sim, TASK_BACKEND="thread", BULK_BACKGROUND_THRESHOLD=2)
    with override_settings(WXPAY_PROFITSHARING=config):
        response = post_action(operator, "submit_to_wechat_pay", rows, post="yes")
        assert "5 returns were queued in the background (the worker pool)." in texts(response)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not ProfitSharingReturn.objects.filter(state=ReturnState.PENDING).exists():
                break
            time.sleep(0.1)
    reset_client()
    assert set(ProfitSharingReturn.objects.values_list("state", flat=True)) == {"succeeded"}


def test_actions_need_their_permissions(client, configured, order):
    rows = returns(order, [10])
    client.force_login(staff("viewer", "view_profitsharingreturn"))
    page = client.get(reverse(CHANGELIST)).content.decode()
    assert "submit_to_wechat_pay" not in page and "refresh_from_wechat_pay" not in page
    response = post_action(client, "submit_to_wechat_pay", rows, post="yes")
    assert response.status_code == 200
    assert configured.calls() == []
    assert ProfitSharingReturn.objects.get().state == ReturnState.PENDING


def add(client, **fields):
    data = {
        "sub_mchid": SUB_MCHID,
        "out_order_no": "P1",
        "return_mchid": RECEIVER,
        "amount_yuan": "12.34",
        "description": "退款前回退",
        "calls-TOTAL_FORMS": "0",
        "calls-INITIAL_FORMS": "0",
    }
    data.update(fields)
    return client.post(reverse(ADD), data)


def test_add_form_takes_yuan_and_stores_fen(operator, configured):
    response = add(operator)
    assert response.status_code == 302, response.content.decode()[:2000]
    row = ProfitSharingReturn.objects.get()
    assert row.amount == 1234 and row.state == ReturnState.DRAFT  # waits for "Submit"
    assert row.created_by.username == "operator" and row.out_return_no.startswith("R")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"amount_yuan": "12.345"}, "amount_yuan"),
        ({"amount_yuan": "0"}, "amount_yuan"),
        ({"amount_yuan": "abc"}, "amount_yuan"),
        ({"return_mchid": "x"}, "return_mchid"),
        ({"sub_mchid": "12ab"}, "sub_mchid"),
        ({"out_return_no": "bad no"}, "out_return_no"),
        ({"description": ""}, "description"),
        ({"out_order_no": ""}, "out_order_no"),
        ({"order_id": "3008450740201411110007820472"}, "out_order_no"),
    ],
)
def test_add_form_errors_name_the_field(operator, configured, fields, field):
    response = add(operator, **fields)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert ProfitSharingReturn.objects.count() == 0


def test_request_fields_read_only_once_submitted(operator, configured, order):
    [row] = returns(order, [10])
    services.submit(row)
    url = reverse("admin:wxpay_profitsharing_profitsharingreturn_change", args=[row.pk])
    page = operator.get(url).content.decode()
    assert 'name="amount_yuan"' not in page and 'name="return_mchid"' not in page
    assert "POST" in page  # the call records inline


def test_changelist_in_chinese(operator, configured, order):
    returns(order, [10])
    with translation.override("zh-hans"):
        page = operator.get(reverse(CHANGELIST), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "分账回退" in page and "待提交" in page


# ------------------------------------------------------------ the change form
CHANGE = "admin:wxpay_profitsharing_profitsharingreturn_change"


def change_data(row, **overrides):
    data = {
        "sub_mchid": row.sub_mchid,
        "order_id": row.order_id,
        "out_order_no": row.out_order_no,
        "return_mchid": row.return_mchid,
        "amount_yuan": str(row.amount_yuan),
        "description": row.description,
        "_save": "Save",
        "calls-TOTAL_FORMS": "0",  # the read-only inline of call records
        "calls-INITIAL_FORMS": "0",
    }
    return {**data, **overrides}


def test_change_form_edits_a_draft(operator, configured, order):
    row = pending_return(order, 100, submit=False)
    response = operator.post(
        reverse(CHANGE, args=[row.pk]), change_data(row, amount_yuan="2.50"), follow=True
    )
    assert response.status_code == 200
    row.refresh_from_db()
    assert row.amount == 250 and row.state == ReturnState.DRAFT
    assert any("changed successfully" in text for text in texts(response))


def test_change_form_never_overwrites_a_return_sent_meanwhile(
    operator, configured, order, monkeypatch
):
    """A worker submits the row between the editor's page load and save: nothing is written."""
    from django.contrib.admin.models import CHANGE as CHANGED
    from django.contrib.admin.models import LogEntry

    from django_wxpay_profitsharing.admin import ProfitSharingReturnAdmin

    row = pending_return(order, 100, submit=False)
    loaded = ProfitSharingReturnAdmin.get_object

    def load_then_worker_submits(self, request, object_id, from_field=None):
        obj = loaded(self, request, object_id, from_field)
        if request.method == "POST":
            services.submit(obj.pk)  # really submitted to the simulator, in the window
        return obj

    monkeypatch.setattr(ProfitSharingReturnAdmin, "get_object", load_then_worker_submits)
    response = operator.post(
        reverse(CHANGE, args=[row.pk]), change_data(row, amount_yuan="9.99"), follow=True
    )
    row.refresh_from_db()
    assert row.amount == 100 and row.submitted_at is not None
    assert row.state == ReturnState.SUCCEEDED  # the worker's outcome is intact
    assert any("were not saved" in text for text in texts(response))
    assert not LogEntry.objects.filter(object_id=str(row.pk), action_flag=CHANGED).exists()


def test_unsent_update_refuses_other_fields(configured, order):
    row = pending_return(order, 100)
    with pytest.raises(ValueError, match="state"):
        services.update_draft(row, state=ReturnState.SUCCEEDED)


def test_select_all_across_pages_confirms_and_submits_exactly_what_was_shown(
    operator, configured, order
):
    """ "Select all N": the confirmation page carries one field, not one per row.

    Django refuses a form with more than DATA_UPLOAD_MAX_NUMBER_FIELDS fields; a
    selection of thousands must still be confirmable. A return that appears after
    the page was shown is not submitted with the others.
    """
    rows = returns(order, [10] * 30)
    with override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=20):
        page = operator.post(
            f"{reverse(CHANGELIST)}?state__exact=pending",
            {
                "action": "submit_to_wechat_pay",
                "select_across": "1",
                "index": "0",
                "_selected_action": [rows[0].pk],
            },
        )
        assert page.status_code == 200
        body = page.content.decode()
        assert "30 returns for a total of ¥3.00" in body
        assert body.count('name="_selected_action"') == 1  # not one per row
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', body))
        late = pending_return(order, 10)  # created after the operator saw the page
        response = operator.post(
            f"{reverse(CHANGELIST)}?state__exact=pending",
            {name: value for name, value in fields.items() if name != "csrfmiddlewaretoken"},
            follow=True,
        )
    assert response.status_code == 200
    assert "30 returns succeeded." in " | ".join(texts(response))
    late.refresh_from_db()
    assert late.state == ReturnState.PENDING and late.submitted_at is None
    assert len({c["out_return_no"] for c in configured.calls() if c["method"] == "POST"}) == 30
