"""``pulih backup DEST`` and ``pulih restore SRC``: a regency's stores and stream, while it runs.

What a backup holds (one directory):

- ``<service>.db`` for each service on SQLite, copied through SQLite's online backup API, which
  gives a consistent copy of a database that is being written; ``<service>.pgdump`` (``pg_dump
  --format=custom``) for a service on PostgreSQL;
- ``stream.snapshot``: JetStream's own snapshot of the regency stream (``$JS.API.STREAM.SNAPSHOT``),
  messages *and* its durable consumers with their positions, so restored consumers resume where
  they were instead of from the first event;
- ``manifest.json``: when, which regency, which services, the stream's last sequence, a sha256 per
  file, and a fingerprint (not the value) of the master key the identities are sealed with.

The master key is never in a backup: a backup without its key is unreadable, which is the point.

Consistency across stores. The stores and the stream cannot be frozen in one instant while the
regency runs, so the backup orders its steps so that nothing is lost and redelivery is harmless:

1. the stream snapshot first, at sequence S: every consumer position in it is at most what that
   consumer had committed, because a consumer acks only after its commit; the stores are copied
   afterwards, so each holds at least that much (a redelivered event finds its id in the inbox);
2. then the stores: every SQLite store pinned at once, in a read transaction each opened right
   after the other, then copied from those snapshots (:func:`pin_sqlite`), so that no store holds
   the effect of an event another store's copy has not recorded; PostgreSQL stores are dumped one
   after the other (each dump consistent in itself), consumers before the services they hear from
   (:data:`COPY_ORDER`);
3. then the ids of the events the stream stored after S (published while the stores were being
   copied), and of the last events before S. On restore, an outbox row marked sent whose event
   came after S is marked unsent again, so its relay publishes it into the restored stream; an
   unsent row whose event is already in the restored stream is marked sent (a crash between
   publish and mark, which the duplicate window would absorb only within minutes).

``pulih restore`` refuses a data dir that is not empty. It restores the stream through
``$JS.API.STREAM.RESTORE``: into a ``nats-server`` it starts on ``<data_dir>/nats`` exactly as
``pulih up`` would (so ``pulih up`` then finds it), or into the server ``NATS_URL`` names.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import nats
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, DeliverPolicy
from sqlalchemy import inspect, make_url, update

from pulih.contracts import regency_subjects, stream_name
from pulih.kit.database import Database
from pulih.kit.local_regency import default_nats_port, installed_services
from pulih.kit.messaging import nats_servers, nats_tls
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.outbox import outbox_table
from pulih.kit.settings import Settings, async_driver_url

MANIFEST = "manifest.json"
SNAPSHOT = "stream.snapshot"
FORMAT = 1
CHUNK_SIZE = 128 * 1024
TAIL_BEFORE_SNAPSHOT = 10_000
"""How many events before the snapshot's last one are looked up for rows published but not yet
marked: more than the relay's largest batch (``PULIH_RELAY_BATCH_SIZE`` ≤ 10,000)."""


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class ServiceStore:
    """Where one service keeps its state."""

    service: str
    url: str
    """The SQLAlchemy URL, with its async driver."""

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is a SQLite file."""
        return make_url(self.url).get_backend_name() == "sqlite"

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file (only for a SQLite store)."""
        return Path(make_url(self.url).database or "")

    @property
    def file_name(self) -> str:
        """The name of its copy in a backup."""
        return f"{self.service}.db" if self.is_sqlite else f"{self.service}.pgdump"


def service_stores(settings: Settings) -> list[ServiceStore]:
    """Every installed service's store, as ``pulih up`` configures it.

    ``PULIH_<SERVICE>_DATABASE_URL`` wins, then ``DATABASE_URL``, then ``<data_dir>/<service>.db``.
    """
    stores = []
    for service in installed_services():
        own = os.environ.get(f"PULIH_{service.name.upper()}_DATABASE_URL")
        url = async_driver_url(own) if own else settings.database_url_for(service.name)
        stores.append(ServiceStore(service.name, url))
    return stores


def regency_nats_url(settings: Settings, nats_port: int) -> str:
    """``NATS_URL`` if set, else the embedded server of ``pulih up`` on ``nats_port``."""
    return os.environ.get("NATS_URL") or f"nats://127.0.0.1:{nats_port}"


