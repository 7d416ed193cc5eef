"""The benchmarks' load generator's HTTP client: HTTP/1.1 with keep-alive over asyncio streams,
and requests encoded to bytes before they are due.

A field device is not on the regency box, but the benchmarks run it there: every millisecond of
CPU the load generator spends is taken from the regency it measures. httpx spent about 3 ms of CPU
a request (its connection pool, its header models, h11), as much as the API answering it; this
client writes prepared bytes and reads an answer by its ``Content-Length`` (or its chunks), which
costs a tenth of that.

It speaks only what a regency's uvicorn answers: ``HTTP/1.1``, ``Content-Length`` or
``Transfer-Encoding: chunked``, ``Connection: close``. It has the subset of httpx's interface the
field device uses (``post(url, json=…, content=…, headers=…)``, ``get(url)``, ``status_code``,
``headers.get``, ``text``, ``json()``), so either client can drive a :class:`FieldDevice`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IDLE_SECONDS = 4.0
"""How long a connection may have been idle to be used again: uvicorn closes a kept-alive
connection after 5 s without a request."""


class HttpError(ConnectionError):
    """The server closed the connection or answered something this client does not read (a
    timeout raises ``TimeoutError``)."""


@dataclass(frozen=True)
class Prepared:
    """A request encoded once, sendable any number of times: its origin and its bytes."""

    host: str
    port: int
    data: bytes


class Response:
    """An answer: its status, its headers (names in lower case) and its body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        """The body as text (UTF-8)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.content)


def prepare(method: str, url: str, body: bytes = b"", headers: Mapping[str, str] | None = None) -> Prepared:
    """``method url`` with ``body`` and ``headers``, encoded for the wire."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target or '/'} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Prepared(host, port, head + body)


class _Connection:
    __slots__ = ("reader", "used", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used = 0.0
        """When its last answer was read (monotonic seconds); 0 while it has carried none."""

    def close(self) -> None:
        self.writer.close()


class LightHttp:
    """Keep-alive connections to any number of origins, at most ``max_connections`` to each;
    a request waits for a free one. Use as an async context manager (closes them all)."""

    def __init__(self, max_connections: int = 128, timeout: float = 120.0) -> None:
        self.max_connections = max_connections
        self.timeout = timeout
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        self._slots: dict[tuple[str, int], asyncio.Semaphore] = {}

    async def __aenter__(self) -> LightHttp:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every idle connection."""
        for idle in self._idle.values():
            while idle:
                idle.pop().close()

    async def post(
        self,
        url: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """``POST url`` with ``content`` (bytes) or ``json`` (encoded here)."""
        if content is None:
            content = _json_bytes(json)
            headers = {**(headers or {}), "Content-Type": "application/json"}
        return await self.send(prepare("POST", url, content, headers))

    async def get(self, url: str, *, headers: Mapping[str, str] | None = None) -> Response:
        """``GET url``."""
        return await self.send(prepare("GET", url, b"", headers))

    async def send(self, request: Prepared) -> Response:
        """Send a prepared request on a free connection to its origin; its answer. A kept-alive
        connection the server closed while it was idle is dropped and the request sent on the
        next (the server read nothing of it; the benchmarks' writes carry idempotency keys
        anyway); one idle for longer than :data:`IDLE_SECONDS` is not tried."""
        origin = (request.host, request.port)
        slots = self._slots.get(origin)
        if slots is None:
            slots = self._slots[origin] = asyncio.Semaphore(self.max_connections)
            self._idle[origin] = deque()
        idle = self._idle[origin]
        async with slots:
            while True:
                connection = self._kept(idle) or await self._open(origin)
                try:
                    async with asyncio.timeout(self.timeout):
                        response, keep = await self._exchange(connection, request.data)
                except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
                    connection.close()
                    if connection.used:
                        continue
                    raise HttpError(f"{type(exc).__name__}: {exc}") from exc
                except BaseException:
                    connection.close()
                    raise
                if keep:
                    connection.used = time.monotonic()
                    idle.append(connection)
                else:
                    connection.close()
                return response

    @staticmethod
    def _kept(idle: deque[_Connection]) -> _Connection | None:
        """The most recently used idle connection that is fresh enough; older ones are closed."""
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if now - connection.used < IDLE_SECONDS:
                return connection
            connection.close()
        return None

    async def _open(self, origin: tuple[str, int]) -> _Connection:
        reader, writer = await asyncio.open_connection(*origin)
        return _Connection(reader, writer)

    @staticmethod
    async def _exchange(connection: _Connection, data: bytes) -> tuple[Response, bool]:
        connection.writer.write(data)
        reader = connection.reader
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"not an HTTP/1.x answer: {status_line[:100]!r}")
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await _chunks(reader)
        else:
            body = await reader.read()  # the body ends with the connection
            headers["connection"] = "close"
        keep = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
        return Response(int(parts[1]), headers, body), keep


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    """A chunked body (trailers skipped)."""
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def _json_bytes(value: Any) -> bytes:
    """``value`` as compact JSON, as httpx encodes it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
