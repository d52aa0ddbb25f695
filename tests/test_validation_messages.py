"""The client's validation messages reach forms, the API and the admin translated."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from django_wxpay_profitsharing import services
from django_wxpay_profitsharing.validation_messages import TRANSLATED
from django_wxpay_profitsharing.wechatpay import errors, validation

from .conftest import RECEIVER, SUB_MCHID


def test_every_client_message_has_a_translation():
    assert set(TRANSLATED) == set(validation.MESSAGES)
    with translation.override("zh-hans"):
        untranslated = [m for m in validation.MESSAGES if str(TRANSLATED[m]) == m]
    assert untranslated == []


def test_service_errors_speak_the_active_language():
    bad = {
        "return_mchid": "x1",
        "amount": 0,
        "description": " ",
        "sub_mchid": SUB_MCHID,
    }  # and neither order_id nor out_order_no
    with pytest.raises(ValidationError) as info:
        services.validate_return_fields(bad)
    with translation.override("zh-hans"):  # lazy: rendered in the language of the moment
        shown = info.value.message_dict
    assert shown == {
        "out_order_no": ["order_id 和 out_order_no 必须填写且只能填写一个"],
        "return_mchid": ["必须是 1-32 位数字的商户号"],
        "amount": ["至少为 1 分"],
        "description": ["不能为空"],
    }
    with pytest.raises(ValidationError) as info:
        services.validate_return_fields(bad)
    assert info.value.message_dict["amount"] == ["must be at least 1 fen"]


def test_an_amount_beyond_int64_is_told_so_not_told_at_least_one_fen():
    with pytest.raises(errors.InvalidRequest) as info:
        validation.validate_amount(2**63)
    assert info.value.message == validation.TOO_MUCH


@pytest.mark.django_db
def test_the_admin_form_shows_them_in_chinese(admin_client):
    data = {
        "sub_mchid": SUB_MCHID,
        "out_order_no": "P1",
        "return_mchid": RECEIVER,
        "amount_yuan": "1.00",
        "description": "a\x01b",
        "calls-TOTAL_FORMS": "0",
        "calls-INITIAL_FORMS": "0",
    }
    with translation.override("zh-hans"):
        page = admin_client.post(
            reverse("admin:wxpay_profitsharing_profitsharingreturn_add"),
            data,
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )
    assert page.status_code == 200  # the form again, with its error
    assert "不能包含控制字符" in page.content.decode()


def test_the_strict_api_and_form_messages_are_translated():
    from django_wxpay_profitsharing import forms
    from django_wxpay_profitsharing.api import filters, pagination, parsers, serializers

    plain = [
        serializers.UNKNOWN_FIELD, serializers.READ_ONLY_FIELD, parsers.TOO_DEEP,
        parsers.UNDECLARED_BODY, filters.NOT_A_MOMENT, filters.OUT_OF_RANGE,
        filters.NOT_A_VALUE, pagination.INVALID_CURSOR, forms.NOT_YUAN, forms.TOO_LITTLE_YUAN,
    ]  # fmt: skip
    formatted = [
        (parsers.DUPLICATE_KEY, {"key": "amount"}),
        (parsers.NOT_A_NUMBER, {"constant": "NaN"}),
        (parsers.BAD_JSON, {"problem": "x"}),
        (filters.UNKNOWN_STATE, {"state": "lost"}),
    ]
    english = [str(m) for m in plain] + [m % args for m, args in formatted]
    with translation.override("zh-hans"):
        chinese = [str(m) for m in plain] + [m % args for m, args in formatted]
    assert [e for e, c in zip(english, chinese, strict=True) if e == c] == []


@pytest.mark.django_db
def test_an_unknown_api_field_is_told_in_chinese():
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("zh", "zh@example.com", "pw"))
    response = client.post(
        "/api/wxpay/returns/", {"out_returnno": "R1"}, format="json", HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    assert response.status_code == 400 and response.json() == {"out_returnno": ["未知字段"]}
