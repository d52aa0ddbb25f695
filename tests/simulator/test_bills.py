"""The simulated bill, fetched by a second client written from the spec (not the app's).

``SignedClient`` signs with plain ``cryptography``; the download is checked the way
WeChat Pay's pages say (SHA1 of the uncompressed file equals ``hash_value``), and a
minimal parser written here from the documented layout must read what the app's
parser reads: the simulator's bills are what a real client expects.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
from decimal import Decimal
from urllib.parse import urlsplit

import pytest

from django_wxpay_profitsharing.wechatpay.bill_parser import BusinessType, parse_bill
from wxpay_simulator.testing import SimulatorError

from .signed_client import RECEIVER, SUB, return_fields

BEIJING = dt.timezone(dt.timedelta(hours=8))
OTHER_SUB = "1900000110"


def today() -> str:
    return dt.datetime.now(BEIJING).date().isoformat()


def apply(client, bill_date=None, sub_mchid=None, tar_type="GZIP"):
    query = f"bill_date={bill_date or today()}"
    if sub_mchid:
        query += f"&sub_mchid={sub_mchid}"
    if tar_type:
        query += f"&tar_type={tar_type}"
    return client.send("GET", f"/v3/profitsharing/bills?{query}")


def download(client, url):
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == client.base_url
    return client.send("GET", f"{parts.path}?{parts.query}")


def fetch(client, **kw) -> bytes:
    """Apply, check the signed answer, download, gunzip, check the SHA1: the spec's steps."""
    answer = apply(client, **kw)
    assert answer.status_code == 200, answer.text
    client.assert_signed(answer)
    link = answer.json()
    assert link["hash_type"] == "SHA1"
    file = download(client, link["download_url"])
    assert file.status_code == 200, file.text
    assert "Wechatpay-Signature" not in file.headers  # not signed: the hash is the check
    raw = file.content
    plain = gzip.decompress(raw) if kw.get("tar_type", "GZIP") == "GZIP" else raw
    assert hashlib.sha1(plain).hexdigest() == link["hash_value"].lower()
    return plain


def independent_returns(plain: bytes) -> dict[str, int]:
    """out_return_no -> fen, read with the csv module from the documented layout."""
    rows = [
        [cell.strip().lstrip("`") for cell in row]
        for row in csv.reader(io.StringIO(plain.decode("utf-8-sig")))
        if row
    ]
    header = rows[0]
    end = next(i for i, row in enumerate(rows) if row[0] == "分账总笔数")
    kind, number, amount = (header.index(h) for h in ("业务类型", "商户回退单号", "金额(元)"))
    found = {}
    for row in rows[1:end]:
        if row[kind] == "回退":
            found[row[number]] = int(Decimal(row[amount]) * 100)
    summary = dict(zip(rows[end], rows[end + 1], strict=True))
    assert int(summary["回退总笔数"]) == len(found)
    assert int(Decimal(summary["回退总金额(元)"]) * 100) == sum(found.values())
    return found


def seed_day(client, simproc):
    order = simproc.seed_order("PB1", sub_mchid=SUB, amount=1000)
    other = simproc.seed_order("PB2", sub_mchid=OTHER_SUB, amount=500)
    for fields in (
        return_fields(order, "RB1", amount=100),
        return_fields(order, "RB2", amount=250),
        return_fields(other, "RB3", amount=40),
    ):
        assert client.create(**fields).json()["result"] == "SUCCESS"
    return order, other


@pytest.mark.parametrize("tar_type", ["GZIP", None])
@pytest.mark.parametrize("backticks", [True, False])
def test_second_client_verifies_and_parses_like_the_app(client, simproc, tar_type, backticks):
    seed_day(client, simproc)
    simproc.set_bill_layout(backticks=backticks)
    plain = fetch(client, tar_type=tar_type)
    assert (b"`" in plain) is backticks
    mine = independent_returns(plain)
    assert mine == {"RB1": 100, "RB2": 250, "RB3": 40}
    bill = parse_bill(plain)
    assert {r.out_return_no: r.amount for r in bill.returns} == mine
    assert [(r.out_order_no, r.amount) for r in bill.splits] == [("PB1", 1000), ("PB2", 500)]
    assert {r.status for r in bill.rows} == {"SUCCESS"}
    assert all(r.business_type in (BusinessType.SPLIT, BusinessType.RETURN) for r in bill.rows)


