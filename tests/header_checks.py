"""What a stored message's NATS headers say against its CloudEvent body (EVENTS.md: headers
repeat the envelope and never contradict it)."""

from __future__ import annotations

import json

from nats.aio.msg import Msg


def contradictions(msg: Msg) -> list[str]:
    """Each header of ``msg`` that disagrees with its body, as ``header: header-value != body-value``.

    ``Nats-Msg-Id`` must be the ``id`` and ``traceparent`` the envelope's (present in both or in
    neither); a ``correlation_id`` header, which FastStream adds unless told, may be absent but
    must otherwise be the ``correlationid``. Every event must name its chain.
    """
    body = json.loads(msg.data)
    headers = msg.headers or {}
    found = []
    if headers.get("Nats-Msg-Id") != body.get("id"):
        found.append(f"Nats-Msg-Id: {headers.get('Nats-Msg-Id')} != {body.get('id')}")
    if headers.get("traceparent") != body.get("traceparent"):
        found.append(f"traceparent: {headers.get('traceparent')} != {body.get('traceparent')}")
    if "correlation_id" in headers and headers["correlation_id"] != body.get("correlationid"):
        found.append(f"correlation_id: {headers['correlation_id']} != {body.get('correlationid')}")
    if not body.get("correlationid"):
        found.append(f"{body.get('type')} has no correlationid")
    return found