def master_key_fingerprint(settings: Settings) -> str | None:
    """A sha256 fingerprint of the master key in use (never the key), or None if there is none yet."""
    if settings.master_key is not None:
        key = base64.b64decode(settings.master_key.get_secret_value())
    else:
        path = settings.data_dir / "master.key"
        if not path.exists():
            return None
        key = base64.b64decode(path.read_text().strip())
    return hashlib.sha256(b"pulih-master-key-fingerprint:" + key).hexdigest()[:32]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


# --- the stream -------------------------------------------------------------------------------


async def _connect(settings: Settings, url: str) -> NatsClient:
    return await nats.connect(
        nats_servers(url), connect_timeout=3, max_reconnect_attempts=2, tls=nats_tls(settings)
    )


async def snapshot_stream(nc: NatsClient, stream: str, dest: Path) -> dict[str, Any]:
    """Write JetStream's snapshot of ``stream`` (with its consumers) to ``dest``; return the
    server's answer: the stream's ``config`` and its ``state`` at the snapshot."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    try:
        request = {"deliver_subject": inbox, "chunk_size": CHUNK_SIZE, "jsck": True}
        reply = await nc.request(
            f"$JS.API.STREAM.SNAPSHOT.{stream}", json.dumps(request).encode(), timeout=30
        )
        answer: dict[str, Any] = json.loads(reply.data)
        if "error" in answer:
            raise BackupError(
                f"the server refused a snapshot of {stream}: {answer['error'].get('description')}"
            )
        with dest.open("wb") as out:
            while True:
                msg = await sub.next_msg(timeout=30)
                status = (msg.headers or {}).get("Status")
                if status and status != "204" and not msg.data:
                    raise BackupError(f"the snapshot of {stream} broke off ({status}): try again")
                if not msg.data:
                    break  # the end
                out.write(msg.data)
                if msg.reply:
                    await nc.publish(msg.reply, b"")  # the server's flow control
        return answer
    finally:
        await sub.unsubscribe()


async def restore_stream(
    nc: NatsClient, stream: str, snapshot: Path, answer: dict[str, Any]
) -> dict[str, Any]:
    """Restore ``stream`` from a snapshot file into the server of ``nc``; it must not exist there."""
    request = {"config": answer["config"], "state": answer["state"]}
    reply = await nc.request(f"$JS.API.STREAM.RESTORE.{stream}", json.dumps(request).encode(), timeout=30)
    started: dict[str, Any] = json.loads(reply.data)
    if "error" in started:
        raise BackupError(f"the server refused to restore {stream}: {started['error'].get('description')}")
    deliver = started["deliver_subject"]
    with snapshot.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            ack = await nc.request(deliver, chunk, timeout=30)
            if ack.data:
                failed = json.loads(ack.data)
                if "error" in failed:
                    raise BackupError(f"restoring {stream} failed: {failed['error'].get('description')}")
    done = json.loads((await nc.request(deliver, b"", timeout=120)).data)
    if "error" in done:
        raise BackupError(f"restoring {stream} failed: {done['error'].get('description')}")
    return dict(done)


async def event_ids(nc: NatsClient, regency: str, first: int, last: int) -> dict[int, str]:
    """``Nats-Msg-Id`` by stream sequence of the events ``first..last`` (inclusive)."""
    if last < first:
        return {}
    js = nc.jetstream()
    sub = await js.subscribe(
        regency_subjects(regency),
        stream=stream_name(regency),
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first),
        headers_only=True,
    )
    found: dict[int, str] = {}
    try:
        while True:
            msg = await sub.next_msg(timeout=10)
            seq = msg.metadata.sequence.stream
            if seq > last:
                break
            msg_id = (msg.headers or {}).get("Nats-Msg-Id")
            if msg_id:
                found[seq] = msg_id
            if seq == last:
                break
    finally:
        await sub.unsubscribe()
    return found


# --- the stores -------------------------------------------------------------------------------


COPY_ORDER = ("reporting", "referral", "rehab", "outreach")
"""The order the stores are pinned or dumped in: a consumer before the services it hears from
where the services allow (reporting only listens; the others answer one another), so that a
store copied later cannot lack an event a store copied earlier has already applied."""


def pin_sqlite(sources: Iterable[Path]) -> list[sqlite3.Connection]:
    """A read transaction on each live SQLite store, opened one right after the other.

    In WAL mode a read transaction sees the database as it was when it began, whatever is
    committed afterwards, and SQLite's backup API copies through it (:func:`copy_pinned`): the
    stores are copied as they were within a fraction of a millisecond of one another, not one
    after the other over the seconds the copies take (a consumer copied last would hold the
    effects of events that a producer copied first had not yet recorded)."""
    pinned: list[sqlite3.Connection] = []
    try:
        for source in sources:
            connection = sqlite3.connect(  # copied later, from another worker thread
                f"file:{source}?mode=ro", uri=True, timeout=30, isolation_level=None, check_same_thread=False
            )
            pinned.append(connection)
            connection.execute("BEGIN")
            connection.execute("SELECT count(*) FROM sqlite_schema").fetchone()  # the snapshot starts
    except BaseException:
        for connection in pinned:
            connection.close()
        raise
    return pinned


def copy_pinned(source: sqlite3.Connection, dest: Path) -> None:
    """Copy a store pinned by :func:`pin_sqlite` into ``dest`` (in one step: a copy made in
    several would start again whenever the live store is written) and release it."""
    try:
        out = sqlite3.connect(dest)
        try:
            source.backup(out)
        finally:
            out.close()
    finally:
        source.close()


def copy_sqlite(source: Path, dest: Path) -> None:
    """A consistent copy of a live SQLite database, through its online backup API."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out, pages=1024)
        finally:
            out.close()
    finally:
        src.close()


