"""What a consumer counts as the store failing (it pauses) and what as the event's own fault
(it spends a delivery attempt), and the probe that says the store commits again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event, func, select
from sqlalchemy import exc as sa_exc

from pulih.kit.consumers import is_store_fault, store_commits
from pulih.kit.database import Database, kit_metadata
from pulih.kit.errors import install_error_handlers, lost_to_another_transaction
from pulih.kit.inbox import inbox_table


def dbapi(kind: type[sa_exc.DBAPIError], *, invalidated: bool = False) -> sa_exc.DBAPIError:
    return kind("INSERT …", {}, Exception("driver says no"), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    "error",
    [
        dbapi(sa_exc.OperationalError),  # disk I/O error, database is locked, connection refused
        dbapi(sa_exc.InterfaceError),
        sa_exc.TimeoutError("QueuePool limit reached"),
        dbapi(sa_exc.DBAPIError, invalidated=True),  # the connection broke mid-transaction
        OSError("No space left on device"),
        TimeoutError(),
    ],
)
def test_the_store_failing_pauses_the_consumer(error: BaseException) -> None:
    assert is_store_fault(error) is True


@pytest.mark.parametrize(
    "error",
    [
        dbapi(sa_exc.IntegrityError),  # the event clashes with what is stored: its own fault
        dbapi(sa_exc.DataError),
        dbapi(sa_exc.DBAPIError, invalidated=False),
        ValueError("a handler bug"),
        KeyError("x"),
    ],
)
def test_the_events_own_faults_spend_an_attempt(error: BaseException) -> None:
    assert is_store_fault(error) is False


async def test_the_probe_commits_a_write_and_leaves_nothing_behind(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(kit_metadata.create_all)
        assert await store_commits(database) is True
        async with database.sessions() as s:
            assert await s.scalar(select(func.count()).select_from(inbox_table)) == 0
    finally:
        await database.dispose()


async def test_the_probe_says_no_when_the_store_cannot_be_written(tmp_path: Path) -> None:
    missing = Database(f"sqlite+aiosqlite:///{tmp_path / 'no-such-dir' / 'store.db'}")
    no_tables = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        assert await store_commits(missing, timeout=5) is False
        assert await store_commits(no_tables, timeout=5) is False
    finally:
        await missing.dispose()
        await no_tables.dispose()


async def test_the_probe_says_no_when_the_store_takes_no_new_row(tmp_path: Path) -> None:
    # a full disk refuses what needs space, while a statement that writes nothing still passes:
    # the probe must really write a row, not only delete one that is not there
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    error = database.engine.dialect.loaded_dbapi.OperationalError

    def refuse_inserts(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            raise error("database or disk is full")

    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(kit_metadata.create_all)
        event.listen(database.engine.sync_engine, "before_cursor_execute", refuse_inserts)
        assert await store_commits(database, timeout=5) is False
        event.remove(database.engine.sync_engine, "before_cursor_execute", refuse_inserts)
        assert await store_commits(database, timeout=5) is True
    finally:
        await database.dispose()


class _DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(f"driver error {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [("40P01", 409, "concurrent_update"), ("40001", 409, "concurrent_update"), ("22P02", 500, None)],
)
async def test_a_transaction_that_lost_to_another_is_409_any_other_driver_error_500(
    sqlstate: str, status: int, code: str | None
) -> None:
    # asyncpg's deadlock reaches the app as a plain DBAPIError: it names the SQLSTATE only
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/things")
    async def fails() -> None:
        raise sa_exc.DBAPIError("UPDATE …", {}, _DriverError(sqlstate))

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        r = await http.post("/things")
    assert r.status_code == status
    if code is not None:
        assert r.json()["code"] == code
    assert lost_to_another_transaction(sa_exc.DBAPIError("x", {}, _DriverError(sqlstate))) is (status == 409)
