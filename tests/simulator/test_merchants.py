"""Several merchants in one simulator (``--merchants 2``): keys, books and limits apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from wxpay_simulator.__main__ import parse_args
from wxpay_simulator.testing import SimulatorError, SimulatorProcess

from .signed_client import SUB, SignedClient, return_fields

FIRST, SECOND = "1900000100", "1900000101"


@pytest.fixture(scope="module")
def simproc(tmp_path_factory):
    """This module's simulator serves two merchants."""
    with SimulatorProcess(tmp_path_factory.mktemp("sim-merchants"), merchants=2) as sim:
        yield sim


def as_merchant(client: SignedClient, entry: dict) -> SignedClient:
    """``client`` signing as the merchant of a ``credentials.json`` entry."""
    client.mchid = entry["mchid"]
    client.serial_no = entry["merchant_serial_no"]
    client.apiv3_key = entry["apiv3_key"].encode()
    client.private_key = serialization.load_pem_private_key(
        Path(entry["private_key_path"]).read_bytes(), password=None
    )
    return client


@pytest.fixture
def second(simproc, client):
    """A signing client of the second merchant (``client`` stays the first's)."""
    return as_merchant(SignedClient(simproc), simproc.merchant_credentials()[1])


def test_credentials_list_every_merchant_with_the_top_level_keys(simproc):
    creds = simproc.credentials
    first, other = simproc.merchant_credentials()
    assert {k: v for k, v in creds.items() if k != "merchants"} == first
    assert set(other) == set(first)
    assert (first["mchid"], other["mchid"]) == (FIRST, SECOND)
    for name in ("merchant_serial_no", "private_key_path", "apiv3_key"):
        assert other[name] != first[name], name
    assert (
        Path(other["private_key_path"]).read_bytes() != Path(first["private_key_path"]).read_bytes()
    )
    # One WeChat Pay: its own signing keys are the same for every merchant.
    for name in ("wechatpay_public_key_id", "platform_certificate_serial", "base_url"):
        assert other[name] == first[name], name
    assert simproc.control("GET", "health")["merchants"] == [FIRST, SECOND]


def test_each_merchant_signs_with_its_own_key_and_the_log_names_it(simproc, client, second):
    simproc.seed_order("P-M1", sub_mchid=SUB)
    simproc.seed_order("P-M2", sub_mchid=SUB, mchid=SECOND)
    mark = max([c["seq"] for c in simproc.calls()], default=0)
    one = client.create(**return_fields({"out_order_no": "P-M1", "sub_mchid": SUB}, "R-1"))
    two = second.create(**return_fields({"out_order_no": "P-M2", "sub_mchid": SUB}, "R-2"))
    assert (one.status_code, two.status_code) == (200, 200), (one.text, two.text)
    client.assert_signed(one)
    second.assert_signed(two)
    named = [(c["out_return_no"], c["mchid"], c["serial_no"]) for c in simproc.calls(mark)]
    assert named == [("R-1", FIRST, client.serial_no), ("R-2", SECOND, second.serial_no)]


def test_a_serial_or_key_of_another_merchant_is_refused(simproc, client, second):
    simproc.seed_order("P-X", sub_mchid=SUB, mchid=SECOND)
    fields = return_fields({"out_order_no": "P-X", "sub_mchid": SUB}, "R-X")
    # The second merchant's mchid with the first merchant's serial and key.
    second.serial_no, second.private_key = client.serial_no, client.private_key
    refused = second.create(**fields)
    assert refused.status_code == 401 and refused.json()["code"] == "SIGN_ERROR"
    assert "serial_no is not this merchant's" in refused.json()["message"]
    second.mchid = "1900000199"  # served by no one
    unknown = second.create(**fields)
    assert unknown.status_code == 401 and "unknown mchid" in unknown.json()["message"]
    logged = [(c["mchid"], c["serial_no"], c["status"]) for c in simproc.calls()[-2:]]
    assert logged == [(SECOND, client.serial_no, 401), ("1900000199", client.serial_no, 401)]
    assert simproc.returns() == []


def test_each_merchant_has_its_own_books(simproc, client, second):
    simproc.seed_order("P-SAME", sub_mchid=SUB, amount=300)
    simproc.seed_order("P-SAME", sub_mchid=SUB, amount=500, mchid=SECOND)
    simproc.seed_order("P-ONLY-1", sub_mchid=SUB)
    order = {"out_order_no": "P-SAME", "sub_mchid": SUB}
    # The same out_return_no in both merchants' books: two returns, each its own order's.
    assert client.create(**return_fields(order, "R-SAME", amount=300)).status_code == 200
    assert second.create(**return_fields(order, "R-SAME", amount=500)).status_code == 200
    # An order of the first merchant is not one the second can return from.
    missing = second.create(**return_fields({"out_order_no": "P-ONLY-1", "sub_mchid": SUB}, "R-N"))
    assert missing.status_code == 404 and missing.json()["code"] == "RESOURCE_NOT_EXISTS"
    assert second.query("R-SAME", "P-SAME").json()["amount"] == 500
    assert client.query("R-SAME", "P-SAME").json()["amount"] == 300
    assert [r["amount"] for r in simproc.returns(mchid=SECOND)] == [500]
    assert {(r["mchid"], r["amount"]) for r in simproc.returns()} == {(FIRST, 300), (SECOND, 500)}
    assert simproc.order("P-SAME", mchid=SECOND)["receivers"][0]["returned"] == 500
    assert simproc.order("P-SAME")["mchid"] == FIRST


def test_seeding_for_a_merchant_not_served_is_refused(simproc, client):
    with pytest.raises(SimulatorError, match="not a merchant this simulator serves"):
        simproc.seed_order("P-BAD", sub_mchid=SUB, mchid="1900000199")
    with pytest.raises(SimulatorError, match="400"):
        simproc.returns(mchid="1900000199")


def test_the_rate_limit_is_per_merchant(simproc, client, second):
    simproc.configure(qps_limit=2)
    first_answers = [client.certificates().status_code for _ in range(3)]
    second_answers = [second.certificates().status_code for _ in range(2)]
    assert first_answers[:2] == [200, 200] and first_answers[2] == 429
    assert second_answers == [200, 200]


def test_certificates_are_encrypted_with_the_callers_apiv3_key(simproc, client, second):
    assert second.download_certificates() == client.download_certificates()


def test_extra_merchants_persist_across_restarts(tmp_path):
    with SimulatorProcess(tmp_path / "state", merchants=2) as sim:
        before = sim.merchant_credentials()
    with SimulatorProcess(tmp_path / "state", merchants=3) as sim:
        after = sim.merchant_credentials()
        assert after[:2] == [{**b, "base_url": sim.base_url} for b in before]
        assert after[2]["mchid"] == "1900000102"
        client = as_merchant(SignedClient(sim), after[1])
        sim.seed_order("P-R", sub_mchid=SUB, mchid=SECOND)
        assert client.create(**return_fields({"out_order_no": "P-R", "sub_mchid": SUB}, "R")).ok
    with SimulatorProcess(tmp_path / "state") as sim:  # one merchant again: today's
        assert sim.merchant_credentials() == [
            {k: v for k, v in sim.credentials.items() if k != "merchants"}
        ]
        assert sim.credentials["merchant_serial_no"] == before[0]["merchant_serial_no"]


def test_cli_takes_a_positive_number_of_merchants():
    assert parse_args(["--state-dir", "x"]).merchants == 1
    assert parse_args(["--state-dir", "x", "--merchants", "3"]).merchants == 3
    with pytest.raises(SystemExit):
        parse_args(["--state-dir", "x", "--merchants", "0"])
