"""Verifying bearer tokens against a JSON Web Key Set: the provider's, or a development one.

A :class:`TokenVerifier` checks a token's signature with the key its header's ``kid`` names, an
asymmetric algorithm from :data:`ALGORITHMS` only (never ``none``, never HS*: a token "signed"
with HMAC under the public key as the secret is refused before any key is looked up), and its
``iss``, ``aud`` and ``exp``. Keys come from a :class:`RemoteKeys` (``PULIH_JWKS_URL``, cached,
fetched again when a token names an unknown ``kid`` — the provider rotated its keys — but at most
once per ``min_refresh_seconds``) or from :class:`StaticKeys` (a development key set in memory).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jwt
from jwt import PyJWK, PyJWKClient, PyJWKSet

ALGORITHMS: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
"""The signature algorithms a token may use: asymmetric ones only."""

LEEWAY_SECONDS = 30
"""Clock skew tolerated when checking ``exp``, ``nbf`` and ``iat``: the identity provider's clock
and a service's may differ by a second or more even under NTP, and with none a provider a second
ahead had its fresh tokens refused (``iat`` in the future). Half a minute on tokens that live
minutes, as identity providers' own clients allow."""


class UnknownKey(jwt.InvalidTokenError):
    """The token names a key the key set does not hold (even after a refresh)."""


class KeySource(Protocol):
    """Where a verifier finds the public key a token names."""

    generation: int
    """Bumped whenever the key set changes, so that cached verdicts of older sets are dropped."""

    def key_for(self, kid: str | None) -> PyJWK: ...


def _pick(keys: Sequence[PyJWK], kid: str | None) -> PyJWK | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.key_id == kid), None)


class StaticKeys:
    """A key set held in memory (development and tests)."""

    generation = 0

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.keys = PyJWKSet.from_dict(jwks).keys

    def key_for(self, kid: str | None) -> PyJWK:
        key = _pick(self.keys, kid)
        if key is None:
            raise UnknownKey(f"no key {kid!r} in the development key set")
        return key


class RemoteKeys:
    """The provider's key set at ``url`` (``https://``, or ``file://`` for ``pulih up``'s),
    cached for ``lifespan_seconds`` and fetched again early when a token names a ``kid`` it does
    not hold, at most once per ``min_refresh_seconds`` (a flood of made-up ``kid`` values costs
    the provider one request per interval, not one per token)."""

    def __init__(
        self, url: str, *, lifespan_seconds: float = 300, min_refresh_seconds: float = 10, timeout: float = 5
    ) -> None:
        self.url = url
        self.lifespan_seconds = lifespan_seconds
        self.min_refresh_seconds = min_refresh_seconds
        self.timeout = timeout
        self.generation = 0
        self._keys: list[PyJWK] = []
        self._fetched_at = float("-inf")
        self._refreshed_at = float("-inf")
        self._lock = threading.Lock()
        # PyJWKClient's own cache is not used, so that the refresh on an unknown kid can be
        # rate-limited here; it reads http(s) only: a file:// key set (`pulih up`'s) is read here.
        self._path = Path(url2pathname(urlsplit(url).path)) if url.startswith("file:") else None
        self._client = (
            None
            if self._path is not None
            else PyJWKClient(url, cache_jwk_set=False, cache_keys=False, timeout=int(max(1, timeout)))
        )

    def _fetch(self) -> None:
        if self._client is not None:
            keys = self._client.get_signing_keys()
        else:
            assert self._path is not None
            try:
                data = json.loads(self._path.read_text())
            except (OSError, ValueError) as exc:
                raise jwt.PyJWKClientConnectionError(f"could not read the key set {self.url}: {exc}") from exc
            keys = [
                key
                for key in PyJWKSet.from_dict(data).keys
                if key.key_id and key.public_key_use in (None, "sig")
            ]
        self._keys = [key for key in keys if key.algorithm_name in ALGORITHMS]
        self._fetched_at = time.monotonic()
        self.generation += 1

    def stale(self) -> bool:
        """Whether the next token would fetch the key set (never fetched, or past its lifespan)."""
        return time.monotonic() - self._fetched_at >= self.lifespan_seconds

    def prefetch(self) -> None:
        """Fetch the key set if it is stale (from a worker thread: the fetch blocks)."""
        with self._lock:
            if self.stale():
                self._fetch()

    def key_for(self, kid: str | None) -> PyJWK:
        with self._lock:
            now = time.monotonic()
            if now - self._fetched_at >= self.lifespan_seconds:
                self._fetch()
            key = _pick(self._keys, kid)
            if key is None and now - self._refreshed_at >= self.min_refresh_seconds:
                self._refreshed_at = now
                self._fetch()
                key = _pick(self._keys, kid)
        if key is None:
            raise UnknownKey(f"no key {kid!r} in the provider's key set")
        return key


class TokenVerifier:
    """Checks tokens of one issuer for one audience against one key source."""

    def __init__(self, keys: KeySource, *, issuer: str, audience: str) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience

    def claims(self, token: str) -> dict[str, Any]:
        """The claims of a token whose signature, issuer, audience and expiry hold; raises a
        :class:`jwt.PyJWTError` otherwise (:class:`jwt.ExpiredSignatureError` if expired)."""
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            raise jwt.InvalidAlgorithmError(f"the algorithm {algorithm!r} is not accepted")
        key = self.keys.key_for(header.get("kid"))
        if key.algorithm_name != algorithm:
            raise jwt.InvalidAlgorithmError("the token's algorithm is not its key's")
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[algorithm],
            issuer=self.issuer,
            audience=self.audience,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
        return claims


def discovered_jwks_url(issuer: str, timeout: float = 5) -> str:
    """The ``jwks_uri`` of an issuer's ``.well-known/openid-configuration``."""
    with urllib.request.urlopen(
        f"{issuer.rstrip('/')}/.well-known/openid-configuration", timeout=timeout
    ) as r:
        return str(json.load(r)["jwks_uri"])