def test_a_sub_merchants_returns_are_in_its_bill_and_in_the_bill_of_all(client, simproc):
    seed_day(client, simproc)
    assert independent_returns(fetch(client, sub_mchid=SUB)) == {"RB1": 100, "RB2": 250}
    assert independent_returns(fetch(client, sub_mchid=OTHER_SUB)) == {"RB3": 40}
    assert set(independent_returns(fetch(client))) == {"RB1", "RB2", "RB3"}


def test_failed_returns_are_not_in_the_bill(client, simproc):
    order = simproc.seed_order("PB4", sub_mchid=SUB, amount=1000)
    simproc.mark_receiver(RECEIVER, abnormal=True)
    assert client.create(**return_fields(order, "RB4")).json()["result"] == "FAILED"
    assert independent_returns(fetch(client)) == {}


def test_the_download_needs_a_signed_request_and_a_live_token(client, simproc):
    seed_day(client, simproc)
    link = apply(client).json()
    target = link["download_url"][len(client.base_url) :]
    unsigned = client.session.get(
        link["download_url"],
        headers={"Accept": "*/*", "User-Agent": "t", "Authorization": "WECHATPAY2-SHA256-RSA2048"},
        verify=client.verify,
        timeout=10,
    )
    assert unsigned.status_code == 401
    path_only = target.split("?", 1)[0]
    assert client.send("GET", target, sign_target=path_only).status_code == 401
    assert client.send("GET", target).status_code == 200
    simproc.advance_clock(31)
    expired = client.send("GET", target)
    assert expired.status_code == 400 and expired.json()["code"] == "INVALID_REQUEST"
    client.assert_signed(expired)


def test_date_and_parameter_rules(client, simproc):
    assert apply(client).json()["code"] == "NO_STATEMENT_EXIST"  # nothing moved today
    old = (dt.datetime.now(BEIJING) - dt.timedelta(days=100)).date().isoformat()
    answer = apply(client, bill_date=old)
    assert (answer.status_code, answer.json()["code"]) == (400, "INVALID_REQUEST")
    assert answer.json()["message"] == "请求的账单日期已过期"
    future = (dt.datetime.now(BEIJING) + dt.timedelta(days=2)).date().isoformat()
    assert apply(client, bill_date=future).json()["code"] == "NO_STATEMENT_EXIST"
    assert apply(client, tar_type="ZIP").json()["code"] == "PARAM_ERROR"
    assert apply(client, bill_date="2026-13-01").json()["code"] == "PARAM_ERROR"


@pytest.mark.parametrize("corruption", ["hash", "rows"])
def test_corrupt_controls_act_on_the_next_bill_only(client, simproc, corruption):
    seed_day(client, simproc)
    simproc.corrupt_next_bill(**{corruption: True})
    link = apply(client).json()
    plain = gzip.decompress(download(client, link["download_url"]).content)
    assert hashlib.sha1(plain).hexdigest() != link["hash_value"]
    fetch(client)  # the next one is sound again


def test_the_payers_own_line_is_not_a_split_row(client, simproc):
    receivers = [{"account": RECEIVER, "amount": 700}, {"account": SUB, "amount": 300}]
    simproc.seed_order("PB5", receivers, sub_mchid=SUB)
    splits = [r for r in parse_bill(fetch(client)).splits]
    assert [(r.receiver_account, r.amount, r.sponsor) for r in splits] == [(RECEIVER, 700, SUB)]


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("bills/corrupt", {"hash": "yes"}),
        ("bills/corrupt", {"everything": True}),
        ("bills/layout", {"backticks": 1}),
        ("bills/layout", {}),
    ],
)
def test_bill_controls_refuse_bad_bodies(simproc, route, body):
    with pytest.raises(SimulatorError, match="400"):
        simproc.control("POST", route, body)
