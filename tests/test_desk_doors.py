"""The desk's send policy as the doors carry it out: the API, the admin, the shop's code.

One rule each, through the real route: every API create follows ``SUBMIT_IN_BACKGROUND``
(the return's own, a clawback's, "claw back again"); a large "Submit" is approved in
the background and answered at once; a selection is counted before anything changes.
Celery's ``delay`` is recorded instead of sent, so what was handed over, and when,
is exact.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import override_settings
from django.urls import reverse

from django_wxpay_profitsharing import desk, services, task_backends
from django_wxpay_profitsharing.models import ProfitSharingClawback, ProfitSharingReturn
from django_wxpay_profitsharing.states import Action, ReturnState

from .conftest import RECEIVER, SUB_MCHID, wxpay_config
from .test_admin_actions import CHANGELIST, operator, post_action, returns, staff, texts  # noqa: F401
from .test_api_routes import LIST, api_user, body
from .test_clawbacks_api import CLAWBACKS, clawback_body, shared  # noqa: F401
from .test_clawbacks_api import api_user as clawback_user
from .test_executor import fake_tasks  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def draft(order) -> ProfitSharingReturn:
    """A draft made by the shop's code (no user): any operator may approve it."""
    return services.create_return(
        sub_mchid=SUB_MCHID, out_order_no=order["out_order_no"], return_mchid=RECEIVER,
        amount=10, description="draft",
    )  # fmt: skip


@pytest.fixture
def in_background(sim, fake_tasks):  # noqa: F811
    """Celery as the task backend (recorded), and API creates sent in the background."""
    config = wxpay_config(sim, TASK_BACKEND="celery", SUBMIT_IN_BACKGROUND=True)
    with override_settings(WXPAY_PROFITSHARING=config):
        yield fake_tasks["run_returns"]


def test_an_api_create_is_answered_pending_and_handed_over(in_background, order):
    response = api_user().post(LIST, body(order, out_return_no="RDESK1"), format="json")
    assert response.status_code == 201 and response.data["state"] == "pending"
    assert in_background.calls == [([response.data["id"]], "submit", False, None)]


def test_a_clawback_created_over_the_api_follows_the_setting_too(shared, in_background):  # noqa: F811
    response = clawback_user().post(CLAWBACKS, clawback_body(shared), format="json")
    assert response.status_code == 201, response.data
    states = {r["state"] for r in response.data["returns"]}
    assert states == {"pending"}
    pks = sorted(r["id"] for r in response.data["returns"])
    assert in_background.calls == [(pks, "submit", False, None)]


def test_claw_back_again_over_the_api_follows_the_setting_too(in_background, order):
    failed = services.create_return(
        sub_mchid=SUB_MCHID, out_order_no=order["out_order_no"], return_mchid=RECEIVER,
        amount=100, description="old",
    )  # fmt: skip
    ProfitSharingReturn.objects.filter(pk=failed.pk).update(
        state=ReturnState.FAILED, fail_reason="TIME_OUT_CLOSED"
    )
    client = api_user()
    response = client.post(f"{LIST}{failed.pk}/claw-back-again/", content_type="application/json")
    assert response.status_code == 201, response.data
    assert response.data["state"] == "pending" and response.data["replaces"] == failed.pk
    assert in_background.calls == [([response.data["id"]], "submit", False, None)]


def test_nothing_is_handed_over_before_the_commit(in_background, order):
    with transaction.atomic():
        made = desk.create_return(
            {"sub_mchid": SUB_MCHID, "out_order_no": order["out_order_no"],
             "return_mchid": RECEIVER, "amount": 1, "description": "code"},
            by=None, door=desk.Door.CODE, send=True,
        )  # fmt: skip
        assert made.disposition is desk.Disposition.SEND_IN_BACKGROUND
        assert in_background.calls == []
    assert in_background.calls == [([made.row.pk], "submit", False, None)]


