"""The command transaction behind every POST: state change, events and first answer in one commit.

A route takes :data:`CommandDep` and writes::

    async with cmd.transaction() as tx:
        unit = await handlers.establish_unit(tx, body)   # the use case, in this unit of work
        return tx.reply(view, status_code=201)

``tx`` is a :class:`~pulih.kit.unit_of_work.UnitOfWork` (the same kind a consumer hands its
handlers), so every event it emits carries the request's ``correlationid``.

With an ``Idempotency-Key`` header the answer is stored in the same transaction; a retry gets
it back (header ``Idempotent-Replayed: true``) and changes nothing.
"""

from __future__ import annotations

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

from pulih.kit import idempotency
from pulih.kit.auth import CurrentUser, Principal
from pulih.kit.emitter import Emitter
from pulih.kit.runtime import ServiceRuntime
from pulih.kit.unit_of_work import UnitOfWork


class CommandTx(UnitOfWork):
    """One open command transaction: a unit of work that also remembers the command's answer."""

    def __init__(self, session: AsyncSession, emitter: Emitter, correlationid: str) -> None:
        super().__init__(session, emitter, correlationid=correlationid)
        self.answer: idempotency.StoredAnswer | None = None

    def reply(self, body: BaseModel | dict[str, Any] | list[Any], status_code: int = 200) -> JSONResponse:
        """The command's answer; remembered for retries with the same Idempotency-Key."""
        content = jsonable_encoder(body)
        self.answer = idempotency.StoredAnswer(status_code, content)
        return JSONResponse(content, status_code=status_code)


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
        principal_key = f"{self.principal.role}:{self.principal.sub}"
        try:
            async with self.runtime.database.transaction() as session:
                if self.key is not None:
                    stored = await idempotency.find_answer(session, principal_key, self.key, self.fingerprint)
                    if stored is not None:
                        raise idempotency.Replay(stored)
                tx = CommandTx(session, self.runtime.emitter, self.correlationid)
                yield tx
                if self.key is not None and tx.answer is not None:
                    await idempotency.store_answer(
                        session, principal_key, self.key, self.fingerprint, tx.answer
                    )
        except IntegrityError:
            # A concurrent retry with the same key committed first: answer as it did.
            if self.key is None:
                raise
            async with self.runtime.database.sessions() as session:
                stored = await idempotency.find_answer(session, principal_key, self.key, self.fingerprint)
            if stored is None:
                raise
            raise idempotency.Replay(stored) from None


async def _command(request: Request, principal: CurrentUser) -> Command:
    body = await request.body()
    runtime: ServiceRuntime = request.app.state.runtime
    return Command(request, principal, runtime, body)


CommandDep = Annotated[Command, Depends(_command)]
