"""Making the simulator's key material: RSA keys, serials, APIv3 keys, certificates, PEM
files written with owner-only permissions for secrets.

Why apart: the merchants' credentials (``credentials.py``), the local TLS files
(``tls_files.py``) and key rotation (``signing.py``) all make keys the same way, in the
shapes WeChat Pay issues (RSA-2048, 40-hex-digit serials, ``PUB_KEY_ID_`` + 34 digits).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import string
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CERT_VALIDITY = dt.timedelta(days=5 * 365)
_KEY_ALPHABET = string.ascii_letters + string.digits


def new_rsa_key() -> rsa.RSAPrivateKey:
    """RSA-2048, e=65537: the only key type WeChat Pay APIv3 uses."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_serial() -> int:
    """A positive serial that prints as exactly 40 uppercase hex digits (< 2**159)."""
    return secrets.randbelow((1 << 159) - (1 << 156)) + (1 << 156)


def new_apiv3_key() -> str:
    """32 ASCII characters: AES-256 takes the key's bytes as they are."""
    return "".join(secrets.choice(_KEY_ALPHABET) for _ in range(32))


def new_public_key_id() -> str:
    """``PUB_KEY_ID_`` and 34 digits, the shape of the ids WeChat Pay issues."""
    return "PUB_KEY_ID_" + "".join(secrets.choice(string.digits) for _ in range(34))


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def subject_name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wxpay-simulator"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def self_signed_certificate(
    key: rsa.RSAPrivateKey, common_name: str, unit: str, *, not_before: dt.datetime | None = None
) -> x509.Certificate:
    """A self-signed leaf certificate with a 40-hex-digit serial (merchant/platform)."""
    start = not_before or utc_now() - dt.timedelta(minutes=5)
    name = subject_name(common_name, unit)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(new_serial())
        .not_valid_before(start)
        .not_valid_after(start + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_file(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Write atomically; private keys are readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
