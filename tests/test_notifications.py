"""``read_notification``: known answers, both key modes, several merchants, hostile input.

The known answer is built from the published algorithm (AEAD_AES_256_GCM under the
APIv3 key, SHA256withRSA over ``timestamp\\nnonce\\nbody\\n``) with fixed keys, nonces and
a fixed timestamp, and each constant is checked against ``cryptography`` directly, so
the module is tested against the algorithm, not against itself. The AES-GCM primitive
is first checked on wechatpay-java's own vector.
"""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID

from django_wxpay_profitsharing.wechatpay import crypto, notifications
from django_wxpay_profitsharing.wechatpay.events import RefundNotice, SharingNotice
from django_wxpay_profitsharing.wechatpay.notifications import (
    MemoryNonceStore,
    NotificationKeys,
    NotificationReader,
    Step,
    read_notification,
)
from django_wxpay_profitsharing.wechatpay.payments import Payment
from django_wxpay_profitsharing.wechatpay.words import EventType, OriginalType, RefundStatus

from .test_client_known_answers import GO_TEST_KEY, KEY_ID

MCHID = "1900000100"
APIV3 = "a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb"  # wechatpay-java TestConfig's APIv3 key
PLAIN = (
    '{"mchid":"1900000100","transaction_id":"1008450740201411110005820873",'
    '"out_trade_no":"20150806125346","refund_id":"50200207182018070300011301001",'
    '"out_refund_no":"7752501201407033233368018","refund_status":"SUCCESS",'
    '"success_time":"2018-06-08T10:34:56+08:00","user_received_account":"招商银行信用卡0403",'
    '"amount":{"total":999,"refund":999,"payer_total":999,"payer_refund":999}}'
)
RESOURCE_NONCE, AAD = "fdasflkja484", "refund"
CIPHERTEXT = (
    "Y/YEfUnbjBvKjySKXZexHPMC5w42rJuhm76BGeEQG/kpfygbTiJc5VWUfadxGrMVxwKK5RgQZVoUfChgFqrspWjL8Ob"
    "wcCPceVxuniApe9iElI72ByYeO+dR/vcO9D7CsHblKFq9TCMXswPJLcvaYvibDUGmfNT9CsoM3q8XDNdS98UeVk1hdS"
    "tLJ/MXc48DAxeJVKNeoKy6fz/NZIPm3Q9mqcDIY0EQl21iST0fIqAL7pikyUGXq7jvOh1LStwccgQ1y/XxSqiVdeit1"
    "a7lpPcuoIItIONLBglvQXaRrIkvbvqYR+IeDbfteqJDfOe3gqDi3RHj0dVF79nX4IKAFn4eN3N2TYBOjuhzExqLOwfRj"
    "R7NjnFgGCpHfr/YpuYCapxXC/F1HhHKm+zS4j6vq2vQuQeS0um26AKwt75Ry4CKP5HD+MI2L/geXf0kfr4EHC9QnAmZO"
    "YVbD7+jsmRCgehLQh1cl8kvKeAkv0DQD2yG/WDiKLNooaaFY4E0MREyfvsV8qjPwEZ7e5rXStqZQw=="
)
BODY = json.dumps(
    {
        "id": "EV-2018022511223320873",
        "create_time": "2018-06-08T10:34:56+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "REFUND.SUCCESS",
        "summary": "退款成功",
        "resource": {
            "original_type": "refund",
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": CIPHERTEXT,
            "associated_data": AAD,
            "nonce": RESOURCE_NONCE,
        },
    },
    ensure_ascii=False,
    separators=(",", ":"),
).encode()
TS, NONCE = 1528425296, "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
SIGNATURE = (
    "aqy77LsidGqPaJtM9oC4QSM3SJjpNVMJLOBTi+XzpGGcq6fxX4ZnG2ZCm0GuwPY1wt2VnG0zBcuZ/dT51rK8IahXiny"
    "uAAPAKTkyUpI097Af1V/A0VyXxCAppNyo85SQXdme0tUYZvbk1aBsCoK0DE5ZH+aSb+e1Vh1xsOeq9pAVSosUTQ7Bg/b"
    "sgeEO27D19JnApKP+2Cic2xIiUJ4MtLs5raTQ7qU7cg0awXjaXmlXvmXnc4apxKm1DGt8pabnBFPzY0Hh9D2tPyCdNDJ+"
    "WgNRFqspI/++vj7KdE5Y6scX2GNWHt0emJvM2R7PtNjLUthWCfqDbpwRyGsb4fNf+Q=="
)
#: What no error may ever say: the key, the plaintext's values, the ciphertext.
SECRETS = (APIV3, "7752501201407033233368018", "招商银行信用卡0403", CIPHERTEXT[:24])


