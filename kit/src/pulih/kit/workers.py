"""How many uvicorn worker processes a service runs: one, unless PostgreSQL and
``PULIH_WORKERS`` say more.

**One, by default and always on SQLite.** SQLite has one writer: a second process of the same
service would not write any faster, it would only trade the in-process queue of
:class:`~pulih.kit.database.Database` (a commit's wait is the previous commit's duration) for
SQLite's busy handler, which sleeps 1, 2, 5, 10… ms between tries. And a regency box's two cores
are already shared by four services, NATS and the relay: each service is its own process, so the
box's cores are busy without more. What a worker costs per request was cut instead (the inline
SQLite driver, the frozen heap, no thread pool per request).

**PostgreSQL on a server with cores to spare**: ``PULIH_WORKERS=N`` runs N workers of each
service, each a full replica of it on the same database: every worker serves the API, only the
holder of the relay lease publishes the outbox (:mod:`pulih.kit.relay_lease`), the consumers
share their durables, and the periodic jobs' writes are conditional (:mod:`pulih.kit.scheduler`).
A **manual clock** keeps one worker: ``PUT /clock`` would move the clock of the worker that took
it and no other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

log = logging.getLogger("pulih.workers")


def uvicorn_workers(env: Mapping[str, str]) -> int:
    """The number of workers for a service started with ``env`` (see the module's docstring)."""
    asked = env.get("PULIH_WORKERS", "").strip()
    if not asked:
        return 1
    try:
        workers = int(asked)
    except ValueError:
        raise ValueError(f"PULIH_WORKERS is a number of processes, not {asked!r}") from None
    if workers < 1:
        raise ValueError(f"PULIH_WORKERS is at least 1, not {workers}")
    if workers > 1 and not env.get("DATABASE_URL", "").startswith("postgresql"):
        log.warning(
            "PULIH_WORKERS=%d ignored: SQLite has one writer, so each service runs one worker", workers
        )
        return 1
    if workers > 1 and env.get("PULIH_CLOCK") == "manual":
        log.warning("PULIH_WORKERS=%d ignored: a manual clock moves in one worker only", workers)
        return 1
    return workers


NO_DELAY_PROTOCOL = "pulih.kit.http_protocol:NoDelayHttpProtocol"
"""uvicorn's ``--http`` for more than one worker (see :mod:`pulih.kit.http_protocol`)."""


def worker_args(env: Mapping[str, str]) -> list[str]:
    """uvicorn's ``--workers N`` for ``env`` (with the protocol that keeps ``TCP_NODELAY`` on the
    connections of a socket uvicorn binds itself), or nothing for one."""
    workers = uvicorn_workers(env)
    return ["--workers", str(workers), "--http", NO_DELAY_PROTOCOL] if workers > 1 else []
