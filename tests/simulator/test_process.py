"""The simulator as a process: credentials, signing modes, rotation, TLS, restarts, lifetime."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509

from wxpay_simulator.__main__ import parse_args
from wxpay_simulator.testing import SimulatorProcess

from .signed_client import SUB, SignedClient, return_fields

#: conftest's simulator runs in this mode here: public key and certificates.
SIMULATOR_MODE = "both"


def test_credentials_file(simproc):
    creds = simproc.credentials
    assert set(creds) >= {
        "mchid",
        "merchant_serial_no",
        "private_key_path",
        "apiv3_key",
        "wechatpay_public_key_path",
        "wechatpay_public_key_id",
        "platform_certificate_path",
        "platform_certificate_serial",
        "base_url",
        "ca_bundle_path",
        "mode",
    }
    assert creds["mchid"] == "1900000100" and creds["mode"] == "both"
    assert creds["base_url"] == simproc.base_url and creds["ca_bundle_path"] is None
    assert re.fullmatch(r"[0-9A-F]{40}", creds["merchant_serial_no"])
    assert re.fullmatch(r"PUB_KEY_ID_\d+", creds["wechatpay_public_key_id"])
    assert re.fullmatch(r"[0-9A-F]+", creds["platform_certificate_serial"])
    assert re.fullmatch(r"[ -~]{32}", creds["apiv3_key"])
    merchant = x509.load_pem_x509_certificate(
        Path(creds["private_key_path"]).with_name("apiclient_cert.pem").read_bytes()
    )
    assert format(merchant.serial_number, "X") == creds["merchant_serial_no"]
    assert creds["platform_certificate_serial"] != creds["merchant_serial_no"]
    assert stat.S_IMODE(os.stat(creds["private_key_path"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(simproc.state_dir / "credentials.json").st_mode) == 0o600


def test_client_kwargs_and_settings_dict(simproc):
    kwargs = simproc.client_kwargs()
    assert kwargs["base_url"] == simproc.base_url and kwargs["ca_bundle"] is None
    assert Path(kwargs["private_key"]).exists() and Path(kwargs["wechatpay_public_key"]).exists()
    assert "platform_certificates" not in kwargs
    settings = simproc.settings_dict()
    assert settings["MCHID"] == kwargs["mchid"]
    assert settings["WECHATPAY_PUBLIC_KEY_ID"] == kwargs["wechatpay_public_key_id"]
    assert settings["BASE_URL"] == simproc.base_url and settings["CA_BUNDLE"] is None


def test_cli_defaults():
    args = parse_args(["--state-dir", "x"])
    assert (args.host, args.port, args.mode, args.qps_limit) == (
        "127.0.0.1",
        8765,
        "public-key",
        30,
    )


def test_public_key_mode_signs_with_the_public_key(simproc, client):
    simproc.configure(mode="public-key")
    response = client.certificates(headers={"Wechatpay-Serial": client.serial_no})
    assert response.headers["Wechatpay-Serial"] == client.public_key_id
    client.assert_signed(response)


def test_certificate_mode_signs_with_the_platform_certificate(simproc, client):
    simproc.configure(mode="certificate")
    serial = simproc.credentials["platform_certificate_serial"]
    response = client.send("GET", "/v3/nothing", headers={"Wechatpay-Serial": client.public_key_id})
    assert response.status_code == 404
    assert response.headers["Wechatpay-Serial"] == serial
    client.assert_signed(response)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("pub", "pub"),
        ("cert", "cert"),
        ("cert_lower", "cert"),
        (None, "cert"),
        ("0123456789ABCDEF", "cert"),
    ],
)
def test_both_mode_follows_the_requests_wechatpay_serial(simproc, client, requested, expected):
    serial = simproc.credentials["platform_certificate_serial"]
    values = {"pub": client.public_key_id, "cert": serial, "cert_lower": serial.lower()}
    headers = {"Wechatpay-Serial": values.get(requested, requested)}
    response = client.certificates(headers=headers)
    assert response.status_code == 200
    want = client.public_key_id if expected == "pub" else serial
    assert response.headers["Wechatpay-Serial"] == want
    client.assert_signed(response)


def test_certificate_download_decrypts_with_the_apiv3_key(simproc, client):
    certs = client.download_certificates()
    serial = simproc.credentials["platform_certificate_serial"]
    assert list(certs) == [serial]
    data = client.certificates().json()["data"][0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00", data["effective_time"])
    assert data["expire_time"] > data["effective_time"]
    on_disk = x509.load_pem_x509_certificate(
        Path(simproc.credentials["platform_certificate_path"]).read_bytes()
    )
    assert certs[serial] == on_disk


def test_rotation_signs_with_the_new_certificate_and_lists_both(simproc, client):
    simproc.configure(mode="certificate")
    old = simproc.credentials["platform_certificate_serial"]
    rotated = simproc.set_fault("rotate_certificate")
    new = rotated["serial_no"]
    assert new != old and re.fullmatch(r"[0-9A-F]+", new)
    assert simproc.faults() == []  # not a call fault
    order = simproc.seed_order("P-ROT", sub_mchid=SUB)
    response = client.create(**return_fields(order, "R-ROT"))
    assert response.headers["Wechatpay-Serial"] == new
    assert not client.signature_ok(response)  # unknown serial until downloaded
    assert set(client.download_certificates()) == {old, new}
    assert client.signature_ok(response)
    # "both" still honours a request naming the old, still valid certificate.
    simproc.configure(mode="both")
    again = client.certificates(headers={"Wechatpay-Serial": old})
    assert again.headers["Wechatpay-Serial"] == old
    client.assert_signed(again)


def test_credentials_persist_across_restarts(tmp_path):
    with SimulatorProcess(tmp_path / "state") as first:
        creds = dict(first.credentials)
        key = Path(creds["private_key_path"]).read_bytes()
    with SimulatorProcess(tmp_path / "state", mode="certificate") as second:
        again = second.credentials
        assert Path(again["private_key_path"]).read_bytes() == key
        for name in (
            "mchid",
            "merchant_serial_no",
            "apiv3_key",
            "wechatpay_public_key_id",
            "platform_certificate_serial",
        ):
            assert again[name] == creds[name]
        assert again["mode"] == "certificate" and again["base_url"] == second.base_url
        # A client configured from the first run still works against the second.
        client = SignedClient(second)
        order = second.seed_order("P-PERSIST", sub_mchid=SUB)
        response = client.create(**return_fields(order, "R-PERSIST"))
        assert response.status_code == 200
        client.assert_signed(response)


def test_tls_is_verified_with_the_generated_ca(tmp_path):
    with SimulatorProcess(tmp_path / "tls", tls=True) as sim:
        assert sim.base_url.startswith("https://127.0.0.1:")
        assert sim.ca_bundle == str(tmp_path / "tls" / "ca.pem")
        assert sim.credentials["ca_bundle_path"] == sim.ca_bundle
        assert sim.client_kwargs()["ca_bundle"] == sim.ca_bundle
        client = SignedClient(sim)  # verify=ca.pem
        order = sim.seed_order("P-TLS", sub_mchid=SUB)
        response = client.create(**return_fields(order, "R-TLS"))
        assert response.status_code == 200
        client.assert_signed(response)
        port = sim.base_url.rsplit(":", 1)[1]
        health = requests.get(
            f"https://localhost:{port}/_simulator/health", verify=sim.ca_bundle, timeout=5
        )
        assert health.status_code == 200  # the DNS SAN
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{sim.base_url}/_simulator/health", verify=True, timeout=5)
        assert sim.control("GET", "health")["status"] == "ok"  # a refused handshake is harmless


def test_stop_closes_stdin_and_the_process_exits(tmp_path):
    sim = SimulatorProcess(tmp_path / "stop").start()
    proc = sim._proc
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 3
    assert proc is not None and proc.returncode == 0  # exited by itself, not killed
    assert not sim.running


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def test_simulator_dies_with_a_crashed_parent(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, sys
        from wxpay_simulator.testing import SimulatorProcess
        sim = SimulatorProcess({str(tmp_path / "orphan")!r}).start()
        print(sim.pid, flush=True)
        os._exit(1)  # no stop(), no cleanup
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 5
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pid)


def _non_loopback_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for UDP connect
            address = probe.getsockname()[0]
    except OSError:
        return None
    return None if address.startswith("127.") else address


def test_control_surface_refuses_non_loopback_clients(tmp_path):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("no non-loopback IPv4 address on this machine")
    with SimulatorProcess(tmp_path / "wild", extra_args=["--host", "0.0.0.0"]) as sim:
        port = sim.base_url.rsplit(":", 1)[1]
        assert sim.base_url == f"http://127.0.0.1:{port}"
        outside = requests.get(f"http://{address}:{port}/_simulator/health", timeout=5)
        assert outside.status_code == 403
        assert "loopback" in outside.json()["error"]
        assert sim.control("GET", "health")["status"] == "ok"
        unsigned = requests.get(
            f"http://{address}:{port}/v3/certificates",
            headers={"Accept": "application/json"},
            timeout=5,
        )
        assert unsigned.status_code == 401  # the API itself answers anyone
        assert json.loads(unsigned.content)["code"] == "SIGN_ERROR"


def test_idle_keep_alive_connections_are_closed(tmp_path):
    with SimulatorProcess(tmp_path / "idle", extra_args=["--idle-timeout", "0.5"]) as sim:
        host, port = sim.base_url.split("//")[1].split(":")
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(b"GET /_simulator/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            assert conn.recv(1) == b""  # closed by the server after the idle timeout
            assert 0.3 < time.monotonic() - started < 3
