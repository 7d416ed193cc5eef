"""A request's trace without the cost of a span nobody collects.

OpenTelemetry's ASGI middleware builds a full span for every request (attributes, status, the
route found again, the duration metric) and, with no span processor on the tracer provider (no
``OTEL_TRACES_EXPORTER``, the default), drops it at the end: some 7% of a command's CPU on a
regency box. :func:`spans_only_when_collected` keeps that middleware for when spans go somewhere
(an exporter, a test's in-memory processor, added even after the app was built: it is asked on
every request), and otherwise runs the app in a trace context of its own, as cheap as a dict:

- the request continues the caller's trace (a W3C ``traceparent`` header), or starts one;
- it gets a span id of its own, so log lines carry ``trace_id`` and ``span_id`` as before, and
  the events it emits carry its ``traceparent`` on to the consumers (with the caller's sampled
  flag, or sampled for a new trace, as the SDK's default sampler would have decided).
"""

from __future__ import annotations

import random
from typing import Any

from fastapi import FastAPI
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from pulih.kit.outbox import spans_are_collected

_SAMPLED = trace.TraceFlags(trace.TraceFlags.SAMPLED)
_EMPTY = otel_context.Context()


def _random_id(bits: int) -> int:
    while True:
        value = random.getrandbits(bits)
        if value:
            return value


def request_span_context(headers: list[tuple[bytes, bytes]]) -> trace.SpanContext:
    """The span context of a request with ``headers`` (ASGI's): the caller's trace, if its
    ``traceparent`` is a valid version 00 one, else a new trace; a new span id either way."""
    for name, value in headers:
        if name == b"traceparent":
            parts = value.decode("latin-1").strip().split("-")
            if len(parts) == 4 and parts[0] == "00" and [len(p) for p in parts[1:]] == [32, 16, 2]:
                try:
                    trace_id, parent_id, flags = (int(part, 16) for part in parts[1:])
                except ValueError:
                    break
                if trace_id and parent_id:
                    return trace.SpanContext(trace_id, _random_id(64), False, trace.TraceFlags(flags))
            break
    return trace.SpanContext(_random_id(128), _random_id(64), False, _SAMPLED)


class SpansWhenCollected:
    """Runs OpenTelemetry's middleware when spans are collected, else the app it wraps in a
    trace context of its own (see the module's docstring)."""

    def __init__(self, app: OpenTelemetryMiddleware) -> None:
        self.app = app  # FastAPI looks for OpenTelemetry's middleware along the ``app`` chain
        self.inner: ASGIApp = app.app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or spans_are_collected():
            await self.app(scope, receive, send)
            return
        span = trace.NonRecordingSpan(request_span_context(scope.get("headers", [])))
        token = otel_context.attach(trace.set_span_in_context(span, _EMPTY))
        try:
            await self.inner(scope, receive, send)
        finally:
            otel_context.detach(token)


def spans_only_when_collected(app: FastAPI) -> None:
    """Have ``app``'s OpenTelemetry middleware (installed by FastAPI's instrumentation) run only
    when spans are collected. Without that middleware in the stack, nothing changes."""
    build = app.build_middleware_stack

    def build_middleware_stack() -> ASGIApp:
        stack = build()
        outer: Any = stack
        while outer is not None:
            inner = getattr(outer, "app", None)
            if isinstance(inner, OpenTelemetryMiddleware):
                outer.app = SpansWhenCollected(inner)
                break
            outer = inner
        return stack

    app.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
