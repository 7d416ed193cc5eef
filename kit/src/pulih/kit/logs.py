"""One log line format for every Pulih process: the services, FastStream, uvicorn and ``pulih up``.

Each record becomes one JSON object on one line: ``time`` (UTC, ISO 8601), ``level``, ``service``,
``regency``, ``logger``, ``message``, the ``trace_id`` and ``span_id`` of the current
OpenTelemetry span (empty outside one), whatever the record was given as ``extra`` (an access
line's ``method``, ``route``, ``status`` and ``duration_ms``; a consumed message's ``subject``)
and, for an exception, its ``exception`` text. A terminal gets the same fields as one readable
line instead, coloured unless ``NO_COLOR`` is set; a pipe never gets colour codes.

``PULIH_LOG_FORMAT`` is ``json``, ``console`` or ``auto`` (the default: ``console`` when the
stream is a terminal, else ``json``); ``PULIH_LOG_LEVEL`` is a level name (default ``INFO``).
Nothing here writes an identity: a log line says what happened to whom by pseudonymous ids only.

This module imports nothing but the standard library (and OpenTelemetry's API when a span may be
current), so the light ``pulih up`` supervisor uses it too.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

FORMAT_ENV = "PULIH_LOG_FORMAT"
LEVEL_ENV = "PULIH_LOG_LEVEL"

Format = Literal["json", "console"]

FIRST_FIELDS = ("time", "level", "service", "regency", "logger", "message", "trace_id", "span_id")
"""The fields every line has, in this order."""

_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "service",
    "regency",
    "trace_id",
    "span_id",
}
"""A LogRecord's own attributes; any other attribute was given as ``extra`` and is a field."""

_OUR_LOGGERS = ("uvicorn", "uvicorn.error", "faststream", "faststream.access", "faststream.access.nats")
"""Libraries' loggers that bring handlers of their own: ours replace them (records propagate)."""

_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;31m",
}
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


def chosen_format(stream: TextIO, setting: str | None = None) -> Format:
    """The format for ``stream``: ``PULIH_LOG_FORMAT`` (or ``setting``), ``auto`` deciding by
    whether ``stream`` is a terminal. An unknown value is ``auto``."""
    wanted = (setting if setting is not None else os.environ.get(FORMAT_ENV, "auto")).strip().lower()
    if wanted in ("json", "console"):
        return "json" if wanted == "json" else "console"
    return "console" if _is_terminal(stream) else "json"


def colour_for(stream: TextIO) -> bool:
    """Whether ``stream`` may get ANSI colours: a terminal, and ``NO_COLOR`` unset."""
    return _is_terminal(stream) and not os.environ.get("NO_COLOR")


def chosen_level(setting: str | None = None) -> int:
    """``PULIH_LOG_LEVEL`` (or ``setting``) as a logging level; ``INFO`` when unset or unknown."""
    name = (setting if setting is not None else os.environ.get(LEVEL_ENV, "INFO")).strip().upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _current_span_ids() -> tuple[str, str]:
    if "opentelemetry.trace" not in sys.modules:  # a process without tracing (the supervisor)
        return "", ""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


class ContextFilter(logging.Filter):
    """Gives every record its process's ``service`` and ``regency`` (unless it names its own) and
    the ids of the current span."""

    def __init__(self, service: str, regency: str) -> None:
        super().__init__()
        self.service = service
        self.regency = regency

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the context; never drops a record."""
        record.service = getattr(record, "service", self.service)
        record.regency = getattr(record, "regency", self.regency)
        if not hasattr(record, "trace_id"):
            record.trace_id, record.span_id = _current_span_ids()
        return True


def fields_of(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """A record as the fields of its line (see the module's docstring)."""
    fields: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "service": getattr(record, "service", ""),
        "regency": getattr(record, "regency", ""),
        "logger": record.name,
        "message": record.getMessage(),
        "trace_id": getattr(record, "trace_id", ""),
        "span_id": getattr(record, "span_id", ""),
    }
    for key, value in vars(record).items():
        if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
            fields[key] = value
    if record.exc_info:
        fields["exception"] = formatter.formatException(record.exc_info)
    elif record.exc_text:
        fields["exception"] = record.exc_text
    if record.stack_info:
        fields["stack"] = formatter.formatStack(record.stack_info)
    return fields


