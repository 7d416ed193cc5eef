"""A field device's offline work, synced in one request: its sessions and follow-ups for a unit.

Each item is the command its single request would be (``record_session``, ``record_follow_up``),
applied in the request's order, **each in a transaction of its own** with its idempotency key:
its state, its events (the outbox) and its answer commit together, exactly as the single
request's. One transaction per item rather than one per request with a savepoint per item:

- an item answered ``applied`` is committed, whatever happens to the items after it (a crash, a
  store that stops answering): the device sends the request again and those come back
  ``already_applied``;
- SQLite's one writer lock is let go between items, so the regency's other requests and its
  outbox relay go on while a long day of work is synced, instead of waiting behind it;
- it is the same unit of work as the single request's, with no savepoint of Python's sqlite3 to
  get right.

It costs a commit per item (on SQLite in WAL mode a write to the log, no fsync).

An item the rules refuse (a :class:`~pulih.kit.errors.PulihError`: unknown enrolment, another
unit's, a session already recorded, a key reused for another item…) is answered ``refused`` with
the kit's error body, and changed nothing; the next item goes on. Any other failure (the store
down, a bug) ends the request with the kit's error answer: the items answered before it stay
applied.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError

from pulih.kit import idempotency
from pulih.kit.auth import Principal
from pulih.kit.commands import CommandTx, keyed_transaction, principal_key
from pulih.kit.errors import Conflict, Invalid, PulihError
from pulih.kit.runtime import ServiceRuntime
from pulih.rehab.access import client_for, enrolment_for
from pulih.rehab.bodies import FollowUpView, SessionView
from pulih.rehab.domain.programme import Programme
from pulih.rehab.handlers.sessions import record_follow_up, record_session
from pulih.rehab.sync_bodies import FollowUpItem, MalformedItem, SessionItem, SyncRequest

_CLASH = "this item clashes with a change made at the same time; send it again to see what it meets"

_IDS = {"enrollment_id", "client_id", "unit_id"}
"""Fields of an error that name the item's enrolment or client (its single request's path)."""


async def sync_unit(
    runtime: ServiceRuntime,
    programme: Programme,
    principal: Principal,
    request: SyncRequest,
    correlationid: str,
) -> dict[str, Any]:
    """Apply the request's items in order; the answer (``SyncAnswer``'s shape) says what became
    of each."""
    today = runtime.clock.today()
    owner = principal_key(principal)
    answers: list[dict[str, Any]] = []
    for index, item in enumerate(request.items):
        if isinstance(item, MalformedItem):
            answers.append(_malformed(index, item))
            continue
        fingerprint = idempotency.request_hash(
            "SYNC", item.type, item.model_dump_json(exclude={"key"}).encode()
        )
        try:
            async with keyed_transaction(runtime, owner, item.key, fingerprint, correlationid) as tx:
                await _apply(tx, programme, principal, request, item, today)
        except idempotency.Replay as replay:
            answers.append(
                _answer(
                    index, item.key, "already_applied", replay.answer.status_code, answer=replay.answer.body
                )
            )
        except PulihError as exc:
            answers.append(_refused(index, item, exc))
        except IntegrityError:  # PostgreSQL: a request at the same time wrote the same row first
            answers.append(_refused(index, item, Conflict("conflict", _CLASH)))
        else:
            assert tx.answer is not None
            answers.append(
                _answer(
                    index,
                    item.key,
                    "applied",
                    tx.answer.status_code,
                    answer=tx.answer.body,
                    events=tx.emitted,
                )
            )
    outcomes = [a["outcome"] for a in answers]
    return {
        "unit_id": str(request.unit_id),
        "applied": outcomes.count("applied"),
        "already_applied": outcomes.count("already_applied"),
        "refused": outcomes.count("refused"),
        "items": answers,
    }


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
