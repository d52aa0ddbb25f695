"""Sharing orders, clawbacks and the returns' new actions in the admin, against the simulator."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from django_wxpay_profitsharing import clawbacks, services
from django_wxpay_profitsharing.models import (
    ProfitSharingClawback,
    ProfitSharingOrder,
    ProfitSharingReturn,
    ReturnState,
)

from .conftest import SUB_MCHID, unique_no

pytestmark = pytest.mark.django_db(transaction=True)
SHOP_A, SHOP_B, PERSON = "86693852", "86693853", "o-personal-openid-1"
ORDERS = "admin:wxpay_profitsharing_profitsharingorder_changelist"
CLAWBACKS = "admin:wxpay_profitsharing_profitsharingclawback_changelist"
RETURNS = "admin:wxpay_profitsharing_profitsharingreturn_changelist"
OPERATOR = (
    "view_profitsharingorder", "add_profitsharingorder",
    "view_profitsharingclawback", "add_profitsharingclawback", "submit_profitsharingclawback",
    "view_profitsharingreturn", "add_profitsharingreturn", "submit_profitsharingreturn",
)  # fmt: skip


def staff(username, codenames):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def operator(client):
    client.force_login(staff("operator", OPERATOR))
    return client


@pytest.fixture
def shared(configured):
    """A mirrored FINISHED order: 600 and 300 fen to two shops, 100 fen to a person."""
    seeded = configured.seed_order(
        unique_no("PA"),
        receivers=[
            {"account": SHOP_A, "amount": 600, "type": "MERCHANT_ID", "result": "SUCCESS"},
            {"account": SHOP_B, "amount": 300, "type": "MERCHANT_ID", "result": "SUCCESS"},
            {"account": PERSON, "amount": 100, "type": "PERSONAL_OPENID", "result": "SUCCESS"},
        ],
        sub_mchid=SUB_MCHID,
    )
    return clawbacks.sync_order(
        out_order_no=seeded["out_order_no"],
        transaction_id=seeded["transaction_id"],
        sub_mchid=SUB_MCHID,
    )


def claw_back_url(order):
    return reverse("admin:wxpay_profitsharing_profitsharingorder_claw_back", args=[order.pk])


def texts(response):
    return [str(m) for m in response.context["messages"]]


def posts(sim):
    return [c for c in sim.calls() if c["method"] == "POST"]


def cells(html):
    """The text of each table row, cells joined by |, tags dropped."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S)
    return [
        "|".join(
            re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        )
        for r in rows
    ]


# ----------------------------------------------------------- sharing orders


