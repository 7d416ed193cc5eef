"""The command transaction behind every POST: state change, events and first answer in one commit.

A route takes :data:`CommandDep` and writes::

    async with cmd.transaction() as tx:
        unit = await handlers.establish_unit(tx, body)   # the use case, in this unit of work
        return tx.reply(view, status_code=201)

``tx`` is a :class:`~pulih.kit.unit_of_work.UnitOfWork` (the same kind a consumer hands its
handlers), so every event it emits carries the request's ``correlationid``.

With an ``Idempotency-Key`` header the answer is stored in the same transaction; a retry gets
it back (header ``Idempotent-Replayed: true``) and changes nothing.

Read your own writes across services: the answer names the events the command emitted
(``Pulih-Events: <id>[,<id>…]``, once they are committed), and a command sent with
``Pulih-After: <id>[,<id>…]`` first waits, up to :data:`AFTER_WAIT_SECONDS`, until a consumer of
this service has applied every one of those events (its inbox holds them). If they do not arrive
in time it answers 409 ``not_yet_known`` with ``Retry-After``, and nothing changes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pulih.contracts import CloudEvent, Event
from pulih.kit import idempotency, inbox
from pulih.kit.auth import CurrentUser, Principal
from pulih.kit.emitter import Emitter
from pulih.kit.errors import Conflict, Invalid
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork

EVENTS_HEADER = "Pulih-Events"
"""Response header: the ids of the events the command emitted, comma-separated."""

AFTER_HEADER = "Pulih-After"
"""Request header: ids of events (another service's ``Pulih-Events``) to wait for first."""

AFTER_WAIT_SECONDS = 5.0
"""How long a command waits for the events named in ``Pulih-After``."""

AFTER_MAX_EVENTS = 20
"""How many event ids one ``Pulih-After`` may name."""

AFTER_RETRY_SECONDS = 1
"""What a 409 ``not_yet_known`` tells the caller to wait before sending the command again."""


class NotYetKnown(Conflict):
    """409: the events a command said it depends on have not reached this service yet."""

    def __init__(self, missing: list[uuid.UUID], waited: float) -> None:
        super().__init__(
            "not_yet_known",
            f"this service has not received event(s) {', '.join(map(str, missing))} after waiting "
            f"{waited:g}s; they may still be on their way (or were never published): send the "
            f"request again in a moment",
            AFTER_HEADER,
        )
        self.headers = {"Retry-After": str(AFTER_RETRY_SECONDS)}


def after_ids(raw: str | None) -> list[uuid.UUID]:
    """The event ids of a ``Pulih-After`` header (422 naming the header if malformed)."""
    if raw is None or not raw.strip():
        return []
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > AFTER_MAX_EVENTS:
        raise Invalid("too_many_events", f"name at most {AFTER_MAX_EVENTS} events", AFTER_HEADER)
    try:
        return [uuid.UUID(p) for p in parts]
    except ValueError:
        raise Invalid(
            "invalid_event_id", "give event ids (UUIDs) separated by commas", AFTER_HEADER
        ) from None


async def wait_for_events(runtime: ServiceRuntime, event_ids: list[uuid.UUID], timeout: float) -> None:
    """Return once this service's consumers have applied every event in ``event_ids``; raise
    :class:`NotYetKnown` after ``timeout`` seconds."""
    wanted = set(event_ids)
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        async with runtime.database.sessions() as session:
            wanted -= await inbox.applied_among(session, wanted)
        if not wanted:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise NotYetKnown(sorted(wanted, key=event_ids.index), timeout)
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, 0.25)


