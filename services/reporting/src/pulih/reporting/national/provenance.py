"""Which regency's link a message of ``NATIONAL`` really came through: its ``Nats-Stream-Source``.

``NATIONAL`` holds no subjects of its own: every message in it was sourced from a regency's
``IBM_<code>`` through that regency's link. The subject and payload it is stored with are what
the regency's server delivered, so a modified regency server could claim another regency's
subject. The header ``Nats-Stream-Source`` is not the regency's to say: the hub removes any such
header a sourced message carries and stamps its own, whose first field is the index name of
the source the message arrived by, ``IBM_<code>:<hash of the source's API prefix>``
(nats-server ``processInboundSourceMsg`` and ``StreamSource.composeIName``). A source is bound
to one regency's link (its consumer requests and deliveries go through that regency's account
``R<code>`` only), so that name says whose link it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from pulih.kit.federation import names

SOURCE_HEADER = "Nats-Stream-Source"
"""The header the hub stamps on every message a stream sources (nats-server ``JSStreamSource``)."""

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HASH_LEN = 8


def server_hash(name: str) -> str:
    """nats-server's ``getHash``: 8 characters of base 62 from the SHA-256 of ``name``."""
    digest = hashlib.sha256(name.encode()).digest()
    return "".join(_DIGITS[byte % len(_DIGITS)] for byte in digest[:_HASH_LEN])


def source_name(code: str) -> str:
    """The first field of ``Nats-Stream-Source`` on what ``NATIONAL`` sources from regency
    ``code``, e.g. ``IBM_3301:<hash of $JS.r3301.API>``."""
    return f"{names.regency_stream(code)}:{server_hash(names.js_api(code))}"


@dataclass(frozen=True)
class Source:
    """Where the hub says a message came from: the source's stream and its API prefix's hash."""

    stream: str
    api_hash: str

    @property
    def name(self) -> str:
        """As the header gives it: ``<stream>:<hash>``."""
        return f"{self.stream}:{self.api_hash}" if self.api_hash else self.stream


def source_of(headers: Mapping[str, str]) -> Source | None:
    """The source named by ``headers``' ``Nats-Stream-Source`` (None without one)."""
    value = headers.get(SOURCE_HEADER, "").strip()
    if not value:
        return None
    first = value.split(" ", 1)[0]
    stream, _, api_hash = first.partition(":")
    return Source(stream, api_hash)


def sourced_from(headers: Mapping[str, str], code: str) -> bool:
    """Whether the hub stamped the message as sourced through regency ``code``'s link."""
    source = source_of(headers)
    return source is not None and source.name == source_name(code)
