"""Bills of a simulator serving two merchants: each its own books, its own downloads."""

from __future__ import annotations

import pytest

from wxpay_simulator.testing import SimulatorProcess

from .signed_client import SUB, SignedClient, return_fields
from .test_bills import apply, download, fetch, independent_returns
from .test_merchants import SECOND, as_merchant


@pytest.fixture(scope="module")
def simproc(tmp_path_factory):
    """This module's simulator serves two merchants."""
    with SimulatorProcess(tmp_path_factory.mktemp("sim-bill-merchants"), merchants=2) as sim:
        yield sim


@pytest.fixture
def second(simproc, client):
    return as_merchant(SignedClient(simproc), simproc.merchant_credentials()[1])


def test_each_merchant_gets_the_bill_of_its_own_books(simproc, client, second):
    simproc.seed_order("PM-1", sub_mchid=SUB, amount=300)
    simproc.seed_order("PM-1", sub_mchid=SUB, amount=500, mchid=SECOND)
    order = {"out_order_no": "PM-1", "sub_mchid": SUB}
    assert client.create(**return_fields(order, "RM-1", amount=30)).status_code == 200
    assert second.create(**return_fields(order, "RM-2", amount=50)).status_code == 200
    assert independent_returns(fetch(client)) == {"RM-1": 30}
    assert independent_returns(fetch(second)) == {"RM-2": 50}


def test_a_download_by_another_merchant_is_no_auth(simproc, client, second):
    simproc.seed_order("PM-2", sub_mchid=SUB, amount=300)
    order = {"out_order_no": "PM-2", "sub_mchid": SUB}
    assert client.create(**return_fields(order, "RM-3", amount=30)).status_code == 200
    link = apply(client).json()
    refused = download(second, link["download_url"])
    assert (refused.status_code, refused.json()["code"]) == (403, "NO_AUTH")
    assert download(client, link["download_url"]).status_code == 200