def _libpq(url: str) -> tuple[str, str | None]:
    """A libpq URL for the pg_* tools, and the schema of ``?search_path=`` (None: the database).

    asyncpg's ``ssl=`` becomes libpq's ``sslmode=``; ``search_path`` is not a libpq parameter.
    """
    parsed = make_url(url).set(drivername="postgresql")
    schema = parsed.query.get("search_path")
    ssl = parsed.query.get("ssl")
    parsed = parsed.difference_update_query(["search_path", "ssl"])
    if isinstance(ssl, str) and "sslmode" not in parsed.query:
        parsed = parsed.update_query_dict({"sslmode": ssl})
    return parsed.render_as_string(hide_password=False), str(schema) if schema else None


def _quoted(name: str) -> str:
    """``name`` as a quoted SQL identifier: exactly that name, never a pattern or folded."""
    return '"' + name.replace('"', '""') + '"'


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: a store on PostgreSQL is backed up with pg_dump and restored "
            "with pg_restore (Debian/Ubuntu: apt-get install postgresql-client, of the server's "
            "major version or newer)"
        )
    return found


def dump_postgres(url: str, dest: Path) -> None:
    """``pg_dump --format=custom`` of a service's database (or its schema)."""
    dsn, schema = _libpq(url)
    # --schema takes a pattern: quoted, it names exactly the schema (case kept, no wildcards).
    only = ["--schema", _quoted(schema)] if schema else []
    done = subprocess.run(
        [_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(dest), *only, dsn],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")


_CREATE_SCHEMA = re.compile(r"^CREATE SCHEMA (.+);$")


def _into_schema(script: Iterable[str], target: str) -> Iterable[str]:
    """The SQL script of a one-schema dump, its schema renamed ``target``.

    pg_dump qualifies every name with its schema (``src.table``, ``'src.seq'::regclass``), so a
    dump restores into the schema it was taken from; restoring into another one (a service whose
    ``search_path`` names a new schema) renames the qualifier in the statements, never in the
    rows (the ``COPY ... FROM stdin`` data, up to its ``\\.``, passes untouched).
    """
    into = _quoted(target)
    qualifier: re.Pattern[str] | None = None
    in_data = False
    for line in script:
        if in_data:
            if line.rstrip("\n") == "\\.":
                in_data = False
            yield line
            continue
        created = _CREATE_SCHEMA.match(line.rstrip("\n"))
        if created and qualifier is None:
            source = re.escape(created.group(1))
            qualifier = re.compile(rf'(?<![\w"$])(?:{source}\.|(?<=SCHEMA ){source}(?=[;\s]))')
            yield f"CREATE SCHEMA IF NOT EXISTS {into};\n"
            continue
        if qualifier is not None:
            line = qualifier.sub(lambda m: into + ("." if m.group(0).endswith(".") else ""), line)
        if line.startswith("COPY ") and line.rstrip("\n").endswith("FROM stdin;"):
            in_data = True
        yield line


def restore_postgres(url: str, dump: Path) -> None:
    """Restore a ``dump_postgres`` dump into a database (or schema) that holds no tables yet.

    Into a schema (``?search_path=``), the dump's own schema is renamed to it (see
    ``_into_schema``) and the script runs through ``psql`` in one transaction; into a database,
    ``pg_restore`` restores it as it was.
    """
    dsn, schema = _libpq(url)
    if schema is None:
        done = subprocess.run(
            [
                _pg_tool("pg_restore"),
                "--no-owner",
                "--exit-on-error",
                "--single-transaction",
                "--dbname",
                dsn,
                str(dump),
            ],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
        return
    scripted = subprocess.run(
        [_pg_tool("pg_restore"), "--no-owner", "--file", "-", str(dump)], capture_output=True
    )
    if scripted.returncode != 0:
        raise BackupError(f"pg_restore failed to read {dump.name}: {scripted.stderr.decode().strip()}")
    # Bytes split on "\n" only: a row may hold characters str.splitlines would break a line at.
    text = scripted.stdout.decode("utf-8", "surrogateescape")
    lines = [line + "\n" for line in text.split("\n")]
    lines[-1] = lines[-1][:-1]
    if not any(_CREATE_SCHEMA.match(line.rstrip("\n")) for line in lines):
        raise BackupError(
            f"{dump.name} is a dump of a whole database: restore it into a database, not a schema"
        )
    with tempfile.TemporaryDirectory(prefix="pulih-restore-") as tmp:
        script = Path(tmp) / f"{dump.stem}.sql"
        with script.open("w", encoding="utf-8", errors="surrogateescape", newline="") as out:
            out.writelines(_into_schema(lines, schema))
        done = subprocess.run(
            [
                _pg_tool("psql"),
                "--no-psqlrc",
                "--quiet",
                "--set",
                "ON_ERROR_STOP=1",
                "--single-transaction",
                "--file",
                str(script),
                dsn,
            ],
            capture_output=True,
            text=True,
        )
    if done.returncode != 0:
        raise BackupError(f"restoring {dump.name} into schema {schema} failed: {done.stderr.strip()}")


async def _postgres_is_empty(url: str) -> bool:
    from sqlalchemy import text

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()")
            )
        return int(tables or 0) == 0
    finally:
        await db.dispose()


async def fix_outbox(url: str, *, unsent: Iterable[str], sent: Iterable[str]) -> tuple[int, int]:
    """Mark the rows of ``unsent`` event ids unsent and those of ``sent`` sent (see the module's
    docstring); return how many rows changed each way."""
    unsent_ids = [UUID(i) for i in unsent]
    sent_ids = [UUID(i) for i in sent]
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            has_outbox = await conn.run_sync(lambda c: inspect(c).has_table(outbox_table.name))
        if not has_outbox:  # a store its service never migrated: nothing was ever sent from it
            return 0, 0
        async with db.transaction() as session:
            reopened = closed = 0
            for start in range(0, len(unsent_ids), 500):
                result = await session.execute(
                    update(outbox_table)
                    .where(outbox_table.c.event_id.in_(unsent_ids[start : start + 500]))
                    .where(outbox_table.c.published_at.is_not(None))
                    .values(published_at=None)
                )
                reopened += result.rowcount  # type: ignore[attr-defined]
            for start in range(0, len(sent_ids), 500):
                result = await session.execute(
                    update(outbox_table)
                    .where(outbox_table.c.event_id.in_(sent_ids[start : start + 500]))
                    .where(outbox_table.c.published_at.is_(None))
                    .values(published_at=datetime.now(UTC))
                )
                closed += result.rowcount  # type: ignore[attr-defined]
        return reopened, closed
    finally:
        await db.dispose()


# --- backup and restore -----------------------------------------------------------------------


async def take_backup(settings: Settings, dest: Path, *, nats_url: str) -> dict[str, Any]:
    """Back the running regency up into ``dest`` (a new or empty directory); return the manifest."""
    stores = service_stores(settings)
    _prepare_backup_dir(settings, dest, stores)
    stream = stream_name(settings.regency)
    started = datetime.now(UTC)
    try:
        nc = await _connect(settings, nats_url)
    except (OSError, nats.errors.Error) as exc:
        raise BackupError(f"cannot reach NATS at {nats_url} ({exc}): is the regency running?") from exc
    try:
        answer = await snapshot_stream(nc, stream, dest / SNAPSHOT)
        last_seq = int(answer["state"]["last_seq"])
        ordered = sorted(stores, key=_copy_rank)
        on_sqlite = [store for store in ordered if store.is_sqlite]
        pinned = await asyncio.to_thread(pin_sqlite, [store.sqlite_path for store in on_sqlite])
        try:
            for store in on_sqlite:
                await asyncio.to_thread(copy_pinned, pinned.pop(0), dest / store.file_name)
        finally:
            for connection in pinned:
                connection.close()
        for store in ordered:  # each dump is consistent in itself; they follow one another
            if not store.is_sqlite:
                await asyncio.to_thread(dump_postgres, store.url, dest / store.file_name)
        now_last = (await nc.jetstream().stream_info(stream)).state.last_seq
        ids = await event_ids(nc, settings.regency, max(1, last_seq - TAIL_BEFORE_SNAPSHOT + 1), now_last)
    finally:
        await nc.close()
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "taken_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "regency": settings.regency,
        "services": {
            s.service: {"store": "sqlite" if s.is_sqlite else "postgresql", "file": s.file_name}
            for s in stores
        },
        "stream": {
            "name": stream,
            "file": SNAPSHOT,
            "last_seq": last_seq,
            "messages": int(answer["state"]["messages"]),
            "config": answer["config"],
            "state": answer["state"],
        },
        "events_before_snapshot": [i for seq, i in sorted(ids.items()) if seq <= last_seq],
        "events_after_snapshot": [i for seq, i in sorted(ids.items()) if seq > last_seq],
        "master_key_fingerprint": master_key_fingerprint(settings),
        "files": {},
    }
    _write_manifest(dest, manifest)
    return manifest


