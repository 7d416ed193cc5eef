"""``NATS_URL`` may name several servers, comma-separated (a 3-node hub's nodes): the services'
broker and the command-line tools take the list, and reach whichever node answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulih.kit.messaging import make_broker, nats_servers, without_password
from pulih.kit.nats_server import NatsServer, free_port
from pulih.kit.tail import connect_once


def test_a_comma_separated_url_is_a_list_of_servers_and_one_url_a_list_of_one() -> None:
    assert nats_servers("nats://a:1") == ["nats://a:1"]
    assert nats_servers("nats://u:p@hub-1:4222, nats://u:p@hub-2:4222,nats://u:p@hub-3:4222") == [
        "nats://u:p@hub-1:4222",
        "nats://u:p@hub-2:4222",
        "nats://u:p@hub-3:4222",
    ]
    with pytest.raises(ValueError):
        nats_servers(" , ")
    assert without_password("nats://u:secret@hub-1:4222,nats://u:secret@hub-2:4222") == (
        "nats://u:***@hub-1:4222,nats://u:***@hub-2:4222"
    )


async def test_the_broker_and_the_tools_reach_a_live_server_after_a_dead_one(tmp_path: Path) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    with NatsServer(tmp_path / "nats") as server:
        url = f"{dead},{server.url}"
        broker = make_broker(url, name="pulih-test-servers")
        await broker.start()
        try:
            assert broker.connection.is_connected
            assert broker.connection.connected_url is not None
            assert broker.connection.connected_url.port == server.port
        finally:
            await broker.stop()
        tool = await connect_once(url)  # pulih events tail
        try:
            assert tool.is_connected
        finally:
            await tool.close()
