"""A field device's offline work, synced in one request: its sessions and follow-ups for a unit.

Each item is the command its single request would be (``record_session``, ``record_follow_up``),
applied in the request's order with its idempotency key: its state, its events (the outbox) and
its answer are written together, exactly as the single request's. Items are committed **in
chunks** of :data:`CHUNK_ITEMS`, one transaction a chunk and a savepoint an item:

- an item the rules refuse (a :class:`~pulih.kit.errors.PulihError`: unknown enrolment, another
  unit's, a session already recorded, a key reused for another item…) is rolled back to its
  savepoint, answered ``refused`` with the kit's error body, and changed nothing; the next item
  goes on;
- a chunk answered is committed, whatever happens to the chunks after it (a crash, a store that
  stops answering): the device sends the request again and its items come back
  ``already_applied``. Any failure that is not a refusal (the store down, a bug) ends the request
  with the kit's error answer and rolls back only the chunk it happened in;
- a chunk that meets a request running at the same time (PostgreSQL: a deadlock, or an enrolment
  that request changed after the chunk read it, a ``StaleDataError``) is rolled back whole and
  applied again, up to :data:`CHUNK_ATTEMPTS` times: it committed nothing, and what the other
  request applied first comes back ``already_applied``;
- SQLite's one writer lock is let go between chunks (some 40 ms of work each), so the regency's
  other requests and its outbox relay go on while a long day of work is synced.

A transaction per chunk rather than per item: a day of 250 sessions costs 10 commits, not 250,
and the chunk's enrolments and agents are read once and kept in its session (:func:`hold_rows`):
a third less of the service's CPU a synced session (``bench/api_throughput.py --only sync``, run
alternately against a transaction an item: 1.9-2.2 ms against 2.9-3.4). A savepoint an item
costs two statements: applying a chunk without them first, and again with them only once an item
is refused (as the kit's batch consumers do), measured no faster, so there is one way through.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from pulih.kit import idempotency
from pulih.kit.auth import Principal
from pulih.kit.commands import CommandTx, principal_key
from pulih.kit.database import hold_rows
from pulih.kit.errors import Conflict, Invalid, PulihError, lost_to_another_transaction
from pulih.kit.runtime import ServiceRuntime
from pulih.rehab.access import client_for, enrolment_for
from pulih.rehab.bodies import FollowUpView, SessionView
from pulih.rehab.domain.programme import Programme
from pulih.rehab.handlers.sessions import record_follow_up, record_session
from pulih.rehab.sync_bodies import FollowUpItem, MalformedItem, SessionItem, SyncRequest

_CLASH = "this item clashes with a change made at the same time; send it again to see what it meets"

_IDS = {"enrollment_id", "client_id", "unit_id"}
"""Fields of an error that name the item's enrolment or client (its single request's path)."""


CHUNK_ITEMS = 25
"""Items a transaction: enough to spread a commit's cost, few enough that SQLite's writer lock is
let go every few tens of milliseconds."""

CHUNK_ATTEMPTS = 3
"""How many times a chunk that lost to another request
(:func:`~pulih.kit.errors.lost_to_another_transaction`) is applied; then 409 ``concurrent_update``."""


async def sync_unit(
    runtime: ServiceRuntime,
    programme: Programme,
    principal: Principal,
    request: SyncRequest,
    correlationid: str,
) -> dict[str, Any]:
    """Apply the request's items in order; the answer (``SyncAnswer``'s shape) says what became
    of each."""
    sync = _Sync(runtime, programme, principal, request, correlationid)
    items = list(enumerate(request.items))
    answers: list[dict[str, Any]] = []
    for start in range(0, len(items), CHUNK_ITEMS):
        answered = await sync.chunk(items[start : start + CHUNK_ITEMS])
        answers += answered
        if any(a["events"] for a in answered) and runtime.emitter.wake is not None:
            runtime.emitter.wake()  # a refused item's rollback may have forgotten the doorbell
    outcomes = [a["outcome"] for a in answers]
    return {
        "unit_id": str(request.unit_id),
        "applied": outcomes.count("applied"),
        "already_applied": outcomes.count("already_applied"),
        "refused": outcomes.count("refused"),
        "items": answers,
    }


class _Sync:
    """One request's items, applied a chunk at a time."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        programme: Programme,
        principal: Principal,
        request: SyncRequest,
        correlationid: str,
    ) -> None:
        self.runtime, self.programme, self.principal = runtime, programme, principal
        self.request, self.correlationid = request, correlationid
        self.owner = principal_key(principal)
        self.today = runtime.clock.today()

    async def chunk(
        self, chunk: Sequence[tuple[int, SessionItem | FollowUpItem | MalformedItem]]
    ) -> list[dict[str, Any]]:
        """Apply ``chunk`` and answer each item; again from the start if it clashed with another
        request (its transaction was rolled back whole)."""
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                return await self._chunk_once(chunk)
            except (DBAPIError, StaleDataError) as exc:
                if attempt == CHUNK_ATTEMPTS or not lost_to_another_transaction(exc):
                    raise
        raise AssertionError("unreachable")

    async def _chunk_once(
        self, chunk: Sequence[tuple[int, SessionItem | FollowUpItem | MalformedItem]]
    ) -> list[dict[str, Any]]:
        """Apply ``chunk`` in one transaction, a savepoint an item, and answer each item."""
        answers: list[dict[str, Any]] = []
        async with self.runtime.database.transaction() as session:
            await self.runtime.database.open_for_savepoints(session)
            hold_rows(session)  # an enrolment or agent read by one item is there for the next
            for index, item in chunk:
                if isinstance(item, MalformedItem):
                    answers.append(_malformed(index, item))
                else:
                    answers.append(await self._in_savepoint(session, index, item))
        return answers

    async def _in_savepoint(
        self, session: AsyncSession, index: int, item: SessionItem | FollowUpItem
    ) -> dict[str, Any]:
        """The item in a savepoint: applied, already applied, or refused and rolled back to it."""
        try:
            async with session.begin_nested():
                return await self._write(session, index, item)
        except PulihError as exc:
            session.expunge_all()  # what the savepoint undid is read again, not half-remembered
            return _refused(index, item, exc)
        except IntegrityError:  # PostgreSQL: a request at the same time wrote the same row first
            session.expunge_all()
            stored = await idempotency.find_answer(session, self.owner, item.key, _fingerprint(item))
            if stored is not None:  # it was this item, sent twice at once: answered as it was
                return _answer(index, item.key, "already_applied", stored.status_code, answer=stored.body)
            return _refused(index, item, Conflict("conflict", _CLASH))

    async def _write(
        self, session: AsyncSession, index: int, item: SessionItem | FollowUpItem
    ) -> dict[str, Any]:
        """The item's state, events and answer written in the session's transaction; or its first
        answer if its key was applied before."""
        fingerprint = _fingerprint(item)
        stored = await idempotency.find_answer(session, self.owner, item.key, fingerprint)
        if stored is not None:
            return _answer(index, item.key, "already_applied", stored.status_code, answer=stored.body)
        tx = CommandTx(session, self.runtime.emitter, self.correlationid)
        await _apply(tx, self.programme, self.principal, self.request, item, self.today)
        assert tx.answer is not None
        await idempotency.store_answer(session, self.owner, item.key, fingerprint, tx.answer)
        return _answer(
            index, item.key, "applied", tx.answer.status_code, answer=tx.answer.body, events=tx.emitted
        )


