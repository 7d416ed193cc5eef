"""Traces and logs that carry regency and service.

One trace crosses HTTP → outbox → NATS → consumer: FastAPI's instrumentation opens the request
span, the outbox row keeps its ``traceparent``, the relay re-attaches it, and FastStream's
telemetry middleware carries it in message headers to the consumer's span.
"""

from __future__ import annotations

import logging
import os

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, regency: str) -> None:
        super().__init__()
        self.service = service
        self.regency = regency

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = getattr(record, "service", self.service)
        record.regency = getattr(record, "regency", self.regency)
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else "-"
        return True


def setup_logging(service: str, regency: str) -> None:
    """Log lines with regency, service and trace id (never an identity)."""
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter(service, regency))
    handler.setFormatter(
        logging.Formatter(
            "%(asctime)s %(levelname)s [%(regency)s/%(service)s trace=%(trace_id)s] %(name)s: %(message)s"
        )
    )
    root = logging.getLogger("pulih")
    root.handlers = [handler]
    root.setLevel(os.environ.get("PULIH_LOG_LEVEL", "INFO"))
    root.propagate = False


def setup_tracing(service: str, regency: str) -> None:
    """Install a tracer provider for this process unless one is installed already.

    Spans go to the console when ``PULIH_TRACE_CONSOLE=1``; a deployment adds its exporter
    through the standard OpenTelemetry SDK configuration.
    """
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": f"pulih-{service}",
                "service.namespace": "pulih",
                "pulih.regency": regency,
            }
        )
    )
    if os.environ.get("PULIH_TRACE_CONSOLE") == "1":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)


def instrument_app(app: FastAPI) -> None:
    """Open a span for every HTTP request (health checks excluded)."""
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")
