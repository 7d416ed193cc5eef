"""Field encryption of client identities, with one data key per client (crypto-shredding).

Each identity field is sealed with AES-256-GCM under the client's own data key, with the client
id and field name as associated data (a ciphertext cannot be moved to another client or field).
The data key is stored only wrapped by the regency's master key. Destroying a client's wrapped
key makes every stored copy of their identity unreadable for good, while events, which never
carry an identity, stay valid.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


class KeyDestroyed(Exception):
    """The client's data key is gone: their identity can no longer be read."""


def _derive(master_key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master_key)


class IdentityVault:
    """Seals and opens identity fields; wraps and unwraps per-client data keys."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._wrapping = AESGCM(_derive(master_key, b"pulih/outreach/key-wrapping/v1"))
        self._lookup_key = _derive(master_key, b"pulih/outreach/nik-lookup/v1")

    def new_data_key(self, client_id: UUID) -> tuple[bytes, bytes]:
        """A fresh data key for ``client_id`` and its wrapped form (the only form stored)."""
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE)
        wrapped = nonce + self._wrapping.encrypt(nonce, data_key, b"dek:" + client_id.bytes)
        return data_key, wrapped

    def unwrap(self, client_id: UUID, wrapped: bytes | None) -> bytes:
        """The client's data key; :class:`KeyDestroyed` if it was erased."""
        if wrapped is None:
            raise KeyDestroyed(str(client_id))
        return self._wrapping.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], b"dek:" + client_id.bytes)

    @staticmethod
    def seal(data_key: bytes, client_id: UUID, field: str, value: str) -> bytes:
        """Encrypt one identity field."""
        nonce = os.urandom(_NONCE)
        aad = client_id.bytes + b"/" + field.encode()
        return nonce + AESGCM(data_key).encrypt(nonce, value.encode(), aad)

    @staticmethod
    def open(data_key: bytes, client_id: UUID, field: str, sealed: bytes) -> str:
        """Decrypt one identity field sealed with :meth:`seal`."""
        aad = client_id.bytes + b"/" + field.encode()
        try:
            return AESGCM(data_key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad).decode()
        except InvalidTag as exc:
            raise KeyDestroyed(str(client_id)) from exc

    def nik_lookup(self, nik: str) -> str:
        """A keyed hash of a NIK, to find a second registration without storing the NIK in clear."""
        return hmac.new(self._lookup_key, nik.encode(), hashlib.sha256).hexdigest()
