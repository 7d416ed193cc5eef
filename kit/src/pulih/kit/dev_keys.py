"""Signing keys for development and tests, and the JWKS that publishes their public halves.

Production tokens come from an OpenID Connect provider and no Pulih service signs any. With no
provider, two Ed25519 key pairs stand in for it, so that services verify tokens exactly as they
would a provider's (:mod:`pulih.kit.jwks`):

- the **local key** of ``pulih up``, created once under the data dir (``signing-key.pem``, 0600);
  its public half is written to ``jwks.json`` next to it, which the services read through
  ``PULIH_JWKS_URL=file://…``;
- the **secret's key**, derived from ``PULIH_JWT_SECRET`` (deprecated): the tests and the tools
  that mint with a shared secret (``pulih simulate``, the federation demo) keep working, and a
  service with no ``PULIH_JWKS_URL`` accepts only tokens signed by it. It is refused in production.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DEV_ISSUER = "urn:pulih:development"
"""The ``iss`` of every token a development key signs."""

KEY_FILE = "signing-key.pem"
JWKS_FILE = "jwks.json"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@lru_cache(maxsize=32)
def key_from_secret(secret: str) -> Ed25519PrivateKey:
    """The Ed25519 key pair derived from a development secret (the same secret, the same key)."""
    seed = hashlib.sha256(b"pulih development signing key\x00" + secret.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_jwk(key: Ed25519PrivateKey | Ed25519PublicKey) -> dict[str, str]:
    """The public JWK of a key, its ``kid`` the RFC 7638 thumbprint."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    x = _b64url(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    thumbprint = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    kid = _b64url(hashlib.sha256(thumbprint.encode()).digest())
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


def kid_of(key: Ed25519PrivateKey) -> str:
    """The ``kid`` a token signed by ``key`` names."""
    return public_jwk(key)["kid"]


def jwks_of(*keys: Ed25519PrivateKey | Ed25519PublicKey) -> dict[str, Any]:
    """A JWK Set holding the public halves of ``keys``."""
    return {"keys": [public_jwk(key) for key in keys]}


def local_key(data_dir: Path) -> Ed25519PrivateKey:
    """``pulih up``'s key pair: read from ``<data_dir>/signing-key.pem``, created there (0600) the
    first time."""
    path = data_dir / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def existing_local_key(data_dir: Path) -> Ed25519PrivateKey | None:
    """``pulih up``'s key pair if it has made one under ``data_dir``."""
    return local_key(data_dir) if (data_dir / KEY_FILE).exists() else None


def write_local_jwks(data_dir: Path, *extra: Ed25519PrivateKey) -> Path:
    """Write ``<data_dir>/jwks.json`` with the local key's public half (and ``extra`` keys'), and
    return its path: the services' ``PULIH_JWKS_URL`` is its ``file://`` URL."""
    path = data_dir / JWKS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".json.new")
    staging.write_text(json.dumps(jwks_of(local_key(data_dir), *extra), indent=2))
    staging.replace(path)
    return path
