"""Refund jobs in the admin, against the simulator: "Refund" on a sharing order (the plan, then
Approve), the jobs' list and filters, a job's page (plan, WeChat's ids, calls, notifications)
and its buttons."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from django_wxpay_profitsharing import desk
from django_wxpay_profitsharing.models import Notification, ProfitSharingOrder, RefundJob
from django_wxpay_profitsharing.refund_states import Attention, RefundJobState

from .conftest import SUB_MCHID, unique_no, wxpay_config
from .test_refund_jobs import split_payment

pytestmark = pytest.mark.django_db(transaction=True)
JOBS = "admin:wxpay_profitsharing_refundjob_changelist"
EVERYTHING = ("view_refundjob", "add_refundjob", "submit_refundjob", "operate_refundjob",
              "view_profitsharingorder", "view_profitsharingclawback")  # fmt: skip


@pytest.fixture
def site(sim):
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim)):
        yield sim


def staff(username="operator", codenames=EVERYTHING, groups=()):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return User.objects.get(pk=user.pk)


@pytest.fixture
def operator(client):
    client.force_login(staff())
    return client


@pytest.fixture
def shared(site):
    """A payment of ¥100.00 split 30/20 to two shops and 10 to a person; its order mirrored."""
    _payment, order = split_payment(site)
    return ProfitSharingOrder.objects.get(out_order_no=order["out_order_no"])


def refund_url(order):
    return reverse("admin:wxpay_profitsharing_profitsharingorder_refund", args=[order.pk])


def job_url(job):
    return reverse("admin:wxpay_profitsharing_refundjob_change", args=[job.pk])


def do_url(job, what):
    return reverse("admin:wxpay_profitsharing_refundjob_do", args=[job.pk, what])


def texts(response):
    return [str(m) for m in response.context["messages"]]


def number_on(page: str) -> str:
    return re.search(r'name="out_refund_no" value="([^"]+)"', page).group(1)


def refund_posts(sim):
    return [c for c in sim.calls() if c["endpoint"] == "refund_create"]


def job_of(sim, amount, *, send=False, split=False, **extra) -> RefundJob:
    """A job of a fresh payment of ¥100.00 (``split``: 30/20/10 shared out, 40 frozen)."""
    payment = split_payment(sim)[0] if split else sim.seed_payment(10000, sub_mchid=SUB_MCHID)
    made = desk.create_refund(
        {"out_refund_no": unique_no("RA"), "transaction_id": payment["transaction_id"],
         "sub_mchid": SUB_MCHID, "amount": amount, "reason": "admin", **extra},
        by=None, door=desk.Door.CODE, send=send,
    )  # fmt: skip
    return RefundJob.objects.get(pk=made.job.pk)


# ------------------------------------------------------- "Refund" on a sharing order


def test_refund_a_sharing_order_shows_the_plan_then_approve_makes_one_job(operator, site, shared):
    order_page = operator.get(
        reverse("admin:wxpay_profitsharing_profitsharingorder_change", args=[shared.pk])
    ).content.decode()
    assert refund_url(shared) in order_page  # the button

    form = operator.get(refund_url(shared)).content.decode()
    number = number_on(form)
    assert number.startswith("RF") and 'name="amount_yuan"' in form
    fields = {"out_refund_no": number, "amount_yuan": "100.00", "reason": "退货",
              "allow_unfreeze": "on"}  # fmt: skip
    plan = operator.post(refund_url(shared), fields)
    page = plan.content.decode()
    assert plan.status_code == 200 and "Approve: refund now" in page
    job = RefundJob.objects.get()
    assert (job.state, job.out_refund_no, job.amount) == (RefundJobState.DRAFT, number, 10000)
    assert (job.transaction_id, job.sub_mchid) == (shared.transaction_id, SUB_MCHID)
    # The plan in yuan and in words, with what the shop funds and why.
    assert "¥100.00" in page and "¥40.00" in page and "¥50.00" in page and "¥10.00" in page
    assert "unfrozen first" in page and "personal receivers" in page
    assert refund_posts(site) == []

    again = operator.post(refund_url(shared), fields)  # "Show the plan" twice: the same draft
    assert again.status_code == 200 and RefundJob.objects.count() == 1

    approved = operator.post(refund_url(shared), {"approve": number}, follow=True)
    assert approved.redirect_chain[-1][0] == job_url(job)
    assert any("was approved" in text for text in texts(approved)), texts(approved)
    job.refresh_from_db()
    assert job.state == RefundJobState.SUCCEEDED, (job.state, job.last_error_message)
    assert job.submitted_by.username == "operator"

    twice = operator.post(refund_url(shared), {"approve": number}, follow=True)
    assert any("is no draft" in text for text in texts(twice)), texts(twice)
    assert RefundJob.objects.count() == 1 and len(refund_posts(site)) == 1


def test_an_amount_above_the_payment_is_a_form_error_with_nothing_made(operator, site, shared):
    number = number_on(operator.get(refund_url(shared)).content.decode())
    response = operator.post(refund_url(shared), {"out_refund_no": number, "amount_yuan": "100.01"})
    assert response.status_code == 200
    assert "amount_yuan" in response.context["form"].errors, response.context["form"].errors
    assert "10000" in str(response.context["form"].errors["amount_yuan"])
    assert not RefundJob.objects.exists()
    for bad in ("1e3", "-1", "0.001", ""):
        answer = operator.post(refund_url(shared), {"out_refund_no": number, "amount_yuan": bad})
        assert "amount_yuan" in answer.context["form"].errors, bad
    assert not RefundJob.objects.exists()


def test_a_number_used_with_other_fields_gets_a_new_one(operator, site, shared):
    number = number_on(operator.get(refund_url(shared)).content.decode())
    operator.post(refund_url(shared), {"out_refund_no": number, "amount_yuan": "1.00"})
    back = operator.post(refund_url(shared), {"out_refund_no": number, "amount_yuan": "2.00"})
    assert any("used already" in text for text in texts(back)), texts(back)
    fresh = number_on(back.content.decode())
    assert fresh != number and back.context["form"]["amount_yuan"].value() == "2.00"
    altered = operator.post(refund_url(shared), {"out_refund_no": "x y", "amount_yuan": "2.00"})
    assert any("altered" in text for text in texts(altered))
    made = operator.post(refund_url(shared), {"out_refund_no": fresh, "amount_yuan": "2.00"})
    assert "Approve: refund now" in made.content.decode()
    assert sorted(RefundJob.objects.values_list("amount", flat=True)) == [100, 200]


def test_the_creator_may_not_approve_with_four_eyes(client, site, shared):
    config = wxpay_config(site, REQUIRE_SEPARATE_SUBMITTER=True)
    with override_settings(WXPAY_PROFITSHARING=config):
        client.force_login(staff("maker"))
        number = number_on(client.get(refund_url(shared)).content.decode())
        page = client.post(refund_url(shared), {"out_refund_no": number, "amount_yuan": "1.00"})
        html = page.content.decode()
        assert "Approve: refund now" not in html and "approves it on its page" in html
        job = RefundJob.objects.get()
        forced = client.post(refund_url(shared), {"approve": number}, follow=True)
        assert any("is a draft" in text for text in texts(forced)), texts(forced)
        assert "Approve: refund now" not in client.get(job_url(job)).content.decode()
        refused = client.post(do_url(job, "approve"), follow=True)
        assert any("may not approve" in text for text in texts(refused)), texts(refused)
        assert RefundJob.objects.get().state == RefundJobState.DRAFT and not refund_posts(site)

        client.force_login(staff("checker"))
        assert "Approve: refund now" in client.get(job_url(job)).content.decode()
        done = client.post(do_url(job, "approve"), follow=True)
        assert any("was approved" in text for text in texts(done)), texts(done)
        assert RefundJob.objects.get().state == RefundJobState.SUCCEEDED


def test_refund_needs_the_add_permission(client, site, shared):
    client.force_login(staff("viewer", ("view_profitsharingorder", "view_refundjob")))
    page = client.get(
        reverse("admin:wxpay_profitsharing_profitsharingorder_change", args=[shared.pk])
    ).content.decode()
    assert refund_url(shared) not in page
    assert client.get(refund_url(shared)).status_code == 403
    assert client.post(refund_url(shared), {"amount_yuan": "1.00"}).status_code == 403


# --------------------------------------------------------------- the jobs' pages


def test_the_list_its_filters_and_yuan(operator, site):
    done = job_of(site, 3000, send=True)
    site.set_merchant(SUB_MCHID, balance=0)
    short = job_of(site, 10000, send=True, split=True)
    assert (short.state, short.attention) == (RefundJobState.NEEDS_OPERATOR,
                                              Attention.BALANCE_SHORT)  # fmt: skip
    listing = operator.get(reverse(JOBS)).content.decode()
    assert done.out_refund_no in listing and short.out_refund_no in listing
    assert "¥30.00" in listing and "¥100.00" in listing and done.transaction_id in listing
    assert "Refunded" in listing and "Waiting for an operator" in listing
    waiting = operator.get(reverse(JOBS), {"needs_operator": "yes"}).content.decode()
    assert short.out_refund_no in waiting and done.out_refund_no not in waiting
    succeeded = operator.get(reverse(JOBS), {"state": "succeeded"}).content.decode()
    assert done.out_refund_no in succeeded and short.out_refund_no not in succeeded
    found = operator.get(reverse(JOBS), {"q": done.out_refund_no[:6]}).content.decode()
    assert done.out_refund_no in found


def test_a_jobs_page_shows_plan_ids_calls_and_notifications(operator, site, shared):
    made = desk.create_refund(
        {"out_refund_no": unique_no("RP"), "transaction_id": shared.transaction_id,
         "sub_mchid": SUB_MCHID, "amount": 10000},
        by=None, door=desk.Door.CODE, send=True,
    )  # fmt: skip
    job = RefundJob.objects.get(pk=made.job.pk)
    assert job.state == RefundJobState.SUCCEEDED, job.last_error_message
    Notification.objects.create(
        mchid=job.mchid, event_type="REFUND.SUCCESS", out_refund_no=job.out_refund_no,
        refund_status="SUCCESS", verified=True, changed="looked now", job=job,
    )  # fmt: skip
    page = operator.get(job_url(job)).content.decode()
    attempt = job.refunds.get()
    assert attempt.refund_id and attempt.refund_id in page and "SUCCESS" in page
    assert "¥100.00" in page and "¥10.00" in page  # the amount; what the shop funded
    assert job.unfreeze_out_order_no in page and "¥40.00" in page  # unfrozen
    clawback = job.clawbacks.get()
    assert clawback.out_clawback_no in page
    assert "/v3/refund/domestic/refunds" in page  # the calls
    assert "REFUND.SUCCESS" in page and "looked now" in page  # the notification
    assert 'name="_save"' not in page and "Refresh from WeChat Pay" in page
    assert "Retry after a top-up" not in page  # nothing waits for an operator


def test_buttons_are_the_actions_open_to_the_job(operator, site):
    site.set_merchant(SUB_MCHID, balance=0)
    job = job_of(site, 10000, send=True, split=True)
    page = operator.get(job_url(job)).content.decode()
    assert "Retry after a top-up" in page and "Cancel" in page
    assert "Proceed (the shop funds the rest)" not in page and "Try again" not in page
    assert do_url(job, "retry") in page

    refused = operator.post(do_url(job, "proceed"), follow=True)
    assert any("not open" in text for text in texts(refused)), texts(refused)
    assert operator.get(do_url(job, "retry")).status_code == 405
    assert operator.post(do_url(job, "nonsense")).status_code == 404

    site.set_merchant(SUB_MCHID, balance=None)
    site.advance_clock(61)
    retried = operator.post(do_url(job, "retry"), follow=True)
    assert retried.redirect_chain[-1][0] == job_url(job)
    assert any("Retry after a top-up: refund" in text for text in texts(retried)), texts(retried)
    assert RefundJob.objects.get(pk=job.pk).state == RefundJobState.SUCCEEDED
    assert len(refund_posts(site)) == 2 and {r["out_refund_no"] for r in site.refunds()} == {
        job.out_refund_no}  # fmt: skip


def test_cancel_a_draft_and_the_operate_permission(client, site):
    job = job_of(site, 100)
    client.force_login(staff("viewer", ("view_refundjob",)))
    page = client.get(job_url(job)).content.decode()
    assert "Cancel" not in page and "Approve: refund now" not in page
    assert client.post(do_url(job, "cancel")).status_code == 403
    assert client.post(do_url(job, "approve")).status_code == 403
    client.force_login(staff())
    done = client.post(do_url(job, "cancel"), follow=True)
    assert any("Cancel: refund" in text for text in texts(done)), texts(done)
    assert RefundJob.objects.get(pk=job.pk).state == RefundJobState.CANCELLED


def test_the_pages_speak_chinese(operator, site, shared):
    job = job_of(site, 100)
    with translation.override("zh-hans"):
        page = operator.get(job_url(job), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert "立即批准退款" in page and "第一步" in page and "草稿" in page
        form = operator.get(refund_url(shared), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert "显示退款计划" in form


def test_merchant_groups_hide_another_merchants_jobs(client, site):
    mine = job_of(site, 100)
    other = RefundJob.objects.get(pk=mine.pk)
    other.pk, other.mchid, other.out_refund_no = None, "1900000999", "THEIRS"
    other.save()
    config = wxpay_config(site, MERCHANT_SCOPE="django_wxpay_profitsharing.access.merchant_groups")
    with override_settings(WXPAY_PROFITSHARING=config):
        client.force_login(staff("scoped", groups=[f"wxpay:{site.credentials['mchid']}"]))
        listing = client.get(reverse(JOBS)).content.decode()
        assert mine.out_refund_no in listing and "THEIRS" not in listing
        assert client.get(job_url(other)).status_code == 302  # the admin's "not found"
        assert client.post(do_url(other, "cancel")).status_code == 404
