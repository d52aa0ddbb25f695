"""A second implementation agrees: the PyPI package wechatpayv3 against the simulator.

wechatpayv3 (https://github.com/minibear2021/wechatpayv3) signs its own requests and
verifies every 2xx answer itself (its ``_verify_signature``: the WeChat Pay public key
by its id, or a platform certificate by serial), so each call below passes only if the
simulator signs and answers as WeChat Pay does: ``query`` (查询订单), ``refund``
(申请退款), ``query_refund`` (查询单笔退款), in the direct and the partner form, in
public-key and certificate mode; and its ``callback`` verifies and decrypts the
simulator's 退款结果通知 with its own code.

Its gateway is fixed to api.mch.weixin.qq.com, so the test points it at the simulator
(``_core._gate_way``); in certificate mode it is given the platform certificate in its
``cert_dir`` (it would download one at construction, before the gateway can be set).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import SUB_MCHID, unique_no

wechatpayv3 = pytest.importorskip("wechatpayv3")

MODES = ["public-key", "certificate"]
FORMS = {"partner": SUB_MCHID, "direct": None}


def peer(sim, mode, partner, tmp_path):
    creds = sim.credentials
    options = {}
    if mode == "public-key":
        options = {
            "public_key": Path(creds["wechatpay_public_key_path"]).read_text(),
            "public_key_id": creds["wechatpay_public_key_id"],
        }
    else:
        cert_dir = tmp_path / "certs"
        cert_dir.mkdir()
        shutil.copy(creds["platform_certificate_path"], cert_dir / "platform.pem")
        options = {"cert_dir": str(cert_dir)}
    pay = wechatpayv3.WeChatPay(
        wechatpay_type=wechatpayv3.WeChatPayType.MINIPROG,
        mchid=creds["mchid"],
        private_key=Path(creds["private_key_path"]).read_text(),
        cert_serial_no=creds["merchant_serial_no"],
        appid="wxd678efh567hg6787",
        apiv3_key=creds["apiv3_key"],
        partner_mode=partner,
        timeout=(3, 10),
        **options,
    )
    pay._core._gate_way = sim.base_url  # the simulator stands for api.mch.weixin.qq.com
    return pay


@pytest.fixture
def mode(real_sim, request):
    real_sim.configure(mode=request.param)
    yield request.param
    real_sim.configure(mode="public-key")


@pytest.mark.parametrize("mode", MODES, indirect=True)
@pytest.mark.parametrize("form", list(FORMS))
def test_wechatpayv3_queries_refunds_and_queries_the_refund(real_sim, mode, form, tmp_path):
    sub = FORMS[form]
    pay = peer(real_sim, mode, sub is not None, tmp_path)
    tx = real_sim.seed_payment(1000, sub_mchid=sub)["transaction_id"]
    code, text = pay.query(transaction_id=tx, sub_mchid=sub)
    assert code == 200, text
    assert (json.loads(text)["transaction_id"], json.loads(text)["amount"]["total"]) == (tx, 1000)
    number = unique_no("R")
    amount = {"refund": 300, "total": 1000, "currency": "CNY"}
    code, text = pay.refund(out_refund_no=number, amount=amount, transaction_id=tx, sub_mchid=sub)
    assert code == 200, text
    created = json.loads(text)
    code, text = pay.query_refund(out_refund_no=number, sub_mchid=sub)
    assert code == 200, text
    queried = json.loads(text)
    assert queried["refund_id"] == created["refund_id"] and queried["status"] == "SUCCESS"
    code, text = pay.refund(
        out_refund_no=unique_no("R"), amount=amount, transaction_id=tx, sub_mchid=sub
    )
    assert (code, json.loads(text)["code"]) == (429, "FREQUENCY_LIMITED")


def test_wechatpayv3_refuses_an_answer_the_simulator_spoilt(real_sim, tmp_path):
    pay = peer(real_sim, "public-key", True, tmp_path)
    tx = real_sim.seed_payment(1000, sub_mchid=SUB_MCHID)["transaction_id"]
    real_sim.set_fault("bad_signature", endpoint="payment_query", count=1)
    with pytest.raises(Exception, match="failed to verify the signature"):
        pay.query(transaction_id=tx, sub_mchid=SUB_MCHID)


@pytest.mark.parametrize("mode", MODES, indirect=True)
def test_wechatpayv3_reads_the_simulators_refund_notification(real_sim, mode, tmp_path):
    pay = peer(real_sim, mode, True, tmp_path)
    read: list = []

    class Shop(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            result = pay.callback(dict(self.headers), body)
            read.append(result)
            self.send_response(204 if result else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tx = real_sim.seed_payment(1000, sub_mchid=SUB_MCHID)["transaction_id"]
        url = f"http://127.0.0.1:{server.server_address[1]}/notify/"
        number = unique_no("R")
        code, text = pay.refund(
            out_refund_no=number,
            transaction_id=tx,
            sub_mchid=SUB_MCHID,
            amount={"refund": 300, "total": 1000, "currency": "CNY"},
            notify_url=url,
        )
        assert code == 200, text
        deadline = time.monotonic() + 10
        while not read and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.shutdown()
    (result,) = read
    assert result["event_type"] == "REFUND.SUCCESS"
    resource = result["resource"]
    assert (resource["out_refund_no"], resource["refund_status"]) == (number, "SUCCESS")
    assert (resource["sp_mchid"], resource["sub_mchid"]) == (
        real_sim.credentials["mchid"],
        SUB_MCHID,
    )
