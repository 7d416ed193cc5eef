"""One log line format (pulih.kit.logs): JSON fields in order with the current span's ids, readable
lines in a terminal and never colour codes in a pipe, ``pulih up``'s relaying of its services'
lines, the access line of a request (route template, status, duration, no query string), and
FastStream's per-message lines at DEBUG."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from pulih.kit import logs
from pulih.kit.messaging import make_broker
from pulih.kit.metrics import install_metrics
from pulih.kit.nats_server import NatsServer
from pulih.kit.telemetry import instrument_app


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(logs.FORMAT_ENV, raising=False)
    monkeypatch.delenv(logs.LEVEL_ENV, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_json_line_has_every_field_in_order_and_the_current_spans_ids() -> None:
    stream = io.StringIO()
    logs.configure("outreach", "3301", stream=stream)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("request") as span:
        logging.getLogger("pulih.test").info("screened %s", "a client", extra={"event_id": "e-1"})
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("pulih.test").exception("failed")
    first, second = lines_of(stream)
    assert list(first)[: len(logs.FIRST_FIELDS)] == list(logs.FIRST_FIELDS)
    context = span.get_span_context()
    assert first["trace_id"] == format(context.trace_id, "032x")
    assert first["span_id"] == format(context.span_id, "016x")
    assert (first["service"], first["regency"], first["level"], first["logger"]) == (
        "outreach",
        "3301",
        "INFO",
        "pulih.test",
    )
    assert first["message"] == "screened a client" and first["event_id"] == "e-1"
    assert second["trace_id"] == "" and "ValueError: boom" in str(second["exception"])


def test_a_terminal_gets_readable_coloured_lines_and_a_pipe_never_colour() -> None:
    terminal = Terminal()
    logs.configure("rehab", "3301", stream=terminal)
    logging.getLogger("pulih.test").warning("late", extra={"unit_id": "u-1"})
    line = terminal.getvalue()
    assert "\x1b[" in line and "late" in line and "unit_id=u-1" in line and not line.startswith("{")

    piped = io.StringIO()
    logs.configure("rehab", "3301", stream=piped, format_="console")
    logging.getLogger("pulih.test").warning("late")
    assert "late" in piped.getvalue() and "\x1b[" not in piped.getvalue()
    assert logs.chosen_format(io.StringIO()) == "json" and logs.chosen_format(Terminal()) == "console"


def test_no_colour_when_no_color_is_set_and_the_level_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv(logs.LEVEL_ENV, "warning")
    terminal = Terminal()
    logs.configure("rehab", "3301", stream=terminal)
    logging.getLogger("pulih.test").info("quiet")
    logging.getLogger("pulih.test").error("loud")
    assert "quiet" not in terminal.getvalue() and "loud" in terminal.getvalue()
    assert "\x1b[" not in terminal.getvalue()


def test_configured_twice_a_process_writes_each_line_once_and_libraries_propagate() -> None:
    stream = io.StringIO()
    logs.configure("referral", "3301", stream=io.StringIO())
    logs.configure("referral", "3301", stream=stream)
    for name in ("uvicorn.error", "faststream"):
        library = logging.getLogger(name)
        library.addHandler(logging.StreamHandler(io.StringIO()))
    logs.configure("referral", "3301", stream=stream)
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    logging.getLogger("pulih.test").warning("from pulih")
    assert [line["message"] for line in lines_of(stream)] == ["from uvicorn", "from pulih"]
    assert logging.getLogger("uvicorn.access").disabled


def test_up_shows_its_services_lines_in_its_own_format() -> None:
    line = json.dumps(
        {
            "time": "2026-11-26T10:00:00.000+00:00",
            "level": "INFO",
            "service": "rehab",
            "regency": "3301",
            "logger": "pulih.service",
            "message": "connected",
            "trace_id": "",
            "span_id": "",
        }
    )
    assert logs.relay_line("rehab", "3301", line + "\n", "json", colour=False) == line
    wrapped = json.loads(
        logs.relay_line("rehab", "3301", "Traceback (most recent call last):\n", "json", colour=False)
    )
    assert (wrapped["service"], wrapped["message"]) == ("rehab", "Traceback (most recent call last):")
    readable = logs.relay_line("rehab", "3301", line, "console", colour=False)
    assert readable.startswith("10:00:00.000 INFO") and "rehab" in readable and "connected" in readable
    assert logs.relay_line("rehab", "3301", "plain\n", "console", colour=False) == "[rehab] plain"


async def test_the_access_line_names_the_route_template_status_and_duration_never_the_query() -> None:
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    app = FastAPI()

    @app.get("/v1/clients/{client_id}")
    async def client(client_id: str) -> dict[str, str]:
        return {"client_id": client_id}

    install_metrics(app, "outreach", "3301", "1.0.0")
    instrument_app(app)
    stream = io.StringIO()
    logs.configure("outreach", "3301", stream=stream)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        answer = await http.get("/v1/clients/c-123", params={"purpose": "home visit"})
        assert answer.status_code == 200
        assert (await http.get("/no/such/c-123")).status_code == 404
    access = [line for line in lines_of(stream) if line["logger"] == "pulih.access"]
    assert [(a["method"], a["route"], a["status"]) for a in access] == [
        ("GET", "/v1/clients/{client_id}", 200),
        ("GET", "unmatched", 404),
    ]
    assert access[0]["message"].startswith("GET /v1/clients/{client_id} 200 ")  # type: ignore[union-attr]
    assert isinstance(access[0]["duration_ms"], float) and len(str(access[0]["trace_id"])) == 32
    assert "c-123" not in stream.getvalue() and "home" not in stream.getvalue(), "httpx's URL lines neither"


async def test_faststreams_line_per_message_is_debug(nats_server: NatsServer) -> None:
    stream = io.StringIO()
    logs.configure("rehab", "3301", stream=stream, level="DEBUG")
    broker = make_broker(nats_server.url, name="test-logs")
    got = asyncio.Event()

    @broker.subscriber("logs.test")
    async def handle(_: str) -> None:
        got.set()

    await broker.start()
    try:
        await broker.publish("hello", "logs.test")
        await asyncio.wait_for(got.wait(), 10)
        await asyncio.sleep(0.1)  # the "Processed" line follows the handler
    finally:
        await broker.stop()
    per_message = [line for line in lines_of(stream) if line["message"] in ("Received", "Processed")]
    assert per_message and {line["level"] for line in per_message} == {"DEBUG"}
    assert all(line["subject"] == "logs.test" for line in per_message)


def test_the_federations_terminal_shows_a_services_json_warnings_not_its_info_lines() -> None:
    from pulih.kit.federation.supervision import for_terminal

    def line(level: str) -> str:
        return json.dumps({"time": "", "level": level, "service": "rehab", "message": "m"}) + "\n"

    assert not for_terminal(line("INFO")) and not for_terminal(line("DEBUG"))
    assert for_terminal(line("WARNING")) and for_terminal(line("ERROR"))
