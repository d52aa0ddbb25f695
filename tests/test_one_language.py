"""One language, one currency (issue 24, item 8): what reaches a person is translated,
its amounts in yuan (and in fen where the API's unit is named).

Each test reads a text in Chinese and in English; the English f-strings these texts
were could not be translated.
"""

from __future__ import annotations

import datetime as dt
from html import unescape

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation

from django_wxpay_profitsharing import allocation, clawbacks
from django_wxpay_profitsharing.clients import reset_client
from django_wxpay_profitsharing.models import ProfitSharingReturn
from django_wxpay_profitsharing.models.reconciliation import (
    Discrepancy,
    DiscrepancyKind,
    ReconciliationRun,
)
from django_wxpay_profitsharing.refund_jobs import RefundConflict
from django_wxpay_profitsharing.refund_models import Notification, RefundJob
from django_wxpay_profitsharing.states import ReturnState

from .conftest import SUB_MCHID, pending_return, wxpay_config
from .test_api_routes import LIST, api_user, body

DISCREPANCIES = "admin:wxpay_profitsharing_discrepancy_changelist"
DISCREPANCY = "admin:wxpay_profitsharing_discrepancy_change"


def words(message, language):
    with translation.override(language):
        return str(message)


def test_asking_more_than_returnable_says_it_in_yuan_and_fen_in_either_language():
    with pytest.raises(allocation.AllocationError) as info:
        allocation.proportional(5000, {"A": 1234, "B": 0})
    assert info.value.field == "amount"
    assert words(info.value.message, "zh-hans") == (
        "超出这些分账接收方的可回退金额（¥12.34，即 1234 分）"
    )
    assert words(info.value.message, "en") == (
        "exceeds what is returnable from these receivers (¥12.34: 1234 fen)"
    )


def test_in_order_errors_are_translated():
    with pytest.raises(allocation.AllocationError) as unknown:
        allocation.in_order(1, {"A": 5}, ["A", "X"])
    assert words(unknown.value.message, "zh-hans") == "不是可回退的分账接收方：X"
    with pytest.raises(allocation.AllocationError) as twice:
        allocation.in_order(1, {"A": 5}, ["A", "A"])
    assert words(twice.value.message, "zh-hans") == "有账户重复列出"
    with pytest.raises(allocation.AllocationError) as nothing:
        allocation.in_order(0, {"A": 5}, ["A"])
    assert words(nothing.value.message, "zh-hans") == "至少为 1 分"


def test_a_refund_number_taken_with_other_fields_is_said_in_chinese():
    conflict = RefundConflict(RefundJob(out_refund_no="RF1"), ["amount", "reason"])
    with translation.override("zh-hans"):
        [chinese] = conflict.message_dict["out_refund_no"]
    with translation.override("en"):
        [english] = conflict.message_dict["out_refund_no"]
    assert chinese == "RF1 已存在，但 amount, reason 不同；新的退款请使用新的 out_refund_no。"
    assert english.startswith("RF1 already exists with a different amount, reason")


# ------------------------------------------------------------ reconciliation


@pytest.fixture
def discrepancies(db):
    run = ReconciliationRun.objects.create(
        bill_date=dt.date(2026, 12, 1),
        mchid="1900000100",
        discrepancy_count=3,
        started=timezone.now(),
        finished=timezone.now(),
    )
    return [
        Discrepancy.objects.create(
            run=run,
            out_return_no="R-AMOUNT",
            kind=DiscrepancyKind.AMOUNT_DIFFERS,
            local_amount=5000,
            wechat_amount=123456,
        ),
        Discrepancy.objects.create(
            run=run,
            out_return_no="R-ELSEWHERE",
            kind=DiscrepancyKind.MERCHANT_DIFFERS,
            wechat_amount=100,
            facts={
                "statuses": ["PROCESSING", "SUCCESS"],
                "bill_mchid": "1900000999",
                "bill_sub_mchid": "1900000109",
                "mchid": "1900000100",
                "sub_mchid": "",
            },
        ),
        # A row that kept a sentence, not facts: shown as it was stored.
        Discrepancy.objects.create(
            run=run,
            out_return_no="R-OLD",
            kind=DiscrepancyKind.MISSING_LOCALLY,
            wechat_amount=7,
            detail="in the bill (SUCCESS), no local return with this number",
        ),
    ]