class CommandTx(UnitOfWork):
    """One open command transaction: a unit of work that also remembers the command's answer
    and the events it emitted."""

    def __init__(self, session: AsyncSession, emitter: Emitter, correlationid: str) -> None:
        super().__init__(session, emitter, correlationid=correlationid)
        self.answer: idempotency.StoredAnswer | None = None
        self.response: JSONResponse | None = None
        self.emitted: list[uuid.UUID] = []

    async def emit(self, data: Event, *, clinic_id: str | None = None) -> CloudEvent[Event]:
        event = await super().emit(data, clinic_id=clinic_id)
        self.emitted.append(event.id)
        return event

    def reply(self, body: BaseModel | dict[str, Any] | list[Any], status_code: int = 200) -> JSONResponse:
        """The command's answer; remembered for retries with the same Idempotency-Key."""
        answer = self.remember(body, status_code)
        self.response = JSONResponse(answer.body, status_code=status_code)
        return self.response

    def remember(
        self, body: BaseModel | dict[str, Any] | list[Any], status_code: int = 200
    ) -> idempotency.StoredAnswer:
        """The command's answer as JSON, remembered for retries, without an HTTP response (an
        item of a batch is answered inside the batch's)."""
        content = (
            body.model_dump(mode="json", by_alias=True)
            if isinstance(body, BaseModel)
            else jsonable_encoder(body)
        )
        self.answer = idempotency.StoredAnswer(status_code, content)
        return self.answer


def principal_key(principal: Principal) -> str:
    """Whose Idempotency-Keys these are: each caller has a space of keys of their own."""
    return f"{principal.role}:{principal.sub}"


@asynccontextmanager
async def keyed_transaction(
    runtime: ServiceRuntime, owner: str, key: str | None, fingerprint: str, correlationid: str
) -> AsyncIterator[CommandTx]:
    """One command's transaction, its first answer stored with ``key`` in the same commit.

    A key already answered raises :class:`~pulih.kit.idempotency.Replay` with that answer (before
    the block runs), or 409 ``idempotency_key_reused`` if ``fingerprint`` differs; a concurrent
    request with the same key that commits first makes this one replay its answer too. Without a
    key it is a plain command transaction.
    """
    try:
        async with runtime.database.transaction() as session:
            if key is not None:
                stored = await idempotency.find_answer(session, owner, key, fingerprint)
                if stored is not None:
                    raise idempotency.Replay(stored)
            tx = CommandTx(session, runtime.emitter, correlationid)
            yield tx
            if key is not None and tx.answer is not None:
                await idempotency.store_answer(session, owner, key, fingerprint, tx.answer)
    except IntegrityError:
        # A concurrent retry with the same key committed first: answer as it did.
        if key is None:
            raise
        async with runtime.database.sessions() as session:
            stored = await idempotency.find_answer(session, owner, key, fingerprint)
        if stored is None:
            raise
        raise idempotency.Replay(stored) from None


class Command:
    """Dependency for command routes: the caller, the store and the Idempotency-Key."""

    def __init__(self, request: Request, principal: Principal, runtime: ServiceRuntime, body: bytes) -> None:
        self.request = request
        self.principal = principal
        self.runtime = runtime
        raw_key = request.headers.get("Idempotency-Key")
        self.key = idempotency.check_key(raw_key) if raw_key is not None else None
        self.fingerprint = idempotency.request_hash(request.method, request.url.path, body)
        self.correlationid = request.headers.get("X-Request-Id") or str(uuid.uuid4())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[CommandTx]:
        """Open the command's transaction; replay the first answer if this is a retry."""
        owner = principal_key(self.principal)
        async with keyed_transaction(
            self.runtime, owner, self.key, self.fingerprint, self.correlationid
        ) as tx:
            yield tx
        if tx.response is not None and tx.emitted:  # committed: others may wait for them
            tx.response.headers[EVENTS_HEADER] = ",".join(map(str, tx.emitted))


async def _command(request: Request, principal: CurrentUser) -> Command:
    body = await request.body()
    runtime: ServiceRuntime = request.app.state.runtime
    command = Command(request, principal, runtime, body)
    after = after_ids(request.headers.get(AFTER_HEADER))
    if after:
        await wait_for_events(runtime, after, AFTER_WAIT_SECONDS)
    return command


CommandDep = Annotated[Command, Depends(_command)]
