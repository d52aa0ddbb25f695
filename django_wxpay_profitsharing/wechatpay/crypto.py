"""The cryptography of WeChat Pay APIv3, with no HTTP and no Django.

Both sides of the protocol live here so that the client and the simulator share one
implementation of the *published* algorithm (and the tests check it against the
official SDKs' vectors and an independent re-implementation):

- request signature: SHA256withRSA (PKCS#1 v1.5) over
  ``METHOD\\nTARGET\\nTIMESTAMP\\nNONCE\\nBODY\\n``, base64, carried in
  ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=...,nonce_str=...,...``;
- response signature: the same primitive over ``TIMESTAMP\\nNONCE\\nBODY\\n``;
- certificate download and notifications: AEAD_AES_256_GCM with the APIv3 key
  (ciphertext || tag);
- sensitive request fields (a card number, a name): RSAES-OAEP with SHA-1 and
  MGF1-SHA1 under WeChat Pay's key, base64 (wechatpay-go ``utils/rsa_crypto.go``,
  wechatpay-java ``RSA/ECB/OAEPWithSHA-1AndMGF1Padding``).

Messages are built from *bytes*: the bytes signed are the bytes sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .sensitive import sensitive_variables

AUTH_SCHEME = "WECHATPAY2-SHA256-RSA2048"
#: Stateless parameter objects, made once: every request signs and every answer verifies.
_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()
_OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None)  # noqa: S303

KeySource = str | bytes | os.PathLike[str] | rsa.RSAPrivateKey
PublicKeySource = str | bytes | os.PathLike[str] | rsa.RSAPublicKey


class CryptoError(ValueError):
    """A key, certificate or ciphertext that cannot be used (never carries key material)."""


class CertificateGivenAsKey(CryptoError):
    """A certificate was given where WeChat Pay's public key (微信支付公钥) is needed."""


def _read_pem(source: str | bytes | os.PathLike[str], what: str) -> bytes:
    """Accept PEM text, PEM bytes or a path to a PEM file (``what`` names it in errors).

    Errors never repeat the value: a string that is not PEM may be key material
    pasted without its armour (a base64 body), so it is not echoed as a "path".
    """
    if isinstance(source, os.PathLike):
        try:
            return Path(source).read_bytes()
        except OSError as exc:
            raise CryptoError(f"the {what} file cannot be read ({exc.strerror})") from None
    data = source.encode() if isinstance(source, str) else bytes(source)
    if b"-----BEGIN" in data:
        return data
    try:
        path = Path(data.decode().strip())
        return path.read_bytes()
    except (OSError, ValueError):  # ValueError: NUL bytes, undecodable bytes
        kind = "certificate" if what == "certificate" else "key"
        raise CryptoError(
            f"the {what} is neither a PEM {kind} nor a path to a readable file"
        ) from None


