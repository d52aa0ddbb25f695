"""Keys and certificates of the simulated WeChat Pay, created once and kept in a state dir.

Why persisted: a developer (or the demo) points Django settings at ``credentials.json``;
restarting the simulator must not invalidate those settings, so every key, certificate
and the APIv3 key are written on the first start and reused afterwards. Only the
``base_url``, ``mode`` and ``ca_bundle_path`` are refreshed on each start.

Several merchants (``--merchants N``): the first is today's (its files at the top of
the state dir, its keys at the top of ``credentials.json``); merchant ``i`` (1, 2...)
has mchid ``first + i`` and its own key pair, API certificate and APIv3 key in
``merchant-<i>/``, made when first asked for and kept. ``credentials.json`` lists
every merchant served under ``merchants``, each with the same keys as the top level.
The simulator's own signing keys are shared: one WeChat Pay, many merchants.

Two kinds of key live here:

- the *merchant's* API key pair and self-signed API certificate (what a merchant
  downloads from the merchant platform); the simulator keeps the public half to verify
  request signatures, the private half is handed to the client through the file;
- the *simulator's own* signing keys: the "WeChat Pay public key" (``PUB_KEY_ID_...``)
  and the platform certificate, two different key pairs as on the real platform.

With TLS, a local CA (``ca.pem``) and a server certificate for 127.0.0.1/localhost
(``tls_files.py``); keys and certificates are made by ``key_making.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from django_wxpay_profitsharing.wechatpay.crypto import (
    certificate_serial,
    load_certificate,
    load_private_key,
)

from .key_making import (
    cert_pem,
    new_apiv3_key,
    new_public_key_id,
    new_rsa_key,
    private_pem,
    self_signed_certificate,
    write_file,
)

CREDENTIALS_FILE = "credentials.json"
MERCHANT_KEY_FILE = "apiclient_key.pem"
MERCHANT_CERT_FILE = "apiclient_cert.pem"
PUBLIC_KEY_FILE = "wechatpay_public_key.pem"
PUBLIC_KEY_PRIVATE_FILE = "simulator_public_key_private.pem"
PLATFORM_CERT_FILE = "platform_cert.pem"
PLATFORM_KEY_FILE = "simulator_platform_key.pem"
MERCHANT_RECORD_FILE = "merchant.json"


@dataclass(frozen=True)
class PlatformCertificate:
    """One platform certificate with its private key (the simulator signs with it)."""

    serial: str
    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class MerchantKeys:
    """One merchant's side: its API public key (to verify it), serial and APIv3 key."""

    mchid: str
    apiv3_key: str
    serial_no: str
    public_key: rsa.RSAPublicKey
    #: Where its private key and API certificate are (handed to clients by the file).
    directory: Path


@dataclass(frozen=True)
class Credentials:
    """Everything the simulator holds, loaded once (no per-request key loading).

    The top-level merchant fields are the first merchant's; ``merchants`` holds every
    merchant served, the first included.
    """

    state_dir: Path
    mchid: str
    apiv3_key: str
    merchant_serial_no: str
    merchant_public_key: rsa.RSAPublicKey
    public_key_id: str
    public_key_private: rsa.RSAPrivateKey
    platform: PlatformCertificate
    merchants: tuple[MerchantKeys, ...] = ()

    def path(self, name: str) -> Path:
        return self.state_dir / name

    def served(self) -> tuple[MerchantKeys, ...]:
        """Every merchant served, the first first (``merchants``, or the top-level one)."""
        return self.merchants or (
            MerchantKeys(
                self.mchid,
                self.apiv3_key,
                self.merchant_serial_no,
                self.merchant_public_key,
                self.state_dir,
            ),
        )


def new_platform_certificate(mchid: str) -> PlatformCertificate:
    """A fresh platform key pair and certificate; used at first start and on rotation."""
    key = new_rsa_key()
    cert = self_signed_certificate(key, "Tenpay.com Root CA (simulated)", f"platform {mchid}")
    return PlatformCertificate(certificate_serial(cert), cert, key)


def _create_merchant_keys(directory: Path, mchid: str) -> None:
    """A merchant's API key pair and self-signed API certificate, in ``directory``."""
    merchant_key = new_rsa_key()
    merchant_cert = self_signed_certificate(merchant_key, f"{mchid}", f"merchant {mchid}")
    write_file(directory / MERCHANT_KEY_FILE, private_pem(merchant_key), secret=True)
    write_file(directory / MERCHANT_CERT_FILE, cert_pem(merchant_cert))


