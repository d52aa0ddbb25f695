"""The local CA and the server certificate for HTTPS on 127.0.0.1/localhost, made once.

Why: a client verifying TLS (``ca_bundle``) trusts the simulator's own CA, written beside
the credentials and reused on every start, as it would trust WeChat Pay's.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from .key_making import (
    CERT_VALIDITY,
    cert_pem,
    new_rsa_key,
    new_serial,
    private_pem,
    subject_name,
    utc_now,
    write_file,
)

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "simulator_ca_key.pem"
SERVER_CERT_FILE = "server_cert.pem"
SERVER_KEY_FILE = "simulator_server_key.pem"


def ensure_tls_files(state_dir: Path) -> tuple[Path, Path, Path]:
    """CA and server certificate for HTTPS on 127.0.0.1/localhost, made once.

    Returns (server_cert, server_key, ca_cert). The server certificate carries both an
    IP and a DNS SAN plus key identifiers, so strict verifiers accept it.
    """
    ca_path, ca_key_path = state_dir / CA_CERT_FILE, state_dir / CA_KEY_FILE
    cert_path, key_path = state_dir / SERVER_CERT_FILE, state_dir / SERVER_KEY_FILE
    if all(p.exists() for p in (ca_path, ca_key_path, cert_path, key_path)):
        return cert_path, key_path, ca_path
    start = utc_now() - dt.timedelta(minutes=5)
    ca_key = new_rsa_key()
    ca_name = subject_name("wxpay-simulator local CA", "ca")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(new_serial())
        .not_valid_before(start)
        .not_valid_after(start + CERT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = new_rsa_key()
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(subject_name("localhost", "server"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(new_serial())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=825))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_file(ca_key_path, private_pem(ca_key), secret=True)
    write_file(ca_path, cert_pem(ca_cert))
    write_file(key_path, private_pem(server_key), secret=True)
    write_file(cert_path, cert_pem(server_cert))
    return cert_path, key_path, ca_path
