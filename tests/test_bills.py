"""The bill client (apply, download, hash) against the simulator, and the parser on its own."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
import time

import pytest

from django_wxpay_profitsharing.wechatpay import ReturnRequest, WeChatPayClient, errors
from django_wxpay_profitsharing.wechatpay.bill_parser import (
    BillReader,
    BusinessType,
    parse_bill,
    yuan_to_fen,
)
from django_wxpay_profitsharing.wechatpay.bills import (
    PIECE,
    BillDownload,
    BillLink,
    Inflater,
    beijing_today,
    check_bill_date,
    decompress,
    download_target,
    earliest_bill_date,
)

from .conftest import RECEIVER, SUB_MCHID, unique_no

HEADER = (
    "分账发起时间,分账发起方,分账出资方,特约商户号,微信支付订单号,微信分账单号,商户分账单号,"
    "分账明细单号,微信回退单号,商户回退单号,分账接收方类型,分账接收方,金额(元),业务类型,处理状态,分账描述"
)
SPLIT = (
    "2026-12-01 10:00:00,1900000100,1900000109,1900000109,4200,3008,P1,3601,,,"
    "MERCHANT_ID,86693852,10.00,分账,成功,分给商户"
)
RETURN = (
    "2026-12-01 11:00:00,1900000100,86693852,1900000109,4200,3008,P1,,3005,R1,"
    "MERCHANT_ID,86693852,1.50,回退,成功,退款"
)
SUMMARY = "分账总笔数,分账总金额(元),回退总笔数,回退总金额(元)\n1,10.00,1,1.50"


def bill(*lines: str, backticks: bool = False, header: str = HEADER, summary: str = SUMMARY):
    def mark(line: str) -> str:
        return ",".join(f"`{cell}" for cell in line.split(",")) if backticks else line

    head, values = summary.split("\n")
    body = [header, *(mark(line) for line in lines), head, mark(values)]
    return ("\r\n".join(body) + "\r\n").encode()


# ------------------------------------------------------------------------- parser
@pytest.mark.parametrize("backticks", [True, False])
def test_detail_and_summary_parts_with_or_without_backticks(backticks):
    parsed = parse_bill(bill(SPLIT, RETURN, backticks=backticks))
    (split,) = parsed.splits
    (ret,) = parsed.returns
    assert (split.business_type, split.amount, split.out_order_no) == (
        BusinessType.SPLIT,
        1000,
        "P1",
    )
    assert (ret.out_return_no, ret.amount, ret.status, ret.return_id) == (
        "R1",
        150,
        "SUCCESS",
        "3005",
    )
    assert ret.receiver_account == RECEIVER and ret.sub_mchid == SUB_MCHID
    assert (parsed.summary.return_count, parsed.summary.return_amount) == (1, 150)


def test_columns_are_read_by_name_in_any_order_unknown_ones_kept_aside():
    names = HEADER.split(",")
    order = list(reversed(range(len(names))))
    header = ",".join([names[i] for i in order] + ["新字段"]).replace("金额(元)", "金额（元）")

    def shuffle(line: str) -> str:
        cells = line.split(",")
        return ",".join([cells[i] for i in order] + ["x"])

    parsed = parse_bill(bill(shuffle(SPLIT), shuffle(RETURN), header=header))
    assert parsed.unknown_headers == ("新字段",)
    assert [(r.out_return_no, r.amount) for r in parsed.returns] == [("R1", 150)]
    assert parsed.returns[0].extra == (("新字段", "x"),)


def test_a_utf8_bom_and_blank_lines_are_fine():
    data = b"\xef\xbb\xbf" + bill(SPLIT, "", RETURN).replace(b"\r\n", b"\r\n\r\n", 1)
    assert len(parse_bill(data).rows) == 2


def test_missing_required_headers_are_named():
    header = HEADER.replace("商户回退单号", "某列").replace("业务类型", "另一列")
    with pytest.raises(errors.BillFormatError) as info:
        parse_bill(bill(header=header))
    assert info.value.missing == ("商户回退单号", "业务类型")
    assert "商户回退单号, 业务类型" in str(info.value)


@pytest.mark.parametrize(
    ("text", "fen"),
    [("0", 0), ("0.01", 1), ("1.5", 150), ("12.30", 1230), ("92233720368547.75", 9223372036854775)],
)
def test_yuan_become_fen_exactly(text, fen):
    assert yuan_to_fen(text, "here") == fen


@pytest.mark.parametrize("text", ["1.005", "-1.00", "1e2", "", "1,00", "１.00", " 1", "0.1.2"])
def test_amounts_that_are_not_yuan_with_two_decimals_are_refused(text):
    with pytest.raises(errors.BillFormatError):
        yuan_to_fen(text, "here")


@pytest.mark.parametrize(
    ("lines", "summary", "message"),
    [
        ((SPLIT, RETURN.replace("1.50", "1.505")), SUMMARY, "at most 2 decimals"),
        ((SPLIT,), SUMMARY, "the summary says 1 return"),
        ((SPLIT, RETURN.replace("回退,", "转账,")), SUMMARY, "unknown 业务类型"),
        ((SPLIT, RETURN.replace("成功", "未知")), SUMMARY, "unknown 处理状态"),
        ((SPLIT, RETURN + ",extra"), SUMMARY, "17 fields"),
        ((SPLIT, RETURN.replace(",R1,", ",,")), SUMMARY, "without 商户回退单号"),
    ],
)
def test_a_bill_that_does_not_add_up_is_refused(lines, summary, message):
    with pytest.raises(errors.BillFormatError, match=message):
        parse_bill(bill(*lines, summary=summary))


def test_no_summary_or_garbage_is_refused():
    with pytest.raises(errors.BillFormatError, match="no summary"):
        parse_bill((HEADER + "\n" + SPLIT + "\n").encode())
    with pytest.raises(errors.BillFormatError, match="UTF-8"):
        parse_bill(b"\xff\xfe" + HEADER.encode("utf-16-le"))
    with pytest.raises(errors.BillFormatError, match="empty"):
        parse_bill(b"\r\n")


# ---------------------------------------------------------------- pure rules
def test_only_the_last_three_months_and_not_the_future():
    today = dt.date(2026, 5, 31)
    assert earliest_bill_date(today) == dt.date(2026, 2, 28)
    assert earliest_bill_date(dt.date(2026, 1, 15)) == dt.date(2025, 10, 15)
    assert check_bill_date("2026-02-28", today) == dt.date(2026, 2, 28)
    assert check_bill_date(today, today) == today
    for bad in (
        "2026-02-27",
        "2026-06-01",
        "2026-2-28",
        "2026-02-30",
        "２026-03-01",
        dt.datetime(2026, 5, 1),
    ):
        with pytest.raises(errors.InvalidRequest) as info:
            check_bill_date(bad, today)
        assert info.value.field == "bill_date"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/v3/billdownload/file?token=x",
        "http://api.mch.weixin.qq.com/v3/billdownload/file?token=x",
        "https://api.mch.weixin.qq.com:8443/v3/billdownload/file?token=x",
        "https://user@api.mch.weixin.qq.com/v3/billdownload/file?token=x",
        "https://api.mch.weixin.qq.com.evil.example/v3/billdownload/file",
        "https://api.mch.weixin.qq.com/v3/billdownload/file?token=x#frag",
    ],
)
def test_download_urls_off_the_base_url_are_refused(url):
    with pytest.raises(errors.BillURLRefused):
        download_target("https://api.mch.weixin.qq.com", url)


def test_download_target_is_the_path_and_query_as_given():
    url = "https://API.mch.weixin.qq.com:443/v3/billdownload/file?token=a%2Bb&x=1"
    target = download_target("https://api.mch.weixin.qq.com", url)
    assert target == "/v3/billdownload/file?token=a%2Bb&x=1"


def test_decompression_is_bounded_and_strict():
    plain = b"a" * 10_000
    assert decompress(gzip.compress(plain)) == plain
    assert decompress(gzip.compress(plain[:5]) + gzip.compress(plain[5:])) == plain
    with pytest.raises(errors.BillError, match="larger"):
        decompress(gzip.compress(plain), max_size=9_999)
    with pytest.raises(errors.BillFormatError, match="truncated"):
        decompress(gzip.compress(plain)[:-12])
    with pytest.raises(errors.BillFormatError, match="after the end"):
        decompress(gzip.compress(plain) + b"junk")


# ---------------------------------------------------------- the client, live
@pytest.fixture
def wxclient(sim):
    with WeChatPayClient(**sim.client_kwargs()) as client:
        yield client


def a_day(sim, client, amounts=(100, 250)):
    order = sim.seed_order(unique_no("P"), sub_mchid=SUB_MCHID, amount=1000)
    numbers = []
    for amount in amounts:
        number = unique_no("R")
        client.create_return(
            ReturnRequest(
                out_return_no=number,
                return_mchid=RECEIVER,
                amount=amount,
                description="用户退款",
                out_order_no=order["out_order_no"],
                sub_mchid=SUB_MCHID,
            )
        )
        numbers.append(number)
    return numbers


@pytest.mark.parametrize("tar_type", ["GZIP", None])
def test_apply_and_download_gzip_or_plain(sim, wxclient, tar_type):
    numbers = a_day(sim, wxclient)
    link = wxclient.apply_bill(beijing_today(time.time()), tar_type=tar_type)
    assert link.hash_type == "SHA1"
    plain = wxclient.download_bill(link)
    assert hashlib.sha1(plain).hexdigest() == link.hash_value
    assert {r.out_return_no: r.amount for r in parse_bill(plain).returns} == dict(
        zip(numbers, (100, 250), strict=True)
    )
    apply_call, download_call = sim.calls()[-2:]
    assert apply_call["target"].endswith(
        f"bill_date={beijing_today(time.time())}" + ("&tar_type=GZIP" if tar_type else "")
    )
    assert download_call["endpoint"] == "bill_download" and download_call["status"] == 200
    # The same bytes whichever way it travelled; the hash is upper- or lower-case alike.
    again = wxclient.apply_bill(beijing_today(time.time()), tar_type=None if tar_type else "GZIP")
    assert wxclient.download_bill(again.download_url, again.hash_value.upper()) == plain


@pytest.mark.parametrize("corruption", ["hash", "rows"])
def test_a_bill_whose_hash_does_not_match_is_refused(sim, wxclient, corruption):
    a_day(sim, wxclient)
    sim.corrupt_next_bill(**{corruption: True})
    link = wxclient.apply_bill(beijing_today(time.time()))
    with pytest.raises(errors.BillHashMismatch) as info:
        wxclient.download_bill(link)
    assert info.value.retryable and info.value.expected == link.hash_value


def test_refused_locally_nothing_sent(sim, wxclient):
    before = len(sim.calls())
    old = beijing_today(time.time()) - dt.timedelta(days=100)
    with pytest.raises(errors.InvalidRequest, match="bill_date"):
        wxclient.apply_bill(old)
    with pytest.raises(errors.InvalidRequest, match="bill_date"):
        wxclient.apply_bill(beijing_today(time.time()) + dt.timedelta(days=1))
    with pytest.raises(errors.InvalidRequest, match="tar_type"):
        wxclient.apply_bill(beijing_today(time.time()), tar_type="ZIP")
    evil = BillLink("https://evil.example/v3/billdownload/file?token=x", "SHA1", "0" * 40)
    with pytest.raises(errors.BillURLRefused):
        wxclient.download_bill(evil)
    with pytest.raises(errors.InvalidRequest, match="hash_value"):
        wxclient.download_bill(f"{sim.base_url}/v3/billdownload/file?token=x")
    assert len(sim.calls()) == before


def test_no_bill_and_expired_links_are_api_errors(sim, wxclient):
    with pytest.raises(errors.APIError) as info:
        wxclient.apply_bill(beijing_today(time.time()))
    assert info.value.code == "NO_STATEMENT_EXIST"
    a_day(sim, wxclient)
    link = wxclient.apply_bill(beijing_today(time.time()))
    sim.advance_clock(31)
    with pytest.raises(errors.APIError) as info:
        wxclient.download_bill(link)
    assert (info.value.status, info.value.code) == (400, "INVALID_REQUEST")


@pytest.mark.real_simulator
@pytest.mark.parametrize("transport", ["urllib3", "requests"])
def test_over_the_wire_with_either_transport(sim, transport):
    """The real simulator behind a socket: the file is not JSON, not signed, GZIP bytes."""
    with WeChatPayClient(**sim.client_kwargs(), transport=transport) as client:
        numbers = a_day(sim, client, amounts=(30,))
        link = client.apply_bill(beijing_today(time.time()))
        plain = client.download_bill(link)
    assert [r.out_return_no for r in parse_bill(plain).returns] == numbers
    assert sim.calls()[-1]["endpoint"] == "bill_download"


@pytest.mark.parametrize("sub_mchid", ["", "x1", "1" * 33, "１２３"])
def test_a_bad_sub_mchid_is_refused_before_sending(sim, wxclient, sub_mchid):
    before = len(sim.calls())
    with pytest.raises(errors.InvalidRequest) as info:
        wxclient.apply_bill(beijing_today(time.time()), sub_mchid)
    assert info.value.field == "sub_mchid" and len(sim.calls()) == before


def test_the_apply_answer_is_verified_like_any_other(sim, wxclient):
    a_day(sim, wxclient)
    sim.set_fault("bad_signature", endpoint="bills", count=5)
    with pytest.raises(errors.SignatureError):
        wxclient.apply_bill(beijing_today(time.time()))


# ------------------------------------------------------------- streaming pieces
def test_inflater_takes_any_split_of_the_stream_and_never_holds_more_than_a_piece():
    plain = bytes(range(256)) * 50_000  # 12.8 MB
    data = gzip.compress(plain[:5]) + gzip.compress(plain[5:])
    for size in (1, 2, 3, 7, 65_536, len(data)):
        inflater = Inflater(len(plain))
        pieces = [p for i in range(0, len(data), size) for p in inflater.feed(data[i : i + size])]
        inflater.end()
        assert b"".join(pieces) == plain and max(map(len, pieces)) <= PIECE, size
    bomb = gzip.compress(b"\0" * (64 * PIECE))  # 64 MiB from 64 KiB
    inflater = Inflater(8 * PIECE)
    with pytest.raises(errors.BillError, match="larger than"):
        for piece in inflater.feed(bomb):
            assert len(piece) <= PIECE
    for cut in (2, 10, len(data) - 1):  # one byte alone is a plain file of one byte
        inflater = Inflater()
        b"".join(inflater.feed(data[:cut]))
        with pytest.raises(errors.BillFormatError, match="truncated"):
            inflater.end()


def test_a_bill_download_hashes_while_it_arrives_and_reads_back_row_by_row(tmp_path):
    plain = bill(SPLIT, RETURN)
    right, wrong = hashlib.sha1(plain).hexdigest(), "0" * 40
    with BillDownload(right.upper(), directory=str(tmp_path)) as download:
        compressed = gzip.compress(plain)
        for i in range(0, len(compressed), 5):
            download.write(compressed[i : i + 5])
        download.verify()
        assert download.size == len(plain) and b"".join(download.plain()) == plain
        with download.text() as text:
            assert [r.out_return_no for r in BillReader(text) if r.out_return_no] == ["R1"]
    with BillDownload(wrong) as download:
        download.write(gzip.compress(plain))
        with pytest.raises(errors.BillHashMismatch):
            download.verify()
        with pytest.raises(errors.BillError, match="once verified"):
            next(download.plain())
    with BillDownload(right) as download:
        download.write(gzip.compress(plain) + b"junk")  # kept for verify(), never raised here
        with pytest.raises(errors.BillFormatError, match="after the end"):
            download.verify()


def test_a_bill_that_is_not_utf8_deep_inside_is_refused_naming_it():
    data = bill(SPLIT, RETURN).replace("分给商户".encode(), b"\xff\xfe")
    with pytest.raises(errors.BillFormatError, match="not UTF-8"):
        parse_bill(data)
    with pytest.raises(errors.BillFormatError, match="not UTF-8"):
        list(BillReader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")))
