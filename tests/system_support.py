"""Helpers for system tests: a running service against real NATS, and reading the stream back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from nats.js.errors import NotFoundError

from pulih.contracts import stream_name
from pulih.kit.testing import REGENCY, serve

SCHEMAS = Path(__file__).resolve().parents[1] / "contracts" / "schemas"


running = serve
"""Run an app's lifespan (store, broker, relay, consumers) and talk to its API."""


async def stream_messages(nats_url: str, subject: str, regency: str = REGENCY) -> list[Msg]:
    """Every message stored in the regency's stream on ``subject`` (wildcards allowed), in order."""
    nc = await nats.connect(nats_url, connect_timeout=2)
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(stream_name(regency), subjects_filter=subject)
        except NotFoundError:
            return []
        expected = sum((info.state.subjects or {}).values())
        if expected == 0:
            return []
        sub = await js.subscribe(
            subject,
            stream=stream_name(regency),
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL,
        )
        messages = []
        while len(messages) < expected:
            messages.append(await sub.next_msg(timeout=5))
        await sub.unsubscribe()
        return messages
    finally:
        await nc.close()


def schema_for(event_name: str) -> dict[str, Any]:
    """The checked-in JSON Schema of an event, as a clinic would load it."""
    return dict(json.loads((SCHEMAS / f"{event_name}.v1.json").read_text()))


def free_regency_env(data_dir: Path, **extra: str) -> tuple[int, dict[str, int], dict[str, str]]:
    """What ``pulih up`` needs to run a regency in ``data_dir`` beside any other: a free NATS
    port, a free port per installed service, and the environment naming them (no inherited
    NATS_URL or DATABASE_URL; this Python's scripts first on PATH). Returns (nats port, ports,
    env)."""
    import os
    import sys

    from pulih.kit.local_regency import installed_services
    from pulih.kit.nats_server import free_port

    nats_port = free_port()
    ports = {service.name: free_port() for service in installed_services()}
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")},
        "PULIH_DATA_DIR": str(data_dir),
        "PULIH_NATS_PORT": str(nats_port),
        **{f"PULIH_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra,
    }
    return nats_port, ports, env
