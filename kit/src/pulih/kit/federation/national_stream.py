"""The hub's streams: ``NATIONAL``, every regency's aggregates, and ``NATIONAL_DLQ``.

``NATIONAL`` has no subjects of its own: one source per regency, each reading only
``ibm.<code>.reporting.aggregate_reported`` of ``IBM_<code>`` through the regency's JetStream domain
(``$JS.r<code>.API``), delivered on ``national.deliver.r<code>``. A source resumes where it
stopped, so after a link outage the stream catches up by itself. Declaring is idempotent: sources
of regencies added to the list are added, and none is ever dropped (a regency removed from the
list keeps its history and its source until an operator removes it by hand).
"""

from __future__ import annotations

from collections.abc import Iterable

from nats.js.api import DiscardPolicy, ExternalStream, StorageType, StreamConfig, StreamInfo, StreamSource
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from pulih.kit.federation import names


def national_source(code: str) -> StreamSource:
    """The source of regency ``code``'s aggregates."""
    return StreamSource(
        name=names.regency_stream(code),
        filter_subject=names.aggregate_subject(code),
        external=ExternalStream(api=names.js_api(code), deliver=names.deliver_prefix(code)),
    )


def national_stream_config(codes: Iterable[str], replicas: int = 1) -> StreamConfig:
    """``NATIONAL`` with a source for each regency of ``codes`` (in the order given)."""
    return StreamConfig(
        name=names.NATIONAL_STREAM,
        description="Every regency's monthly aggregates, sourced through the leaf links",
        subjects=[],
        sources=[national_source(code) for code in dict.fromkeys(codes)],
        storage=StorageType.FILE,
        num_replicas=replicas,
        discard=DiscardPolicy.OLD,
    )


def national_dlq_config(replicas: int = 1) -> StreamConfig:
    """``NATIONAL_DLQ``: the national reporting's dead letters (``national.dlq.reporting``)."""
    return StreamConfig(
        name=names.NATIONAL_DLQ_STREAM,
        description="Aggregates the national reporting could not apply",
        subjects=[names.NATIONAL_DLQ_SUBJECTS],
        storage=StorageType.FILE,
        num_replicas=replicas,
    )


def _key(source: StreamSource) -> tuple[str, str | None]:
    return source.name, source.external.api if source.external else None


def merged_sources(existing: Iterable[StreamSource], codes: Iterable[str]) -> list[StreamSource]:
    """The existing sources, unchanged and in their order, then those of ``codes`` not yet there."""
    kept = list(existing)
    have = {_key(s) for s in kept}
    return kept + [s for s in (national_source(c) for c in dict.fromkeys(codes)) if _key(s) not in have]


async def declare_national_streams(
    js: JetStreamContext, codes: Iterable[str], replicas: int = 1
) -> StreamInfo:
    """Create ``NATIONAL`` and ``NATIONAL_DLQ``, or bring them up to date: add the sources of new
    regencies, keep every existing one. Returns ``NATIONAL``'s info."""
    codes = [names.check_code(c) for c in codes]
    try:
        await js.stream_info(names.NATIONAL_DLQ_STREAM)
    except NotFoundError:
        await js.add_stream(national_dlq_config(replicas))
    try:
        info = await js.stream_info(names.NATIONAL_STREAM)
    except NotFoundError:
        return await js.add_stream(national_stream_config(codes, replicas))
    current = info.config.sources or []
    sources = merged_sources(current, codes)
    if len(sources) == len(current):
        return info
    return await js.update_stream(info.config.evolve(sources=sources))
