"""The inline SQLite driver: statements run in the event loop's thread, but a statement that meets
another writer's lock waits in a worker thread while the loop goes on, and bulk inserts run in a
worker thread too."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select, text

from pulih.kit import sqlite_driver
from pulih.kit.database import Database

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("body", String(50)))


async def store(tmp_path: Path) -> Database:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'store.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return database


async def count(database: Database) -> int:
    async with database.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(notes))).scalar_one())


async def test_the_store_runs_on_the_inline_driver_in_wal_mode(tmp_path: Path) -> None:
    database = await store(tmp_path)
    assert database.engine.dialect.driver == sqlite_driver.SQLiteDialect_pulih.driver
    async with database.sessions() as session:
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
        assert (await session.execute(text("PRAGMA synchronous"))).scalar_one() == 1  # NORMAL
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    await database.dispose()


async def test_a_write_that_meets_another_writer_waits_without_stopping_the_loop(tmp_path: Path) -> None:
    database = await store(tmp_path)
    other = sqlite3.connect(tmp_path / "store.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds SQLite's write lock
    other.execute("INSERT INTO notes (body) VALUES ('theirs')")

    async def write() -> None:
        async with database.transaction() as session:
            await session.execute(notes.insert(), {"body": "ours"})

    writing = asyncio.create_task(write())
    ticks = 0
    started = time.monotonic()
    # the loop keeps turning while the write waits: twenty turns, well within the write's busy
    # timeout (15 s; a write that held the loop would hold it that long, then fail), whatever
    # else a loaded machine or a garbage collection takes of the time
    while ticks < 20 and time.monotonic() - started < 5:
        await asyncio.sleep(0.01)
        ticks += 1
    assert not writing.done()
    assert ticks >= 20
    other.execute("COMMIT")
    await asyncio.wait_for(writing, 10)
    assert await count(database) == 2
    other.close()
    await database.dispose()


async def test_a_bulk_insert_runs_off_the_loop_and_lands(tmp_path: Path) -> None:
    database = await store(tmp_path)
    rows = [{"body": f"note {i}"} for i in range(sqlite_driver.BULK_ROWS * 3)]
    async with database.transaction() as session:
        await session.execute(notes.insert(), rows)
        await session.execute(notes.insert(), rows[:3])  # a few rows stay inline
    assert await count(database) == len(rows) + 3
    await database.dispose()


async def test_a_rollback_leaves_nothing_and_a_savepoint_keeps_the_rest(tmp_path: Path) -> None:
    database = await store(tmp_path)
    try:
        async with database.transaction() as session:
            await session.execute(notes.insert(), {"body": "lost"})
            raise RuntimeError("refused")
    except RuntimeError:
        pass
    async with database.transaction() as session:
        await session.execute(notes.insert(), {"body": "kept"})
        try:
            async with session.begin_nested():
                await session.execute(notes.insert(), {"body": "undone"})
                raise RuntimeError("one item refused")
        except RuntimeError:
            pass
        await session.execute(notes.insert(), {"body": "kept too"})
    async with database.sessions() as session:
        bodies = (await session.execute(select(notes.c.body).order_by(notes.c.id))).scalars().all()
    assert bodies == ["kept", "kept too"]
    await database.dispose()


async def test_core_connections_execute_on_the_inline_driver(tmp_path: Path) -> None:
    """``AsyncConnection.execute`` refuses a driver that never awaits; the inline one does."""
    database = await store(tmp_path)
    await database.ping()
    async with database.engine.begin() as conn:
        await conn.execute(notes.insert(), {"body": "core"})
        await conn.exec_driver_sql("UPDATE notes SET body = 'driver'")
    async with database.engine.connect() as conn:
        assert (await conn.execute(select(notes.c.body))).scalars().all() == ["driver"]
    await database.dispose()