def _copy_rank(store: ServiceStore) -> int:
    return COPY_ORDER.index(store.service) if store.service in COPY_ORDER else len(COPY_ORDER)


def _prepare_backup_dir(settings: Settings, dest: Path, stores: list[ServiceStore]) -> None:
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: back up into a new directory")
    missing = [s.service for s in stores if s.is_sqlite and not s.sqlite_path.exists()]
    if missing:
        raise BackupError(
            f"no store for {', '.join(missing)} under {settings.data_dir.resolve()}: "
            "is this the regency's data dir (PULIH_DATA_DIR, --data-dir)?"
        )
    dest.mkdir(parents=True, exist_ok=True)


def _write_manifest(dest: Path, manifest: dict[str, Any]) -> None:
    manifest["files"] = {p.name: _sha256(p) for p in sorted(dest.iterdir())}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(src: Path) -> dict[str, Any]:
    """The manifest of the backup in ``src``, after checking every file against its checksum."""
    path = src / MANIFEST
    if not path.exists():
        raise BackupError(f"{src} holds no {MANIFEST}: not a Pulih backup")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(
            f"backup format {manifest.get('format')} is not one this version restores ({FORMAT})"
        )
    for name, digest in manifest["files"].items():
        file = src / name
        if not file.exists():
            raise BackupError(f"{name} is missing from the backup")
        if _sha256(file) != digest:
            raise BackupError(f"{name} does not match its checksum: the backup is damaged")
    return manifest