@pytest.fixture(scope="module")
def wechat_key():
    """WeChat Pay's signing key in these tests: wechatpay-go's test key."""
    return serialization.load_pem_private_key(GO_TEST_KEY.encode(), password=None)


def headers_for(signature=SIGNATURE, ts=TS, nonce=NONCE, serial=KEY_ID, **extra):
    return {
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": signature,
        "Wechatpay-Timestamp": str(ts),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        "Request-ID": "08F78BB5AF0610D302",
        **extra,
    }


def public_keys(wechat_key, apiv3=APIV3, mchid=MCHID):
    return NotificationKeys.of(
        mchid, apiv3, public_key=wechat_key.public_key(), public_key_id=KEY_ID
    )


def read(headers, body, keys, now=TS, nonces=None, **kwargs):
    return read_notification(
        headers, body, keys, now=now, nonces=nonces or MemoryNonceStore(), **kwargs
    )


# -- the known answer ------------------------------------------------------------------
def test_aes_gcm_reproduces_wechatpay_javas_vector():
    ciphertext = "ulwSiIajGClcvcOYvOQ7+l+0PAbzzwI="
    plain = crypto.aes_gcm_decrypt(APIV3, "uluk4a9R25RW", "associatedData", ciphertext)
    assert plain == b"message"
    direct = AESGCM(APIV3.encode()).decrypt(
        b"uluk4a9R25RW", base64.b64decode(ciphertext), b"associatedData"
    )
    assert direct == b"message"


def test_the_vector_is_the_published_algorithm(wechat_key):
    """Each constant, recomputed with ``cryptography`` alone."""
    sealed = AESGCM(APIV3.encode()).encrypt(RESOURCE_NONCE.encode(), PLAIN.encode(), AAD.encode())
    assert base64.b64encode(sealed).decode() == CIPHERTEXT
    message = f"{TS}\n{NONCE}\n".encode() + BODY + b"\n"
    signed = wechat_key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert base64.b64encode(signed).decode() == SIGNATURE
    wechat_key.public_key().verify(
        base64.b64decode(SIGNATURE), message, padding.PKCS1v15(), hashes.SHA256()
    )


def test_the_known_refund_notification_reads(wechat_key):
    event = read(headers_for(), BODY, public_keys(wechat_key))
    assert event.event_type is EventType.REFUND_SUCCESS
    assert event.original_type is OriginalType.REFUND
    assert (event.id, event.summary, event.serial) == ("EV-2018022511223320873", "退款成功", KEY_ID)
    assert event.request_id == "08F78BB5AF0610D302"
    assert event.plaintext == json.loads(PLAIN)
    refund = event.refund
    assert isinstance(refund, RefundNotice)
    assert refund.refund_status is RefundStatus.SUCCESS
    assert (refund.mchid, refund.sub_mchid) == (MCHID, None)
    assert refund.out_refund_no == "7752501201407033233368018"
    assert (refund.total, refund.refund, refund.payer_refund) == (999, 999, 999)
    assert refund.success_time == dt.datetime(2018, 6, 8, 2, 34, 56, tzinfo=dt.UTC)
    assert "7752501201407033233368018" not in repr(event)  # the plaintext stays out of reprs


def test_headers_are_found_whatever_their_case(wechat_key):
    lowered = {name.lower(): value for name, value in headers_for().items()}
    assert read(lowered, BODY, public_keys(wechat_key)).refund is not None


# -- a builder for the rest ------------------------------------------------------------
def build(
    signing_key,
    plaintext,
    *,
    apiv3=APIV3,
    event_type="REFUND.SUCCESS",
    original_type="refund",
    aad="refund",
    nonce="0123456789ab",
    ts=TS,
    header_nonce=None,
    serial=KEY_ID,
    mangle=None,
):
    """(headers, body) of a notification, signed by ``signing_key``; ``mangle`` edits the
    resource after encryption and before signing (so the signature still verifies)."""
    data = plaintext if isinstance(plaintext, bytes) else json.dumps(plaintext).encode()
    resource = {
        "original_type": original_type,
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": crypto.aes_gcm_encrypt(apiv3, nonce, aad, data),
        "associated_data": aad,
        "nonce": nonce,
    }
    if mangle:
        mangle(resource)
    envelope = {
        "id": "EV-1",
        "create_time": "2026-01-01T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "x",
        "resource": resource,
    }
    body = json.dumps(envelope, ensure_ascii=False).encode()
    header_nonce = header_nonce or crypto.make_nonce()
    signature = crypto.sign(signing_key, crypto.response_message(ts, header_nonce, body))
    return headers_for(signature=signature, ts=ts, nonce=header_nonce, serial=serial), body