def _create(state_dir: Path, mchid: str) -> dict[str, Any]:
    """First start: generate every key and certificate, return the persistent record."""
    _create_merchant_keys(state_dir, mchid)

    pub_key = new_rsa_key()
    write_file(state_dir / PUBLIC_KEY_PRIVATE_FILE, private_pem(pub_key), secret=True)
    write_file(
        state_dir / PUBLIC_KEY_FILE,
        pub_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )

    platform = new_platform_certificate(mchid)
    write_file(state_dir / PLATFORM_KEY_FILE, private_pem(platform.private_key), secret=True)
    write_file(state_dir / PLATFORM_CERT_FILE, platform.pem)
    return {
        "mchid": mchid,
        "merchant_serial_no": certificate_serial(load_certificate(state_dir / MERCHANT_CERT_FILE)),
        "apiv3_key": new_apiv3_key(),
        "wechatpay_public_key_id": new_public_key_id(),
    }


def _merchant_keys(directory: Path, mchid: str, apiv3_key: str) -> MerchantKeys:
    cert = load_certificate(directory / MERCHANT_CERT_FILE)
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    return MerchantKeys(mchid, apiv3_key, certificate_serial(cert), public_key, directory)


def _extra_merchant(state_dir: Path, index: int, mchid: str) -> MerchantKeys:
    """Merchant ``index`` (1, 2...): its keys in ``merchant-<index>/``, made once."""
    directory = state_dir / f"merchant-{index}"
    record_path = directory / MERCHANT_RECORD_FILE
    if record_path.exists():
        apiv3_key = json.loads(record_path.read_text(encoding="utf-8"))["apiv3_key"]
    else:
        directory.mkdir(mode=0o700, exist_ok=True)
        _create_merchant_keys(directory, mchid)
        apiv3_key = new_apiv3_key()
        write_file(record_path, json.dumps({"apiv3_key": apiv3_key}).encode(), secret=True)
    return _merchant_keys(directory, mchid, apiv3_key)


def load_or_create(state_dir: Path, mchid: str | None, merchants: int = 1) -> Credentials:
    """Load the state dir's keys, generating them on the first start.

    ``mchid`` None keeps the stored one (default ``1900000100`` on creation); a
    different explicit mchid is recorded, the keys stay the same. ``merchants`` > 1
    adds merchants with the following mchids (see the module's docstring).
    """
    if merchants < 1:
        raise ValueError("merchants must be at least 1")
    state_dir.mkdir(parents=True, exist_ok=True)
    record_path = state_dir / CREDENTIALS_FILE
    if record_path.exists():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        if mchid:
            record["mchid"] = mchid
    else:
        record = _create(state_dir, mchid or "1900000100")
    platform_cert = load_certificate(state_dir / PLATFORM_CERT_FILE)
    platform = PlatformCertificate(
        certificate_serial(platform_cert),
        platform_cert,
        load_private_key(state_dir / PLATFORM_KEY_FILE),
    )
    first = _merchant_keys(state_dir, record["mchid"], record["apiv3_key"])
    if merchants > 1 and not str(first.mchid).isdigit():
        raise ValueError("several merchants need a first mchid of digits")
    extra = [
        _extra_merchant(state_dir, index, str(int(first.mchid) + index))
        for index in range(1, merchants)
    ]
    return Credentials(
        state_dir=state_dir,
        mchid=first.mchid,
        apiv3_key=first.apiv3_key,
        merchant_serial_no=first.serial_no,
        merchant_public_key=first.public_key,
        public_key_id=record["wechatpay_public_key_id"],
        public_key_private=load_private_key(state_dir / PUBLIC_KEY_PRIVATE_FILE),
        platform=platform,
        merchants=(first, *extra),
    )


def write_record(
    creds: Credentials, *, base_url: str, mode: str, ca_bundle: Path | None
) -> dict[str, Any]:
    """(Re)write ``credentials.json`` for the clients; returns what was written.

    The top-level keys are the first merchant's; ``merchants`` has the same keys for
    every merchant served (the first included).
    """

    def entry(merchant: MerchantKeys) -> dict[str, Any]:
        return {
            "mchid": merchant.mchid,
            "merchant_serial_no": merchant.serial_no,
            "private_key_path": str(merchant.directory / MERCHANT_KEY_FILE),
            "merchant_certificate_path": str(merchant.directory / MERCHANT_CERT_FILE),
            "apiv3_key": merchant.apiv3_key,
            "wechatpay_public_key_path": str(creds.path(PUBLIC_KEY_FILE)),
            "wechatpay_public_key_id": creds.public_key_id,
            "platform_certificate_path": str(creds.path(PLATFORM_CERT_FILE)),
            "platform_certificate_serial": creds.platform.serial,
            "base_url": base_url,
            "ca_bundle_path": str(ca_bundle) if ca_bundle else None,
            "mode": mode,
        }

    served = creds.served()
    record = {**entry(served[0]), "merchants": [entry(m) for m in served]}
    data = json.dumps(record, indent=2, ensure_ascii=False).encode() + b"\n"
    write_file(creds.path(CREDENTIALS_FILE), data, secret=True)
    return record
