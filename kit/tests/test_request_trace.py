"""A request's trace when no span is collected: the caller's trace goes on, or a new one starts,
and the request has a span id of its own (tests/test_trace_continuity.py has the collected case)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from pulih.kit.emitter import current_traceparent
from pulih.kit.outbox import spans_are_collected
from pulih.kit.request_trace import SpansWhenCollected, request_span_context, spans_only_when_collected
from pulih.kit.telemetry import instrument_app

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_a_valid_traceparent_is_continued_with_a_span_id_of_its_own() -> None:
    context = request_span_context([(b"traceparent", CALLER.encode())])
    assert format(context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert context.span_id != 0xB7AD6B7169203331 and context.is_valid
    assert context.trace_flags.sampled


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"traceparent", b"garbage")],
        [(b"traceparent", b"00-00000000000000000000000000000000-b7ad6b7169203331-01")],
        [(b"traceparent", b"00-0af7651916cd43dd8448eb211c80319c-zzzzzzzzzzzzzzzz-01")],
    ],
)
def test_without_a_valid_traceparent_a_new_sampled_trace_starts(headers: list[tuple[bytes, bytes]]) -> None:
    first, second = request_span_context(headers), request_span_context(headers)
    assert first.is_valid and first.trace_flags.sampled
    assert first.trace_id != second.trace_id


async def test_the_app_runs_in_the_callers_trace_without_building_a_span() -> None:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    if spans_are_collected():
        pytest.skip("an earlier test left a span processor on the tracer provider")
    app = FastAPI()

    @app.get("/v1/here")
    async def here() -> dict[str, str | bool | None]:
        span = trace.get_current_span()
        return {"traceparent": current_traceparent(), "recording": span.is_recording()}

    instrument_app(app)
    spans_only_when_collected(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        answer = (await http.get("/v1/here", headers={"traceparent": CALLER})).json()
        fresh = (await http.get("/v1/here")).json()
    assert isinstance(app.middleware_stack.app, SpansWhenCollected)  # type: ignore[union-attr]
    assert answer["recording"] is False
    version, trace_id, span_id, flags = answer["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", "0af7651916cd43dd8448eb211c80319c", "01")
    assert span_id != "b7ad6b7169203331"
    assert fresh["traceparent"] and fresh["traceparent"].split("-")[1] != trace_id