REFUND = json.loads(PLAIN)


def partner_refund(**changes):
    data = {k: v for k, v in REFUND.items() if k != "mchid"}
    return {"sp_mchid": MCHID, "sub_mchid": "1900000109", **data, **changes}


def test_a_partner_notice_without_amount_reads(wechat_key):
    plain = partner_refund(refund_status="ABNORMAL")
    del plain["amount"], plain["success_time"]
    headers, body = build(wechat_key, plain, event_type="REFUND.ABNORMAL")
    refund = read(headers, body, public_keys(wechat_key)).refund
    assert (refund.mchid, refund.sub_mchid) == (MCHID, "1900000109")
    assert refund.refund_status is RefundStatus.ABNORMAL
    assert (refund.total, refund.refund, refund.success_time) == (None, None, None)


def test_a_status_this_version_does_not_know_is_kept_as_text(wechat_key):
    headers, body = build(wechat_key, {**REFUND, "refund_status": "REFUNDED_TWICE"})
    assert read(headers, body, public_keys(wechat_key)).refund.refund_status == "REFUNDED_TWICE"


def test_every_kind_of_notification_is_typed(wechat_key):
    payment = {
        "mchid": MCHID,
        "appid": "wx1",
        "out_trade_no": "T1",
        "transaction_id": "4200000001",
        "trade_type": "JSAPI",
        "trade_state": "SUCCESS",
        "success_time": "2026-01-01T10:00:00+08:00",
        "amount": {"total": 100, "payer_total": 100, "currency": "CNY"},
    }
    headers, body = build(
        wechat_key, payment, event_type="TRANSACTION.SUCCESS", original_type="transaction"
    )
    event = read(headers, body, public_keys(wechat_key))
    assert isinstance(event.resource, Payment) and event.resource.total == 100
    split = {
        "mchid": MCHID,
        "transaction_id": "4200000001",
        "order_id": "3008450740201411110007820472",
        "out_order_no": "P1",
        "receiver": {
            "type": "MERCHANT_ID",
            "account": "86693852",
            "amount": 10,
            "description": "d",
        },
        "success_time": "2026-01-01T10:00:00+08:00",
    }
    for event_type in ("PROFITSHARING.RETURN", "TRANSACTION.SUCCESS"):
        headers, body = build(
            wechat_key, split, event_type=event_type, original_type="profitsharing"
        )
        event = read(headers, body, public_keys(wechat_key))
        assert isinstance(event.resource, SharingNotice) and event.resource.amount == 10


def test_an_unknown_event_type_and_resource_are_kept_not_refused(wechat_key):
    plain = {"mchid": MCHID, "complaint_id": "C1"}
    headers, body = build(
        wechat_key, plain, event_type="COMPLAINT.CREATE", original_type="complaint"
    )
    event = read(headers, body, public_keys(wechat_key))
    assert (event.event_type, event.original_type) == ("COMPLAINT.CREATE", "complaint")
    assert event.resource == plain


