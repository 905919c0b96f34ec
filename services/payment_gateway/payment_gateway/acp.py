"""UnionPay ACP-style signatures, pure: sorted ``k=v&…`` string, SHA-256 hex digest, RSA (PKCS#1 v1.5,
SHA-256) signature of that digest, base64 in ``signature``.

Only the channel signs (with its private key); we verify with the channel's public key.
"""
import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNATURE_FIELD = "signature"
UNSIGNED_FIELDS = {SIGNATURE_FIELD, "signPubKeyCert"}
MAX_FIELDS, MAX_VALUE = 64, 4096


def signing_string(fields: dict) -> str:
    return "&".join(f"{k}={fields[k]}" for k in sorted(fields) if k not in UNSIGNED_FIELDS)


def digest(fields: dict) -> bytes:
    return hashlib.sha256(signing_string(fields).encode("utf-8")).hexdigest().encode("ascii")


def load_public_key(pem: bytes):
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the channel key must be RSA")
    return key


def load_private_key(pem: bytes):
    return serialization.load_pem_private_key(pem, password=None)


def sign(fields: dict, private_key) -> dict:
    signature = private_key.sign(digest(fields), padding.PKCS1v15(), hashes.SHA256())
    return {**fields, SIGNATURE_FIELD: base64.b64encode(signature).decode("ascii")}


def verify(fields, public_key) -> bool:
    """True only for a flat dict of strings carrying a valid signature; anything else is False."""
    if not isinstance(fields, dict) or not 0 < len(fields) <= MAX_FIELDS:
        return False
    if not all(isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_VALUE for k, v in fields.items()):
        return False
    encoded = fields.get(SIGNATURE_FIELD)
    if not encoded:
        return False
    try:
        signature = base64.b64decode(encoded, validate=True)
        public_key.verify(signature, digest(fields), padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, binascii.Error, ValueError):
        return False
