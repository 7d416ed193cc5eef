"""``POST /v1/sync``: a field device that was offline sends a day's sessions and follow-ups for a
unit in one request, and learns what became of each (see :mod:`pulih.rehab.handlers.sync`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pulih.kit import idempotency
from pulih.kit.auth import allow
from pulih.kit.commands import CommandDep, keyed_transaction, principal_key
from pulih.rehab.access import FIELD_ROLES, may_see
from pulih.rehab.deps import Deps
from pulih.rehab.handlers.sync import sync_unit
from pulih.rehab.sync_bodies import SyncAnswer, SyncRequest

router = APIRouter(prefix="/v1", tags=["sync"], dependencies=[allow(*FIELD_ROLES)])
"""Refuses a caller without a field role (403) before it reads the request."""


@router.post("/sync", response_model=SyncAnswer)
async def sync_offline_work(body: SyncRequest, cmd: CommandDep, deps: Deps) -> JSONResponse:
    """Apply a device's offline work for one unit: up to 500 sessions and follow-ups, in order,
    each exactly as its single request (``POST /v1/enrolments/{enrollment_id}/sessions``,
    ``POST /v1/clients/{client_id}/follow-ups``) with its own idempotency key ``key``.

    The answer (200) has one entry per item, in the same order: ``applied``, ``already_applied``
    (the same key with the same item, by an earlier request: nothing changed now), or
    ``refused`` with the reason in the kit's error body, its ``field`` a path into this request
    (``items[3].session.held_on``). A refused item changes nothing and never stops the others.
    Items are committed 25 at a time, each with its events: if the request fails midway (503),
    the chunks before were applied, and sending the request again answers them
    ``already_applied``.
    The ids of each applied item's events are in its ``events`` (no ``Pulih-Events`` header).

    An ``Idempotency-Key`` header is optional: with it, the whole answer is kept, and the same
    request sent again with the same key gets it back as it was (``Idempotent-Replayed``).

    An agent syncs their own unit only (403 ``other_unit``); every item's enrolment or client
    must be of ``unit_id`` (refused ``other_unit_item``). More than 500 items: 422 on ``items``."""
    may_see(cmd.principal, body.unit_id)
    owner = principal_key(cmd.principal)
    if cmd.key is not None:
        async with cmd.runtime.database.sessions() as session:
            stored = await idempotency.find_answer(session, owner, cmd.key, cmd.fingerprint)
        if stored is not None:
            raise idempotency.Replay(stored)
    answer = await sync_unit(cmd.runtime, deps.programme, cmd.principal, body, cmd.correlationid)
    if cmd.key is not None:  # the answer kept in a short transaction of its own, after the items
        async with keyed_transaction(cmd.runtime, owner, cmd.key, cmd.fingerprint, cmd.correlationid) as tx:
            tx.remember(answer)
    return JSONResponse(answer)