def page(client, url, language):
    with translation.override(language):
        response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return unescape(response.content.decode())


def test_discrepancies_in_chinese_and_yuan(admin_client, configured, discrepancies):
    listed = page(admin_client, reverse(DISCREPANCIES), "zh-hans")
    assert "¥50.00" in listed and "¥1,234.56" in listed and "5000" not in listed
    assert "本地 ¥50.00，账单 ¥1,234.56" in listed
    assert (
        "账单中属于商户 1900000999 的子商户 1900000109（处理中, 回退成功），而不是商户 1900000100"
        in listed
    )
    assert "本地金额" in listed and "账单金额" in listed and "（分）" not in listed
    assert "in the bill (SUCCESS), no local return with this number" in listed
    one = page(admin_client, reverse(DISCREPANCY, args=[discrepancies[0].pk]), "zh-hans")
    assert "本地 ¥50.00，账单 ¥1,234.56" in one


def test_discrepancies_in_english_and_yuan(admin_client, configured, discrepancies):
    listed = page(admin_client, reverse(DISCREPANCIES), "en")
    assert "local ¥50.00, bill ¥1,234.56" in listed
    assert (
        "in the bill as merchant 1900000999, sub-merchant 1900000109's (Processing, Succeeded), "
        "not merchant 1900000100's" in listed
    )


# ------------------------------------------------------------ WeChat Pay's values


def test_a_returns_wechat_result_is_shown_in_words(admin_client, configured, order):
    made = pending_return(order, amount=5, submit=False)
    ProfitSharingReturn.objects.filter(pk=made.pk).update(
        state=ReturnState.PROCESSING, result="SUCCESS"
    )
    url = reverse("admin:wxpay_profitsharing_profitsharingreturn_change", args=[made.pk])
    chinese = page(admin_client, url, "zh-hans")
    assert "回退成功" in chinese and ">SUCCESS<" not in chinese
    assert "Succeeded" in page(admin_client, url, "en")


# ------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("language", "refusal"),
    [("en", "this user may not submit this return"), ("zh-hans", "该用户无权提交此分账回退")],
)
def test_a_refused_submit_is_said_in_the_callers_language(db, sim, order, language, refusal):
    """Two people for money: the maker of a draft may not send it (the desk's refusal)."""
    with override_settings(WXPAY_PROFITSHARING=wxpay_config(sim, REQUIRE_SEPARATE_SUBMITTER=True)):
        maker = api_user("maker")
        created = maker.post(LIST, body(order), format="json")
        assert created.status_code == 201 and created.data["state"] == "draft"
        with translation.override(language):
            refused = maker.post(
                f"{LIST}{created.data['id']}/submit/",
                content_type="application/json",
                HTTP_ACCEPT_LANGUAGE=language,
            )
    reset_client()
    assert refused.status_code == 403 and refused.data["detail"] == refusal


@pytest.mark.parametrize(
    ("language", "refusal"),
    [
        ("en", "exceeds what is returnable from this receiver (¥10.00: 1000 fen)"),
        ("zh-hans", "超出该分账接收方的可回退金额（¥10.00，即 1000 分）"),
    ],
)
def test_a_return_beyond_the_ledger_is_refused_in_yuan_and_fen(
    db, configured, order, language, refusal
):
    clawbacks.sync_order(  # the mirror the ledger reads
        out_order_no=order["out_order_no"],
        transaction_id=order["transaction_id"],
        sub_mchid=SUB_MCHID,
    )
    with translation.override(language):
        refused = api_user().post(
            LIST, body(order, amount=1001), format="json", HTTP_ACCEPT_LANGUAGE=language
        )
    assert refused.status_code == 400 and refused.data["amount"] == [refusal], refused.data


def test_a_notifications_refund_status_is_shown_in_words(admin_client, configured):
    note = Notification.objects.create(
        mchid="1900000100", event_type="REFUND.SUCCESS", out_refund_no="RF9",
        refund_status="SUCCESS", verified=True,
    )  # fmt: skip
    listed = "admin:wxpay_profitsharing_notification_changelist"
    one = reverse("admin:wxpay_profitsharing_notification_change", args=[note.pk])
    for url in (reverse(listed), one):
        chinese = page(admin_client, url, "zh-hans")
        assert "退款成功" in chinese and ">SUCCESS<" not in chinese
        assert ">Succeeded<" in page(admin_client, url, "en")
