"""One trace from the HTTP request through the outbox to the message in JetStream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from outreach_factories import Outreach
from system_support import running, stream_messages

from pulih.kit.nats_server import NatsServer
from pulih.kit.testing import eventually, make_settings
from pulih.outreach.app import build

pytestmark = pytest.mark.system


async def test_the_published_event_continues_the_trace_of_the_request(
    tmp_path: Path, nats_server: NatsServer
) -> None:
    app = build(
        make_settings(tmp_path, nats_url=nats_server.url, database_url=f"sqlite+aiosqlite:///{tmp_path}/o.db")
    )
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    spans = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    async with running(app) as http:
        await Outreach(http, app).unit()
        messages = await eventually(
            lambda: stream_messages(nats_server.url, "ibm.3301.outreach.unit_established"),
            until=lambda m: len(m) == 1,
        )
    request_spans = [s for s in spans.get_finished_spans() if s.name.startswith("POST /v1/units")]
    assert request_spans, [s.name for s in spans.get_finished_spans()]
    request_trace = format(request_spans[0].context.trace_id, "032x")
    headers = messages[0].headers or {}
    assert headers["traceparent"].split("-")[1] == request_trace
    assert headers["traceparent"] == json.loads(messages[0].data)["traceparent"], (
        "the header repeats the body"
    )
    publish_spans = [s for s in spans.get_finished_spans() if "unit_established" in s.name]
    assert publish_spans and all(format(s.context.trace_id, "032x") == request_trace for s in publish_spans)
    relay_spans = [
        s for s in publish_spans if s.instrumentation_scope and s.instrumentation_scope.name == "pulih.outbox"
    ]
    assert [s.name for s in relay_spans] == ["ibm.3301.outreach.unit_established publish"]
    spans.shutdown()
