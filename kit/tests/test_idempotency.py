"""ARCHITECTURE.md invariant 6, idempotent commands: the kit's key store on its own.

A retry with the same key and request finds the first answer; the same key for a different
request is a 409; keys belong to their caller; a malformed key is a 422 naming the header.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pulih.kit import idempotency
from pulih.kit.database import Database, kit_metadata
from pulih.kit.errors import Conflict, Invalid

PRINCIPAL = "agent:5f0c"


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    async with database.engine.begin() as conn:
        await conn.run_sync(kit_metadata.create_all)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.parametrize(
    "key",
    ["", "   ", "x" * (idempotency.MAX_KEY_LENGTH + 1), "abc\ndef", "tab\there", "\x00"],
    ids=["empty", "blank", "too-long", "newline", "tab", "nul"],
)
def test_a_malformed_key_is_refused_with_422_naming_the_header(key: str) -> None:
    with pytest.raises(Invalid) as refused:
        idempotency.check_key(key)
    assert refused.value.status == 422
    assert (refused.value.code, refused.value.field) == ("invalid_idempotency_key", "Idempotency-Key")


@pytest.mark.parametrize("key", ["a", "x" * idempotency.MAX_KEY_LENGTH, "retry 7f3e-01 ✓"])
def test_a_well_formed_key_is_taken_as_it_is(key: str) -> None:
    assert idempotency.check_key(f" {key} ") == key


def test_the_fingerprint_tells_requests_apart_and_a_retry_from_nothing() -> None:
    h = idempotency.request_hash
    first = h("POST", "/v1/clients", b'{"a":1}')
    assert h("POST", "/v1/clients", b'{"a":1}') == first
    assert len({first, h("PUT", "/v1/clients", b'{"a":1}'), h("POST", "/v1/units", b'{"a":1}')}) == 3
    assert h("POST", "/v1/clients", b'{"a":2}') != first
    # the parts are separated: moving bytes from one part to the next changes the fingerprint
    assert h("POST", "/v1/a", b"b") != h("POST", "/v1/", b"ab")


async def test_a_retry_finds_the_first_answer_and_another_request_with_the_key_is_409(
    database: Database,
) -> None:
    fingerprint = idempotency.request_hash("POST", "/v1/clients", b"{}")
    answer = idempotency.StoredAnswer(201, {"client_id": "c1"})
    async with database.transaction() as session:
        assert await idempotency.find_answer(session, PRINCIPAL, "k1", fingerprint) is None
        await idempotency.store_answer(session, PRINCIPAL, "k1", fingerprint, answer)
    async with database.sessions() as session:
        assert await idempotency.find_answer(session, PRINCIPAL, "k1", fingerprint) == answer
        assert await idempotency.find_answer(session, PRINCIPAL, "k2", fingerprint) is None
        assert await idempotency.find_answer(session, "agent:other", "k1", fingerprint) is None
        with pytest.raises(Conflict) as refused:
            await idempotency.find_answer(
                session, PRINCIPAL, "k1", idempotency.request_hash("POST", "/x", b"")
            )
    assert refused.value.status == 409
    assert (refused.value.code, refused.value.field) == ("idempotency_key_reused", "Idempotency-Key")


async def test_an_answer_is_stored_only_if_its_transaction_commits(database: Database) -> None:
    fingerprint = idempotency.request_hash("POST", "/v1/clients", b"{}")
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await idempotency.store_answer(
                session, PRINCIPAL, "k1", fingerprint, idempotency.StoredAnswer(201, {"x": 1})
            )
            raise RuntimeError("the command failed")
    async with database.sessions() as session:
        assert await idempotency.find_answer(session, PRINCIPAL, "k1", fingerprint) is None