async def restore_backup(settings: Settings, src: Path, *, nats_url: str | None) -> dict[str, Any]:
    """Restore the backup in ``src`` into the (empty) data dir of ``settings``; return its manifest.

    ``nats_url`` None: the stream goes into the store of ``pulih up``'s embedded server, through a
    server started on it for the purpose.
    """
    manifest = read_manifest(src)
    if manifest["regency"] != settings.regency:
        raise BackupError(
            f"the backup is of regency {manifest['regency']}, not {settings.regency} (set PULIH_REGENCY)"
        )
    data_dir = settings.data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty: restore into a new or empty data dir")
    stores = {s.service: s for s in service_stores(settings)}
    unknown = sorted(set(manifest["services"]) - set(stores))
    if unknown:
        raise BackupError(f"the backup holds {', '.join(unknown)}, which is not installed here")
    for service in manifest["services"]:
        store = stores[service]
        if not store.is_sqlite and not await _postgres_is_empty(store.url):
            raise BackupError(f"{service}'s database already holds tables: restore into an empty one")

    data_dir.mkdir(parents=True, exist_ok=True)
    for service, entry in manifest["services"].items():
        store = stores[service]
        copy = src / entry["file"]
        if store.is_sqlite != (entry["store"] == "sqlite"):
            raise BackupError(f"{service} was backed up from {entry['store']}: restore it into the same kind")
        if store.is_sqlite:
            store.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(copy_sqlite, copy, store.sqlite_path)
        else:
            await asyncio.to_thread(restore_postgres, store.url, copy)
        await fix_outbox(
            store.url, unsent=manifest["events_after_snapshot"], sent=manifest["events_before_snapshot"]
        )

    stream = manifest["stream"]
    server: NatsServer | None = None
    if nats_url is None:
        server = NatsServer(
            data_dir / "nats",
            free_port(),
            server_name=f"pulih-{settings.regency}",
            domain=f"r{settings.regency}",
        ).start()
        nats_url = server.url
    try:
        nc = await _connect(settings, nats_url)
        try:
            await restore_stream(nc, stream["name"], src / stream["file"], stream)
        finally:
            await nc.close()
    finally:
        if server is not None:
            server.stop()
    return manifest