def _fingerprint(item: SessionItem | FollowUpItem) -> str:
    return idempotency.request_hash("SYNC", item.type, item.model_dump_json(exclude={"key"}).encode())


async def _apply(
    tx: CommandTx,
    programme: Programme,
    principal: Principal,
    request: SyncRequest,
    item: SessionItem | FollowUpItem,
    today: date,
) -> None:
    """One item, as its single request applies it, once it is known to be of the request's unit."""
    if isinstance(item, SessionItem):
        enrolment = await enrolment_for(tx.session, item.enrollment_id, principal)
        _of_unit(enrolment.unit_id, request, "enrollment_id")
        record, phase = await record_session(
            tx, programme, principal, item.enrollment_id, item.session, today
        )
        tx.remember(SessionView.of(record, phase), status_code=201)
    else:
        client = await client_for(tx.session, item.client_id, principal)
        _of_unit(client.unit_id, request, "client_id")
        follow_up = await record_follow_up(tx, principal, item.client_id, item.follow_up, today)
        tx.remember(FollowUpView.model_validate(follow_up), status_code=201)


def _of_unit(unit_id: uuid.UUID, request: SyncRequest, field: str) -> None:
    if unit_id != request.unit_id:
        raise Invalid(
            "other_unit_item",
            f"this item is of unit {unit_id}, not of the unit being synced ({request.unit_id}): "
            "sync each unit's work in a request of its own",
            field,
        )


def _answer(
    index: int,
    key: str | None,
    outcome: str,
    status: int,
    *,
    answer: Any = None,
    events: list[uuid.UUID] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "index": index,
        "key": key,
        "outcome": outcome,
        "status": status,
        "answer": answer,
        "events": [str(e) for e in events or ()],
        "error": error,
    }


def _refused(index: int, item: SessionItem | FollowUpItem, exc: PulihError) -> dict[str, Any]:
    """A refusal, its field placed in the request: the item's ids beside its body."""
    body = "session" if isinstance(item, SessionItem) else "follow_up"
    if exc.field is None:
        field = None
    elif exc.field in _IDS:
        field = f"items[{index}].{'enrollment_id' if body == 'session' else 'client_id'}"
    elif exc.field == "Idempotency-Key":
        field = f"items[{index}].key"
    else:
        field = f"items[{index}].{body}.{exc.field}"
    error = {"code": exc.code, "message": exc.message, "field": field}
    return _answer(index, item.key, "refused", exc.status, error=error)


def _malformed(index: int, item: MalformedItem) -> dict[str, Any]:
    where, message = item.problems[0]
    error = {"code": "invalid", "message": message, "field": f"items[{index}].{where}"}
    return _answer(index, item.key, "refused", Invalid.status, error=error)