# -- both key modes, several merchants ---------------------------------------------------
def self_signed(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "platform")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(0x5157F09EFDC096DE15EBE81A47057A7232F1B8E1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def platform_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_certificate_mode_finds_the_certificate_by_serial_in_any_case(platform_key):
    cert = self_signed(platform_key)
    keys = NotificationKeys.of(MCHID, APIV3, certificates=[cert])
    for serial in (
        "5157F09EFDC096DE15EBE81A47057A7232F1B8E1",
        "5157f09efdc096de15ebe81a47057a7232f1b8e1",
    ):
        headers, body = build(platform_key, REFUND, serial=serial)
        assert read(headers, body, keys).refund.refund_status is RefundStatus.SUCCESS


def test_during_a_migration_both_kinds_of_key_verify(wechat_key, platform_key):
    cert = self_signed(platform_key)
    keys = NotificationKeys.of(
        MCHID, APIV3, public_key=wechat_key.public_key(), public_key_id=KEY_ID, certificates=[cert]
    )
    nonces = MemoryNonceStore()
    for key, serial in ((wechat_key, KEY_ID), (platform_key, crypto.certificate_serial(cert))):
        headers, body = build(key, REFUND, serial=serial)
        assert read(headers, body, keys, nonces=nonces).serial == serial


def test_an_unknown_certificate_serial_refreshes_once_then_fails(platform_key):
    cert = self_signed(platform_key)
    found: list = []
    refreshed: list[int] = []
    store = notifications.ResponseVerifier()

    def refresh():
        refreshed.append(1)
        store.add_certificates(found)
        return True

    keys = NotificationKeys(MCHID, APIV3.encode(), store.key_for, refresh)
    headers, body = build(platform_key, REFUND, serial=crypto.certificate_serial(cert))
    with pytest.raises(notifications.UnknownSerial) as info:
        read(headers, body, keys)
    assert info.value.step is Step.KEY and refreshed == [1]
    found.append(cert)  # the next download brings it
    assert read(headers, body, keys).refund is not None and refreshed == [1, 1]
    headers, body = build(
        platform_key, REFUND, serial="PUB_KEY_ID_0000000000000000000000000000000001"
    )
    with pytest.raises(notifications.UnknownSerial):
        read(headers, body, keys)
    assert refreshed == [1, 1]  # a public key id is never looked for among certificates


def test_several_merchants_each_read_with_their_own_keys(wechat_key):
    other_mchid, other_key = "1900000101", "b" * 32
    reader = NotificationReader(
        {
            MCHID: public_keys(wechat_key),
            other_mchid: public_keys(wechat_key, apiv3=other_key, mchid=other_mchid),
        },
        clock=lambda: TS,
    )
    mine = build(wechat_key, REFUND)
    theirs = build(wechat_key, {**REFUND, "mchid": other_mchid}, apiv3=other_key)
    assert reader.read(MCHID, *mine).refund.mchid == MCHID
    assert reader.read(other_mchid, *theirs).refund.mchid == other_mchid
    with pytest.raises(notifications.DecryptionFailed):  # sent to the wrong merchant's URL
        reader.read(MCHID, *build(wechat_key, REFUND, apiv3=other_key))
    with pytest.raises(notifications.WrongMerchant):  # same key, another merchant's refund
        reader.read(MCHID, *build(wechat_key, {**REFUND, "mchid": other_mchid}))
    with pytest.raises(notifications.WrongMerchant):
        reader.read("1900000999", *build(wechat_key, REFUND))


def test_a_client_gives_its_keys(wechat_key, tmp_path):
    from django_wxpay_profitsharing.wechatpay import WeChatPayClient

    client = WeChatPayClient(
        MCHID,
        "F5765756002FDD77",
        GO_TEST_KEY,
        wechatpay_public_key=wechat_key.public_key(),
        wechatpay_public_key_id=KEY_ID,
        apiv3_key=APIV3,
        base_url="http://127.0.0.1:9",
    )
    assert read(headers_for(), BODY, client.notification_keys()).refund is not None
    assert APIV3 not in repr(client.notification_keys())


# -- the timestamp window and the nonce --------------------------------------------------
@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_the_timestamp_window_is_300_seconds(wechat_key, offset, ok):
    headers, body = build(wechat_key, REFUND, ts=TS + offset)
    if ok:
        assert read(headers, body, public_keys(wechat_key)).refund is not None
    else:
        with pytest.raises(notifications.StaleTimestamp) as info:
            read(headers, body, public_keys(wechat_key))
        assert info.value.step is Step.TIMESTAMP


def test_a_replayed_nonce_is_refused_but_not_for_another_merchant(wechat_key):
    nonces = MemoryNonceStore()
    headers, body = build(wechat_key, REFUND)
    read(headers, body, public_keys(wechat_key), nonces=nonces)
    with pytest.raises(notifications.ReplayedNonce) as info:
        read(headers, body, public_keys(wechat_key), nonces=nonces)
    assert info.value.step is Step.NONCE
    # Forged garbage never burns a nonce: a failed signature is not remembered.
    bad = {
        **headers,
        "Wechatpay-Nonce": "N2",
        "Wechatpay-Signature": headers["Wechatpay-Signature"],
    }
    with pytest.raises(notifications.BadSignature):
        read(bad, body, public_keys(wechat_key), nonces=nonces)
    # After twice the window the store forgets (the timestamp check refuses it anyway).
    assert nonces.first_use(f"{MCHID}\n{headers['Wechatpay-Nonce']}", TS + 601)


# -- the hostile set -----------------------------------------------------------------------
def _truncate(resource):
    resource["ciphertext"] = resource["ciphertext"][:-8]


def _swap_aad(resource):
    resource["associated_data"] = "transaction"


def _drop_tag(resource):
    raw = base64.b64decode(resource["ciphertext"])
    resource["ciphertext"] = base64.b64encode(raw[:-16]).decode()


HOSTILE = {
    "wrong APIv3 key": ({"apiv3": "c" * 32}, notifications.DecryptionFailed),
    "truncated ciphertext": ({"mangle": _truncate}, notifications.DecryptionFailed),
    "ciphertext without its tag": ({"mangle": _drop_tag}, notifications.DecryptionFailed),
    "swapped associated data": ({"mangle": _swap_aad}, notifications.DecryptionFailed),
    "plaintext not JSON": ({"plain": b"\xff\xfenot json"}, notifications.MalformedResource),
    "plaintext not a refund": ({"plain": {"mchid": MCHID}}, notifications.MalformedResource),
    "another merchant's refund": (
        {"plain": {**REFUND, "mchid": "1900000999"}},
        notifications.WrongMerchant,
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_resources_fail_at_their_step_and_say_nothing_secret(wechat_key, case):
    options, error = HOSTILE[case]
    options = dict(options)
    plain = options.pop("plain", REFUND)
    headers, body = build(wechat_key, plain, **options)
    with pytest.raises(error) as info:
        read(headers, body, public_keys(wechat_key))
    assert_says_nothing_secret(info.value, body)


def assert_says_nothing_secret(exc, body=b""):
    said = " ".join([str(exc), repr(exc), *map(str, exc.args)])
    for secret in (*SECRETS, *_resource_texts(body)):
        assert secret not in said, (type(exc).__name__, secret)
    assert exc.__cause__ is None  # no cryptography error (or its data) chained on
    assert exc.__context__ is None or exc.__suppress_context__
    assert isinstance(exc.step, Step)


def _resource_texts(body):
    try:
        resource = json.loads(body)["resource"]
    except (ValueError, KeyError, TypeError):
        return []
    return [resource["ciphertext"][:16]] if resource.get("ciphertext") else []


def test_a_wrong_signing_key_is_a_bad_signature(wechat_key, platform_key):
    headers, body = build(platform_key, REFUND)
    with pytest.raises(notifications.BadSignature) as info:
        read(headers, body, public_keys(wechat_key))
    assert not isinstance(info.value, notifications.SignatureProbe)
    assert_says_nothing_secret(info.value, body)


def test_a_body_changed_after_signing_is_a_bad_signature(wechat_key):
    body = BODY.replace(b"REFUND.SUCCESS", b"REFUND.CLOSED")
    with pytest.raises(notifications.BadSignature):
        read(headers_for(), body, public_keys(wechat_key))


def test_a_probe_is_recognised_as_a_probe(wechat_key):
    probe = "WECHATPAY/SIGNTEST/" + SIGNATURE[19:]
    with pytest.raises(notifications.SignatureProbe) as info:
        read(headers_for(signature=probe), BODY, public_keys(wechat_key))
    assert info.value.step is Step.SIGNATURE
    assert isinstance(info.value, notifications.BadSignature)  # refused like any bad one


def test_a_10_mb_body_is_refused_before_it_is_read(wechat_key):
    huge = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    with pytest.raises(notifications.BodyTooLarge) as info:
        read(headers_for(), huge, public_keys(wechat_key))
    assert info.value.step is Step.SIZE


@pytest.mark.parametrize(
    "body",
    [b"not json", b"\xff\xfe", b"[1, 2]", b'{"resource_type": "encrypt-resource"}',
     b'{"resource_type": "plain", "resource": {}}', b"[" * 100_000],
)  # fmt: skip
def test_a_signed_body_that_is_not_a_notification_is_malformed(wechat_key, body):
    nonce = crypto.make_nonce()
    signature = crypto.sign(wechat_key, crypto.response_message(TS, nonce, body))
    with pytest.raises(notifications.MalformedBody) as info:
        read(headers_for(signature=signature, nonce=nonce), body, public_keys(wechat_key))
    assert info.value.step is Step.BODY


def test_another_algorithm_is_refused(wechat_key):
    def sm4(resource):
        resource["algorithm"] = "AEAD_SM4_GCM"

    headers, body = build(wechat_key, REFUND, mangle=sm4)
    with pytest.raises(notifications.MalformedBody, match="AEAD_AES_256_GCM"):
        read(headers, body, public_keys(wechat_key))


@pytest.mark.parametrize("missing", ["Wechatpay-Serial", "Wechatpay-Signature",
                                     "Wechatpay-Timestamp", "Wechatpay-Nonce"])  # fmt: skip
def test_each_missing_header_is_named(wechat_key, missing):
    headers = headers_for()
    del headers[missing]
    with pytest.raises(notifications.MissingHeaders, match=missing):
        read(headers, BODY, public_keys(wechat_key))


@pytest.mark.parametrize("stamp", ["+1528425296", "1528425296.0", "١٥٢٨٤٢٥٢٩٦", "9" * 40])
def test_a_malformed_timestamp_is_refused(wechat_key, stamp):
    with pytest.raises(notifications.StaleTimestamp):
        read(headers_for(ts=stamp), BODY, public_keys(wechat_key))


def test_another_signature_type_is_refused(wechat_key):
    headers = headers_for(**{"Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3"})
    with pytest.raises(notifications.UnsupportedSignatureType):
        read(headers, BODY, public_keys(wechat_key))


def test_the_apiv3_key_must_be_32_bytes():
    with pytest.raises(ValueError, match="32 bytes"):
        NotificationKeys.of(MCHID, "short", public_key=None)


# -- one URL for every merchant: read_any ---------------------------------------------------
OTHER_MCHID, OTHER_APIV3 = "1900000101", "b" * 32


def shared_key_reader(wechat_key, **kwargs):
    """Two merchants whose notices WeChat Pay signs with one key (the other one first)."""
    return NotificationReader(
        {
            OTHER_MCHID: public_keys(wechat_key, apiv3=OTHER_APIV3, mchid=OTHER_MCHID),
            MCHID: public_keys(wechat_key),
        },
        clock=lambda: TS,
        **kwargs,
    )


def test_read_any_finds_the_merchant_whose_apiv3_key_decrypts_it(wechat_key):
    reader = shared_key_reader(wechat_key)
    mine = reader.read_any(*build(wechat_key, REFUND))
    theirs = reader.read_any(*build(wechat_key, {**REFUND, "mchid": OTHER_MCHID},
                                    apiv3=OTHER_APIV3))  # fmt: skip
    assert (mine.mchid, mine.refund.mchid) == (MCHID, MCHID)
    assert (theirs.mchid, theirs.refund.mchid) == (OTHER_MCHID, OTHER_MCHID)


def test_read_any_raises_the_refusal_that_got_furthest(wechat_key, platform_key):
    reader = shared_key_reader(wechat_key)
    with pytest.raises(notifications.DecryptionFailed):  # nobody's APIv3 key
        reader.read_any(*build(wechat_key, REFUND, apiv3="c" * 32))
    with pytest.raises(notifications.WrongMerchant):  # decrypts, names a third merchant
        reader.read_any(*build(wechat_key, {**REFUND, "mchid": "1900000999"}))
    with pytest.raises(notifications.BadSignature):  # signed by another key
        reader.read_any(*build(platform_key, REFUND))
    headers, body = build(wechat_key, REFUND)
    reader.read_any(headers, body)
    with pytest.raises(notifications.ReplayedNonce):  # the same signed message again
        reader.read_any(headers, body)


def test_read_any_checks_what_needs_no_key_before_any_download(wechat_key, platform_key):
    refreshed: list[str] = []
    store = notifications.ResponseVerifier()

    def refresh():
        refreshed.append("download")
        return True

    keys = {MCHID: NotificationKeys(MCHID, APIV3.encode(), store.key_for, refresh)}
    reader = NotificationReader(keys, clock=lambda: TS)
    serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
    stale = build(platform_key, REFUND, serial=serial, ts=TS - 301)
    with pytest.raises(notifications.StaleTimestamp):
        reader.read_any(*stale)
    with pytest.raises(notifications.BodyTooLarge):
        reader.read_any(stale[0], b"{" + b" " * (1024 * 1024) + b"}")
    assert refreshed == []
    with pytest.raises(notifications.UnknownSerial):  # a fresh one: one download, then refused
        reader.read_any(*build(platform_key, REFUND, serial=serial))
    assert refreshed == ["download"]
    with pytest.raises(notifications.UnknownSerial):  # a public key id is never downloaded
        reader.read_any(*build(platform_key, REFUND, serial="PUB_KEY_ID_0000000000000009"))
    assert refreshed == ["download"]