def render_console(fields: dict[str, Any], *, colour: bool) -> str:
    """One line's fields as a terminal shows them: time, level, service, message, the rest as
    ``key=value``, and a short trace id; an exception on the lines after."""
    time_ = str(fields.get("time", ""))
    clock = time_[11:23] if len(time_) >= 23 else time_
    level = str(fields.get("level", ""))
    service = str(fields.get("service", ""))
    extras = " ".join(
        f"{key}={value}"
        for key, value in fields.items()
        if key not in FIRST_FIELDS and key not in ("exception", "stack") and value not in (None, "")
    )
    trace_id = str(fields.get("trace_id") or "")
    tail = " ".join(part for part in (extras, f"trace={trace_id[:8]}" if trace_id else "") if part)
    if colour:
        level_text = f"{_COLOURS.get(level, '')}{level:<7}{_RESET}"
        line = f"{_DIM}{clock}{_RESET} {level_text} {service:<9} {fields.get('message', '')}"
        if tail:
            line += f"  {_DIM}{tail}{_RESET}"
    else:
        line = f"{clock} {level:<7} {service:<9} {fields.get('message', '')}"
        if tail:
            line += f"  {tail}"
    for key in ("exception", "stack"):
        if fields.get(key):
            line += "\n" + str(fields[key])
    return line


def parse_line(text: str) -> dict[str, Any] | None:
    """The fields of a line in this module's JSON format, or ``None`` for any other line."""
    text = text.strip()
    if not text.startswith("{"):
        return None
    try:
        fields = json.loads(text)
    except ValueError:
        return None
    if not isinstance(fields, dict) or "message" not in fields or "level" not in fields:
        return None
    return fields


def output_fields(service: str, regency: str, text: str) -> dict[str, Any]:
    """A line a process wrote without logging (a traceback before its logging was set up) as the
    fields of a log line of its service."""
    return {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": "INFO",
        "service": service,
        "regency": regency,
        "logger": "output",
        "message": text.rstrip("\n"),
        "trace_id": "",
        "span_id": "",
    }


def relay_line(service: str, regency: str, text: str, format_: Format, *, colour: bool) -> str:
    """A child process's output line as ``pulih up`` shows it: a JSON line as it is (``json``) or
    readable (``console``); another line wrapped as a log line of ``service`` (``json``) or
    prefixed with ``[service]`` (``console``)."""
    fields = parse_line(text)
    if format_ == "json":
        if fields is not None:
            return text.strip()
        return json.dumps(output_fields(service, regency, text), ensure_ascii=False)
    if fields is not None:
        return render_console(fields, colour=colour)
    return f"[{service}] {text.rstrip()}"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON (values that are not JSON are written as text)."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's line."""
        return json.dumps(fields_of(record, self), default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """A record as one readable line (see :func:`render_console`)."""

    def __init__(self, *, colour: bool) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        """The record's line."""
        return render_console(fields_of(record, self), colour=self.colour)


class PulihHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure` installs on the root logger (found again and replaced by
    the next call, so a process configured twice writes each line once)."""


def configure(
    service: str,
    regency: str,
    *,
    stream: TextIO | None = None,
    format_: str | None = None,
    level: str | None = None,
) -> logging.Handler:
    """Send every logger's records, as lines of this module's format, to ``stream`` (stderr).

    The root logger gets the handler and ``PULIH_LOG_LEVEL``; uvicorn's and FastStream's loggers
    lose their own handlers and propagate to it; uvicorn's access log is switched off (the
    service writes its own, with the route template instead of the raw path and query), and so is
    httpx's line per call below WARNING (its URL carries the query: a purpose, ids). Other
    handlers on the root logger (a test's log capture) are left alone.
    """
    stream = stream or sys.stderr
    handler = PulihHandler(stream)
    handler.addFilter(ContextFilter(service, regency))
    if chosen_format(stream, format_) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ConsoleFormatter(colour=colour_for(stream)))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, PulihHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen_level(level))
    for name in ("pulih", *_OUR_LOGGERS):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        if name in ("pulih", "faststream", "faststream.access", "faststream.access.nats"):
            logger.setLevel(logging.NOTSET)
    logging.getLogger("alembic").setLevel(max(root.level, logging.WARNING))  # "Context impl …"
    for client in ("httpx", "httpcore"):  # a line per call, with its URL's query (a purpose, ids)
        logging.getLogger(client).setLevel(max(root.level, logging.WARNING))
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    return handler
