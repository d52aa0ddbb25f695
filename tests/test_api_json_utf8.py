"""JSON bodies are UTF-8 (RFC 8259 §8.1): UTF-16 and UTF-32 are refused through the API.

Why: ``json.loads`` on bytes guesses UTF-16 and UTF-32, so a body a proxy or firewall
reads as UTF-8 (and passes) was acted on as another request. Each encoding, with and
without a byte order mark, declared in a ``charset`` or not, must be refused, naming
the problem, with nothing created and nothing sent to WeChat Pay.
"""

from __future__ import annotations

import json

import pytest

from django_wxpay_profitsharing.models import ProfitSharingReturn

from .test_api_routes import LIST, api_user, body

pytestmark = pytest.mark.django_db(transaction=True)

#: codec -> the name the refusal gives ("utf-16" and "utf-32" write a byte order mark).
ENCODINGS = {
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32": "UTF-32",
    "utf-32-le": "UTF-32",
    "utf-32-be": "UTF-32",
}


def refused(configured, response, status):
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert ProfitSharingReturn.objects.count() == 0 and configured.calls() == []
    return response.json()["detail"]


@pytest.mark.parametrize("codec", sorted(ENCODINGS))
def test_a_wide_body_without_a_charset_is_a_400_naming_its_encoding(configured, order, codec):
    data = json.dumps(body(order, description="退款")).encode(codec)
    response = api_user().post(LIST, data, content_type="application/json")
    detail = refused(configured, response, 400)
    assert ENCODINGS[codec] in detail and "UTF-8" in detail


@pytest.mark.parametrize("codec", sorted(ENCODINGS))
def test_a_wide_body_declared_in_its_charset_is_a_415(configured, order, codec):
    data = json.dumps(body(order)).encode(codec)
    response = api_user().post(LIST, data, content_type=f"application/json; charset={codec}")
    detail = refused(configured, response, 415)
    assert f"charset {codec}" in detail and "UTF-8" in detail


@pytest.mark.parametrize("codec", sorted(ENCODINGS))
def test_a_wide_body_mislabelled_utf8_is_still_a_400(configured, order, codec):
    data = json.dumps(body(order)).encode(codec)
    response = api_user().post(LIST, data, content_type="application/json; charset=UTF-8")
    assert ENCODINGS[codec] in refused(configured, response, 400)


def test_a_utf8_byte_order_mark_and_bytes_that_are_not_utf8_are_400s(configured, order):
    client = api_user()
    text = json.dumps(body(order))
    marked = client.post(LIST, b"\xef\xbb\xbf" + text.encode(), content_type="application/json")
    assert "byte order mark" in refused(configured, marked, 400)
    latin = json.dumps(body(order, description="café"), ensure_ascii=False).encode("latin-1")
    assert "not UTF-8" in refused(
        configured, client.post(LIST, latin, content_type="application/json"), 400
    )


def test_utf8_declared_or_not_is_read(configured, order):
    client = api_user()
    data = json.dumps(body(order, description="用户退款"), ensure_ascii=False).encode()
    for number, content_type in enumerate(
        ("application/json", "application/json; charset=utf-8", "application/json;charset=UTF8")
    ):
        payload = data.replace(b'"amount": 100', b'"amount": %d' % (100 + number))
        response = client.post(LIST, payload, content_type=content_type)
        assert response.status_code == 201, response.content[:300]
    assert ProfitSharingReturn.objects.filter(description="用户退款").count() == 3