@sensitive_variables()
def load_private_key(source: KeySource) -> rsa.RSAPrivateKey:
    """Load an RSA private key from PEM text/bytes, a path, or pass a loaded key through."""
    if isinstance(source, rsa.RSAPrivateKey):
        return source
    pem = _read_pem(source, "private key")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise CryptoError("the private key is not a readable unencrypted PEM key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CryptoError("the private key is not an RSA key")
    return key


def load_public_key(source: PublicKeySource) -> rsa.RSAPublicKey:
    """Load WeChat Pay's RSA public key (微信支付公钥) from ``PUBLIC KEY`` PEM or a path.

    A certificate is refused, not mined for its key: WeChat Pay's public key is a key
    pair of its own (``PUB_KEY_ID_...``, downloaded as ``pub_key.pem``), so the key of
    a merchant certificate (``apiclient_cert.pem``) or of a platform certificate never
    verifies an answer signed in public-key mode: accepting one would only turn every
    answer into a signature error. Platform certificates are loaded as certificates.
    """
    if isinstance(source, rsa.RSAPublicKey):
        return source
    pem = _read_pem(source, "public key")
    if b"-----BEGIN CERTIFICATE-----" in pem:
        raise CertificateGivenAsKey(
            "a certificate (-----BEGIN CERTIFICATE-----) was given where WeChat Pay's "
            "public key (-----BEGIN PUBLIC KEY-----) is needed"
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise CryptoError("the public key is not a readable PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise CryptoError("the public key is not an RSA key")
    return key


def load_certificate(source: str | bytes | os.PathLike[str] | x509.Certificate) -> x509.Certificate:
    """Load an X.509 certificate from PEM text/bytes or a path."""
    if isinstance(source, x509.Certificate):
        return source
    try:
        return x509.load_pem_x509_certificate(_read_pem(source, "certificate"))
    except ValueError:
        raise CryptoError("the certificate is not a readable PEM certificate") from None


def certificate_serial(cert: x509.Certificate) -> str:
    """The serial as WeChat Pay prints it: uppercase hex, no separators."""
    return format(cert.serial_number, "X")


def make_nonce(length: int = 32) -> str:
    """A random ``[0-9A-F]`` nonce: 32 characters carry 128 bits from the OS.

    The nonce only has to be unguessable and never repeat within the 5-minute
    window; hex gives that with one urandom read and no per-character work.
    """
    return os.urandom((length + 1) // 2).hex()[:length].upper()


def request_message(
    method: str, target: str, timestamp: str | int, nonce: str, body: bytes
) -> bytes:
    """``METHOD\\nTARGET\\nTIMESTAMP\\nNONCE\\nBODY\\n``; ``target`` is path?query as sent."""
    head = f"{method.upper()}\n{target}\n{timestamp}\n{nonce}\n".encode()
    return head + body + b"\n"


def response_message(timestamp: str | int, nonce: str, body: bytes) -> bytes:
    """``TIMESTAMP\\nNONCE\\nBODY\\n`` over the raw body bytes."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


@sensitive_variables()
def sign(private_key: rsa.RSAPrivateKey, message: bytes) -> str:
    """SHA256withRSA, PKCS#1 v1.5, standard base64 with padding."""
    raw = private_key.sign(message, _PKCS1V15, _SHA256)
    return base64.b64encode(raw).decode("ascii")


def verify(public_key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    """True when ``signature_b64`` is a valid SHA256withRSA signature of ``message``."""
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        public_key.verify(raw, message, _PKCS1V15, _SHA256)
    except InvalidSignature:
        return False
    return True


def authorization_header(
    *, mchid: str, serial_no: str, nonce: str, timestamp: str | int, signature: str
) -> str:
    """The Authorization value, fields in the order wechatpay-go and -java emit them."""
    return (
        f'{AUTH_SCHEME} mchid="{mchid}",nonce_str="{nonce}",timestamp="{timestamp}",'
        f'serial_no="{serial_no}",signature="{signature}"'
    )


_AUTH_PARAM = re.compile(r'\s*([a-z_]+)="([^"]*)"\s*')


def parse_authorization(value: str) -> dict[str, str]:
    """Split an Authorization header into its fields, in any order.

    Raises ``CryptoError`` when the scheme is not ``WECHATPAY2-SHA256-RSA2048``, a
    field repeats, or one of the five fields is missing.
    """
    scheme, _, params = value.partition(" ")
    if scheme != AUTH_SCHEME:
        raise CryptoError("unsupported authorization scheme")
    fields: dict[str, str] = {}
    for part in params.split(","):
        match = _AUTH_PARAM.fullmatch(part)
        if not match or match.group(1) in fields:
            raise CryptoError("malformed authorization parameters")
        fields[match.group(1)] = match.group(2)
    missing = {"mchid", "nonce_str", "timestamp", "serial_no", "signature"} - fields.keys()
    if missing:
        raise CryptoError(f"authorization lacks {', '.join(sorted(missing))}")
    return fields


@sensitive_variables()
def aes_gcm_decrypt(
    key: bytes | str, nonce: str, associated_data: str | None, ciphertext_b64: str
) -> bytes:
    """AEAD_AES_256_GCM decryption as WeChat Pay uses it (ciphertext || 16-byte tag)."""
    key_bytes = key.encode() if isinstance(key, str) else key
    try:
        data = base64.b64decode(ciphertext_b64, validate=True)
        aad = associated_data.encode() if associated_data else None
        return AESGCM(key_bytes).decrypt(nonce.encode(), data, aad)
    except (binascii.Error, ValueError, InvalidTag):
        raise CryptoError("AES-GCM decryption failed (wrong APIv3 key or tampered data)") from None


@sensitive_variables()
def decrypt_certificates(apiv3_key: bytes, raw: bytes) -> list[x509.Certificate]:
    """The platform certificates of a ``/v3/certificates`` answer, decrypted.

    Each is AES-256-GCM-encrypted under the APIv3 key; one that does not decrypt, or
    an answer of another shape, raises ``CryptoError`` (nothing of it is used).
    """
    try:
        certificates = []
        for item in json.loads(raw)["data"]:
            enc = item["encrypt_certificate"]
            pem = aes_gcm_decrypt(
                apiv3_key, enc["nonce"], enc.get("associated_data"), enc["ciphertext"]
            )
            certificates.append(load_certificate(pem))
        return certificates
    except (ValueError, KeyError, TypeError) as exc:
        raise CryptoError(f"certificate download could not be decrypted: {exc}") from None


def aes_gcm_encrypt(
    key: bytes | str, nonce: str, associated_data: str | None, plaintext: bytes
) -> str:
    """The inverse of :func:`aes_gcm_decrypt` (used by the simulator and the tests)."""
    key_bytes = key.encode() if isinstance(key, str) else key
    aad = associated_data.encode() if associated_data else None
    return base64.b64encode(AESGCM(key_bytes).encrypt(nonce.encode(), plaintext, aad)).decode()


@sensitive_variables()
def rsa_oaep_encrypt(public_key: rsa.RSAPublicKey, plaintext: str) -> str:
    """A sensitive field as WeChat Pay wants it: RSA-OAEP (SHA-1, MGF1-SHA1), base64."""
    return base64.b64encode(public_key.encrypt(plaintext.encode("utf-8"), _OAEP)).decode()


@sensitive_variables()
def rsa_oaep_decrypt(private_key: rsa.RSAPrivateKey, ciphertext_b64: str) -> str:
    """The inverse of :func:`rsa_oaep_encrypt` (WeChat Pay's side: the simulator, tests)."""
    try:
        data = base64.b64decode(ciphertext_b64, validate=True)
        return private_key.decrypt(data, _OAEP).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CryptoError("RSA-OAEP decryption failed (wrong key or tampered data)") from None
