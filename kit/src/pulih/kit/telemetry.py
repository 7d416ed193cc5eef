"""Traces and logs that carry regency and service.

One trace crosses HTTP → outbox → NATS → consumer: FastAPI's instrumentation opens the request
span, the outbox row keeps its ``traceparent``, the relay re-attaches it, and FastStream's
telemetry middleware carries it in message headers to the consumer's span.

Where spans go follows the OpenTelemetry SDK's environment variables:

- ``OTEL_TRACES_EXPORTER``: a comma-separated list of ``otlp``, ``console`` and ``none``. Unset,
  it is ``otlp`` when an OTLP endpoint is given (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) and ``none`` otherwise: the specification's default
  (``otlp`` to ``localhost:4318``) would fill a development machine's logs with refused exports.
  ``PULIH_TRACE_CONSOLE=1`` adds ``console``.
- ``OTEL_EXPORTER_OTLP_PROTOCOL`` (or ``…_TRACES_PROTOCOL``): ``http/protobuf`` (the default) or
  ``grpc``. The exporters themselves read the endpoint, headers, timeout, compression and
  certificate variables; the batch processor reads ``OTEL_BSP_*``.
- ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the resource (default service name
  ``pulih-<service>``, with ``pulih.regency``); ``OTEL_SDK_DISABLED=true`` installs no SDK.

An exporter is imported only when chosen, so a service that exports nothing loads no protobuf.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from pulih.kit import logs

log = logging.getLogger("pulih.telemetry")

_exporting = False

UNTRACED_PATHS = "healthz,readyz,metrics"
"""Paths that open no span: probes and scrapes, every few seconds, say nothing about a request."""


def setup_logging(service: str, regency: str) -> None:
    """Log lines with regency, service and trace ids (never an identity): see :mod:`pulih.kit.logs`."""
    logs.configure(service, regency)


def exporting() -> bool:
    """Whether this process exports its spans (an exporter was chosen): where it does, each event
    a consumer applies is a span of the event's trace; where not, that span would cost for nothing."""
    return _exporting


def chosen_exporters() -> list[str]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names (see the module's docstring)."""
    named = os.environ.get("OTEL_TRACES_EXPORTER")
    if named is None:
        endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        named = "otlp" if endpoint else "none"
    chosen = [name.strip().lower() for name in named.split(",") if name.strip()]
    if os.environ.get("PULIH_TRACE_CONSOLE") == "1" and "console" not in chosen:
        chosen.append("console")
    return [name for name in chosen if name != "none"]


def otlp_exporter() -> SpanExporter:
    """The OTLP span exporter of ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL``; it reads its endpoint
    and the rest of its settings from the environment itself."""
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

        return Http()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported: use http/protobuf or grpc")


def _exporter(name: str) -> SpanExporter | None:
    if name == "otlp":
        try:
            return otlp_exporter()
        except ValueError as exc:
            log.error("no OTLP exporter: %s", exc)
            return None
    if name == "console":
        return ConsoleSpanExporter()
    log.error("OTEL_TRACES_EXPORTER names %r, which Pulih does not know (otlp, console, none)", name)
    return None


def setup_tracing(service: str, regency: str) -> None:
    """Install a tracer provider for this process unless one is installed already (or
    ``OTEL_SDK_DISABLED=true``), with the exporters the environment chooses."""
    global _exporting
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return
    attributes = {"service.namespace": "pulih", "pulih.regency": regency, "pulih.service": service}
    if not os.environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = f"pulih-{service}"
    provider = TracerProvider(resource=Resource.create(attributes))
    for name in chosen_exporters():
        exporter = _exporter(name)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
            _exporting = True
    trace.set_tracer_provider(provider)


def instrument_app(app: FastAPI) -> None:
    """Open a span for every HTTP request (probes and scrapes excluded); not the ``http
    receive`` and ``http send`` spans under it, three more per request for no news."""
    FastAPIInstrumentor.instrument_app(app, excluded_urls=UNTRACED_PATHS, exclude_spans=["receive", "send"])