def key_advice(settings: Settings, manifest: dict[str, Any]) -> str:
    """What to say about the master key after a restore."""
    wanted = manifest.get("master_key_fingerprint")
    if wanted is None:
        return "the regency had no master key yet when it was backed up."
    have = master_key_fingerprint(settings)
    if have == wanted:
        return "the master key in use matches the backup's: identities are readable."
    if have is None:
        return (
            f"the identities need the master key of the backup (fingerprint {wanted}). Before "
            f"`pulih up`, set PULIH_MASTER_KEY from your secret store, or (development) put the key "
            f"file at {settings.data_dir.resolve() / 'master.key'}: without it `pulih up` makes a new "
            "key and the restored identities stay unreadable."
        )
    return (
        f"WARNING: the master key in use (fingerprint {have}) is not the backup's ({wanted}): "
        "the restored identities cannot be read with it."
    )


def run_backup(settings: Settings, dest: Path, *, nats_port: int) -> int:
    """``pulih backup DEST``: print what was saved; return the exit code."""
    try:
        manifest = asyncio.run(take_backup(settings, dest, nats_url=regency_nats_url(settings, nats_port)))
    except BackupError as exc:
        print(f"pulih backup: {exc}", file=sys.stderr)
        return 1
    stream = manifest["stream"]
    print(f"backed up regency {manifest['regency']} into {dest}:")
    for service, entry in manifest["services"].items():
        print(f"  {service:<10} {entry['store']:<10} {entry['file']}")
    print(f"  stream     {stream['name']}: {stream['messages']} events, last sequence {stream['last_seq']}")
    print(
        "The master key is NOT in the backup. Keep it apart (a secret store, a sealed envelope): "
        "a backup without its key is unreadable, and a lost key is lost data."
    )
    return 0


def run_restore(settings: Settings, src: Path) -> int:
    """``pulih restore SRC``: print what was restored; return the exit code."""
    try:
        manifest = asyncio.run(restore_backup(settings, src, nats_url=os.environ.get("NATS_URL")))
    except BackupError as exc:
        print(f"pulih restore: {exc}", file=sys.stderr)
        return 1
    print(
        f"restored regency {manifest['regency']} as of {manifest['taken_at']} into "
        f"{settings.data_dir.resolve()}: {', '.join(manifest['services'])} and stream "
        f"{manifest['stream']['name']} (last sequence {manifest['stream']['last_seq']})."
    )
    print(key_advice(settings, manifest))
    print("Start it with `pulih up`.")
    return 0


COMMANDS = ("backup", "restore")
"""The ``pulih`` subcommands this module adds."""


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``pulih backup DEST`` and ``pulih restore SRC`` to the ``pulih`` command line."""
    backup = sub.add_parser("backup", help="back the running regency up: every store and the stream")
    backup.add_argument("dest", type=Path, help="a new or empty directory")
    restore = sub.add_parser("restore", help="restore a backup into an empty data dir (then `pulih up`)")
    restore.add_argument("src", type=Path, help="a directory `pulih backup` wrote")
    for parser in (backup, restore):
        parser.add_argument("--regency", help="Kemendagri regency code without dots (default PULIH_REGENCY)")
        parser.add_argument("--data-dir", help="the regency's data dir (default .pulih or PULIH_DATA_DIR)")
    backup.add_argument("--nats-port", type=int, default=None, help="the embedded NATS port of `pulih up`")


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``pulih backup`` or ``pulih restore``; return the exit code."""
    if args.command == "backup":
        return run_backup(settings, args.dest, nats_port=args.nats_port or default_nats_port())
    return run_restore(settings, args.src)