def test_order_page_shows_the_ledger_in_yuan(operator, shared):
    clawbacks.create_or_get_clawback(
        {"out_clawback_no": "CL1", "out_order_no": shared.out_order_no,
         "transaction_id": shared.transaction_id, "sub_mchid": SUB_MCHID, "amount": 150,
         "description": "partial"},
    )  # fmt: skip
    listing = operator.get(reverse(ORDERS)).content.decode()
    assert shared.out_order_no in listing and "Finished" in listing
    page = operator.get(
        reverse("admin:wxpay_profitsharing_profitsharingorder_change", args=[shared.pk])
    ).content.decode()
    assert "¥6.00" in page and "¥3.00" in page  # shared
    assert "¥1.00" in page and "¥0.50" in page  # reserved (drafts hold their amount)
    assert "¥5.00" in page and "¥2.50" in page  # returnable
    assert "personal receivers cannot be returned from" in page
    assert claw_back_url(shared) in page  # the button
    assert 'name="_save"' not in page  # read-only


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ["Finished", "merchant", "person (openid)", "Succeeded"]),
        ("zh-hans", ["已完成", "商户", "个人（openid）", "分账成功"]),
    ],
)
def test_the_order_pages_show_wechat_pays_values_in_words(operator, shared, language, words):
    from django.utils import translation

    change = reverse("admin:wxpay_profitsharing_profitsharingorder_change", args=[shared.pk])
    with translation.override(language):
        listing = operator.get(reverse(ORDERS), HTTP_ACCEPT_LANGUAGE=language).content.decode()
        page = operator.get(change, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    finished, merchant, person, succeeded = words
    assert f">{finished}<" in listing and ">FINISHED<" not in listing
    rows = cells(page)
    assert any(f"|{merchant}|{SHOP_A}|" in row and f"|{succeeded}|" in row for row in rows), rows
    assert any(f"|{person}|{PERSON}|" in row for row in rows), rows
    assert "MERCHANT_ID" not in page and "PERSONAL_OPENID" not in page


def test_asking_too_much_is_said_in_chinese_and_yuan(operator, configured, shared):
    from django.utils import translation

    with translation.override("zh-hans"):
        over = operator.post(
            claw_back_url(shared),
            {"amount_yuan": "9.01", "policy": "proportional", "description": "too much"},
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        ).content.decode()
    assert "超出这些分账接收方的可回退金额（¥9.00，即 900 分）" in over


@pytest.mark.parametrize(
    ("language", "requested", "everything"),
    [
        ("en", "Requested amount", "everything returnable"),
        ("zh-hans", "请求金额", "全部可回退金额"),
    ],
)
def test_a_clawbacks_page_shows_what_was_asked_in_yuan(
    operator, shared, language, requested, everything
):
    from django.utils import translation

    asked, _ = clawbacks.create_or_get_clawback(
        {"out_clawback_no": "CL50", "out_order_no": shared.out_order_no,
         "transaction_id": shared.transaction_id, "sub_mchid": SUB_MCHID, "amount": 150,
         "description": "partial"},
    )  # fmt: skip
    whole, _ = clawbacks.create_or_get_clawback(
        {"out_clawback_no": "CL51", "out_order_no": shared.out_order_no,
         "transaction_id": shared.transaction_id, "sub_mchid": SUB_MCHID,
         "description": "all"},
    )  # fmt: skip
    change = "admin:wxpay_profitsharing_profitsharingclawback_change"
    with translation.override(language):
        one = operator.get(reverse(change, args=[asked.pk]), HTTP_ACCEPT_LANGUAGE=language)
        other = operator.get(reverse(change, args=[whole.pk]), HTTP_ACCEPT_LANGUAGE=language)
    one_page, other_page = one.content.decode(), other.content.decode()
    assert requested in one_page and "¥1.50" in one_page and ">150<" not in one_page
    assert "（分）" not in one_page and "(fen)" not in one_page
    assert everything in other_page


def test_sync_action(operator, configured, shared):
    ProfitSharingOrder.objects.filter(pk=shared.pk).update(state="PROCESSING", synced_at=None)
    ghost = ProfitSharingOrder.objects.create(
        mchid=shared.mchid, sub_mchid=SUB_MCHID, out_order_no="GHOST", transaction_id="4200"
    )
    response = operator.post(
        reverse(ORDERS),
        {"action": "sync_from_wechat_pay", "_selected_action": [shared.pk, ghost.pk]},
        follow=True,
    )
    messages = " | ".join(texts(response))
    assert "1 sharing order was synced from WeChat Pay." in messages
    assert "1 sharing order could not be synced: GHOST (" in messages
    shared.refresh_from_db()
    assert shared.state == "FINISHED" and shared.synced_at is not None
    assert posts(configured) == []


# ---------------------------------------------------------------- claw back


def test_claw_back_shows_the_allocation_then_creates_and_submits(operator, configured, shared):
    form = operator.get(claw_back_url(shared))
    assert form.status_code == 200
    assert "¥9.00" in form.content.decode()  # returnable now
    page = operator.post(
        claw_back_url(shared),
        {"amount_yuan": "3.00", "policy": "proportional", "accounts": "", "description": "退款"},
    )
    assert page.status_code == 200 and page.context["stage"] == "confirm", page.context.get(
        "form"
    ).errors
    rows = cells(page.content.decode())
    assert any(r.startswith(f"merchant|{SHOP_A}|¥6.00|¥6.00|¥2.00") for r in rows), rows
    assert any(r.startswith(f"merchant|{SHOP_B}|¥3.00|¥3.00|¥1.00") for r in rows), rows
    personal = next(r for r in rows if PERSON in r)
    assert personal.endswith("personal receivers cannot be returned from"), personal
    assert posts(configured) == [] and ProfitSharingClawback.objects.count() == 0

    number = page.context["out_clawback_no"]
    assert number.startswith("C")
    confirm = {
        "amount_yuan": "3.00", "policy": "proportional", "accounts": "", "description": "退款",
        "out_clawback_no": number, "confirm": "yes",
    }  # fmt: skip
    done = operator.post(claw_back_url(shared), confirm, follow=True)
    clawback = ProfitSharingClawback.objects.get()
    assert (clawback.out_clawback_no, clawback.amount) == (number, 300)
    assert done.redirect_chain[-1][0].endswith(f"/profitsharingclawback/{clawback.pk}/change/")
    messages = " | ".join(texts(done))
    assert f"Clawback {number}: 2 returns for a total of ¥3.00." in messages
    assert "2 returns succeeded." in messages
    parts = dict(clawback.returns.values_list("return_mchid", "amount"))
    assert parts == {SHOP_A: 200, SHOP_B: 100}
    assert len(posts(configured)) == 2
    # Confirming twice (a double click, a reload) is the same clawback.
    operator.post(claw_back_url(shared), confirm, follow=True)
    assert ProfitSharingClawback.objects.count() == 1 and len(posts(configured)) == 2
    inline = operator.get(done.redirect_chain[-1][0]).content.decode()
    assert all(row.out_return_no in inline for row in clawback.returns.all())
    assert "¥2.00" in inline and "Succeeded" in inline


def test_claw_back_in_order_and_over_asking(operator, configured, shared):
    over = operator.post(
        claw_back_url(shared),
        {"amount_yuan": "9.01", "policy": "proportional", "description": "too much"},
    )
    assert over.context["stage"] == "form" and "amount_yuan" in over.context["form"].errors
    ordered = operator.post(
        claw_back_url(shared),
        {"amount_yuan": "4", "policy": "in_order", "accounts": f"{SHOP_B}, {SHOP_A}",
         "description": "in order"},
    )  # fmt: skip
    rows = cells(ordered.content.decode())
    assert any(r.startswith(f"merchant|{SHOP_B}|¥3.00|¥3.00|¥3.00") for r in rows), rows
    assert any(r.startswith(f"merchant|{SHOP_A}|¥6.00|¥6.00|¥1.00") for r in rows), rows
    no_accounts = operator.post(claw_back_url(shared), {"policy": "in_order", "description": "x"})
    assert "accounts" in no_accounts.context["form"].errors
    assert ProfitSharingClawback.objects.count() == 0 and posts(configured) == []


def test_claw_back_by_an_adder_makes_drafts_submitted_from_the_clawbacks(
    client, configured, shared
):
    client.force_login(staff("adder", ("view_profitsharingorder", "add_profitsharingclawback",
                                       "view_profitsharingclawback")))  # fmt: skip
    page = client.post(claw_back_url(shared), {"policy": "proportional", "description": "all"})
    assert page.context["total"] == "¥9.00"
    done = client.post(
        claw_back_url(shared),
        {"policy": "proportional", "description": "all", "confirm": "yes",
         "out_clawback_no": page.context["out_clawback_no"]},
        follow=True,
    )  # fmt: skip
    assert "2 returns were made as drafts: submit the clawback to send them." in texts(done)
    clawback = ProfitSharingClawback.objects.get()
    assert set(clawback.returns.values_list("state", flat=True)) == {ReturnState.DRAFT}
    assert posts(configured) == []
    # The adder has no Submit action; the operator submits, after a confirmation.
    listing = client.get(reverse(CLAWBACKS)).content.decode()
    assert "submit_clawbacks" not in listing
    client.force_login(staff("submitter", OPERATOR))
    selection = {"action": "submit_clawbacks", "_selected_action": [clawback.pk]}
    confirm = client.post(reverse(CLAWBACKS), selection)
    assert "2 returns for a total of ¥9.00" in confirm.content.decode()
    assert posts(configured) == []
    sent = client.post(reverse(CLAWBACKS), {**selection, "post": "yes"}, follow=True)
    assert "2 returns succeeded." in texts(sent)
    assert set(clawback.returns.values_list("state", flat=True)) == {ReturnState.SUCCEEDED}


def test_claw_back_needs_its_permission(client, configured, shared):
    client.force_login(staff("viewer", ("view_profitsharingorder", "view_profitsharingclawback")))
    calls = len(configured.calls())
    change = reverse("admin:wxpay_profitsharing_profitsharingorder_change", args=[shared.pk])
    assert claw_back_url(shared) not in client.get(change).content.decode()
    assert client.get(claw_back_url(shared)).status_code == 403
    response = client.post(
        claw_back_url(shared),
        {"policy": "proportional", "description": "x", "confirm": "yes",
         "out_clawback_no": "CSNEAKY"},
    )  # fmt: skip
    assert response.status_code == 403
    listing = client.get(reverse(ORDERS)).content.decode()
    assert "claw_back" not in listing and "sync_from_wechat_pay" not in listing
    assert ProfitSharingClawback.objects.count() == 0 and len(configured.calls()) == calls


def test_claw_back_action_on_one_order_leads_to_the_form(operator, shared):
    response = operator.post(
        reverse(ORDERS), {"action": "claw_back", "_selected_action": [shared.pk]}
    )
    assert response.status_code == 302 and response["Location"] == claw_back_url(shared)


# ------------------------------------------------ returns: top-up, retry, again


def waiting_return(sim, shared):
    sim.set_receiver_balance(SHOP_A, 10)
    clawback, _created = clawbacks.create_or_get_clawback(
        {"out_clawback_no": "CW1", "out_order_no": shared.out_order_no,
         "transaction_id": shared.transaction_id, "sub_mchid": SUB_MCHID, "amount": 100,
         "policy": "in_order", "accounts": [SHOP_A], "description": "short"},
        submit=True,
    )  # fmt: skip
    [row] = clawback.returns.all()
    row = services.submit(row)
    assert (row.state, row.awaiting_topup) == (ReturnState.PROCESSING, True)
    return row


def test_waiting_returns_are_filterable_shown_and_retried(operator, configured, shared):
    row = waiting_return(configured, shared)
    other = services.create_return(
        sub_mchid=SUB_MCHID, out_order_no=shared.out_order_no, return_mchid=SHOP_B, amount=5,
        description="other",
    )  # fmt: skip
    waiting = operator.get(reverse(RETURNS), {"awaiting_topup": "yes"}).content.decode()
    assert row.out_return_no in waiting and other.out_return_no not in waiting
    assert "Processing at WeChat Pay — waiting for the receiver to top up" in waiting
    selection = {"action": "retry_now", "_selected_action": [row.pk, other.pk]}
    still = operator.post(reverse(RETURNS), selection, follow=True)
    messages = " | ".join(texts(still))
    assert "1 return is waiting for its receiver to top up" in messages
    assert "1 return was skipped (not in a state for this action)." in messages
    configured.set_receiver_balance(SHOP_A, None)
    done = operator.post(reverse(RETURNS), selection, follow=True)
    assert "1 return succeeded." in texts(done)
    row.refresh_from_db()
    assert (row.state, row.awaiting_topup) == (ReturnState.SUCCEEDED, False)
    sent = [c for c in posts(configured) if c.get("out_return_no") == row.out_return_no]
    assert len(sent) == 3 and len({c["body_sha256"] for c in sent}) == 1


def test_claw_back_again_after_time_out_closed(operator, configured, shared):
    row = waiting_return(configured, shared)
    configured.advance_clock(5 * 86400 + 60)
    row = services.refresh(row)
    assert row.fail_reason == "TIME_OUT_CLOSED"
    configured.set_receiver_balance(SHOP_A, None)
    selection = {"action": "claw_back_again", "_selected_action": [row.pk]}
    confirm = operator.post(reverse(RETURNS), selection)
    assert "1 return for a total of ¥1.00" in confirm.content.decode()
    assert ProfitSharingReturn.objects.count() == 1
    done = operator.post(reverse(RETURNS), {**selection, "post": "yes"}, follow=True)
    assert "1 return succeeded." in texts(done)
    new = ProfitSharingReturn.objects.get(replaces=row)
    assert new.state == ReturnState.SUCCEEDED and new.clawback_id == row.clawback_id
    again = operator.post(reverse(RETURNS), {**selection, "post": "yes"}, follow=True)
    assert "1 return was skipped (not in a state for this action)." in texts(again)
    assert ProfitSharingReturn.objects.count() == 2


def test_the_new_return_actions_need_their_permissions(client, configured, shared):
    row = waiting_return(configured, shared)
    client.force_login(staff("viewer", ("view_profitsharingreturn",)))
    listing = client.get(reverse(RETURNS)).content.decode()
    assert "retry_now" not in listing and "claw_back_again" not in listing
    before = len(configured.calls())
    for action in ("retry_now", "claw_back_again"):
        data = {"action": action, "_selected_action": [row.pk], "post": "yes"}
        client.post(reverse(RETURNS), data)
    assert len(configured.calls()) == before and ProfitSharingReturn.objects.count() == 1


def test_add_is_a_sync_form(operator, configured):
    seeded = configured.seed_order(unique_no("PS"), sub_mchid=SUB_MCHID, amount=700)
    add = reverse("admin:wxpay_profitsharing_profitsharingorder_add")
    assert operator.get(add).status_code == 200
    bad = operator.post(add, {"out_order_no": "a b", "transaction_id": "x" * 40})
    assert {"out_order_no", "transaction_id"} <= set(bad.context["form"].errors)
    unknown = operator.post(add, {"out_order_no": "NOPE", "transaction_id": "4200"})
    assert "WeChat Pay knows no sharing order with this" in str(unknown.context["form"].errors)
    done = operator.post(
        add,
        {"out_order_no": seeded["out_order_no"], "transaction_id": seeded["transaction_id"],
         "sub_mchid": SUB_MCHID},
        follow=True,
    )  # fmt: skip
    order = ProfitSharingOrder.objects.get(out_order_no=seeded["out_order_no"])
    assert done.redirect_chain[-1][0].endswith(f"/profitsharingorder/{order.pk}/change/")
    assert f"{order.out_order_no} was synced from WeChat Pay." in texts(done)
    assert order.receivers.get().amount == 700


def test_add_needs_the_order_add_permission(client, configured):
    client.force_login(staff("viewer", ("view_profitsharingorder",)))
    add = reverse("admin:wxpay_profitsharing_profitsharingorder_add")
    assert client.get(add).status_code == 403
    assert client.post(add, {"out_order_no": "P1", "transaction_id": "4200"}).status_code == 403
    assert configured.calls() == []


def test_the_claw_back_pages_speak_chinese(operator, configured, shared):
    from django.utils import translation

    with translation.override("zh-hans"):
        change = reverse("admin:wxpay_profitsharing_profitsharingorder_change", args=[shared.pk])
        page = operator.get(change, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        assert "可回退" in page and "个人接收方不可回退" in page and ">追回<" in page
        confirm = operator.post(
            claw_back_url(shared),
            {"amount_yuan": "1", "policy": "proportional", "description": "退款"},
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        ).content.decode()
        assert "将追回 ¥1.00，分配如下" in confirm and "是，追回" in confirm