def test_a_filtered_selection_is_counted_before_its_drafts_change(operator, configured, order):  # noqa: F811
    """Filter by Draft, then Submit: the drafts are no longer drafts once approved, and a
    count taken afterwards on the filtered list said "-2 returns were skipped"."""
    drafts = [draft(order) for _ in range(2)]
    response = operator.post(
        f"{reverse(CHANGELIST)}?state__exact=draft",
        {"action": "submit_to_wechat_pay", "_selected_action": [r.pk for r in drafts],
         "post": "yes"},
        follow=True,
    )  # fmt: skip
    said = " | ".join(texts(response))
    assert "2 returns succeeded." in said and "skipped" not in said, said


def test_a_large_submit_is_approved_in_the_background_and_answered_at_once(
    operator,  # noqa: F811
    sim,
    order,
    fake_tasks,  # noqa: F811
):
    config = wxpay_config(sim, TASK_BACKEND="celery", BULK_BACKGROUND_THRESHOLD=2)
    drafts = [draft(order) for _ in range(5)]
    with override_settings(WXPAY_PROFITSHARING=config):
        response = post_action(operator, "submit_to_wechat_pay", drafts, post="yes")
        assert "5 returns were queued in the background (Celery)." in texts(response)
        # Nothing was approved on the request: the worker approves, as this operator.
        assert set(ProfitSharingReturn.objects.values_list("state", flat=True)) == {"draft"}
        (pks, action, approve, approver_id), *rest = fake_tasks["run_returns"].calls
        assert not rest and (action, approve) == ("submit", True)
        # What the worker does with that message (Celery's task runs the same services).
        task_backends.run_chunk(pks, Action(action), approve, approver_id)
    assert set(ProfitSharingReturn.objects.values_list("state", flat=True)) == {"succeeded"}
    approvers = set(ProfitSharingReturn.objects.values_list("submitted_by__username", flat=True))
    assert approvers == {"operator"}


def test_a_clawback_made_by_the_shops_code_is_sent(configured, shared):  # noqa: F811
    made = desk.claw_back(
        clawback_body(shared, out_clawback_no="CCODE1"), by=None, door=desk.Door.CODE, send=True
    )
    assert made.created and made.disposition is desk.Disposition.SEND_NOW
    assert {row.state for row, _ran in made.batch.ran} == {ReturnState.SUCCEEDED}
    assert ProfitSharingClawback.objects.get(out_clawback_no="CCODE1").state == "completed"


def test_a_drafts_own_page_submits_it(operator, configured, order, client):  # noqa: F811
    """The change page of a draft has "Submit to WeChat Pay": the confirmation, then the desk."""
    row = draft(order)
    change = reverse("admin:wxpay_profitsharing_profitsharingreturn_change", args=[row.pk])
    submit = reverse("admin:wxpay_profitsharing_profitsharingreturn_submit", args=[row.pk])
    assert submit in operator.get(change).content.decode()
    confirmation = operator.get(submit).content.decode()
    assert "1 return for a total of ¥0.10 will be sent to WeChat Pay." in confirmation
    assert ProfitSharingReturn.objects.get(pk=row.pk).state == ReturnState.DRAFT  # only shown
    response = operator.post(submit, {"post": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == change
    assert "1 return succeeded." in texts(response)
    assert ProfitSharingReturn.objects.get(pk=row.pk).state == ReturnState.SUCCEEDED
    assert submit not in operator.get(change).content.decode()  # sent: no button


def test_a_drafts_submit_is_for_those_who_may_submit(configured, order, client):
    row = draft(order)
    viewer = staff("viewer", "view_profitsharingreturn")
    client.force_login(viewer)
    change = reverse("admin:wxpay_profitsharing_profitsharingreturn_change", args=[row.pk])
    submit = reverse("admin:wxpay_profitsharing_profitsharingreturn_submit", args=[row.pk])
    assert submit not in client.get(change).content.decode()
    assert client.post(submit, {"post": "yes"}).status_code == 403
    assert ProfitSharingReturn.objects.get(pk=row.pk).state == ReturnState.DRAFT
