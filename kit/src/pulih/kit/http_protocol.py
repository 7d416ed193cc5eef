"""uvicorn's HTTP protocol with Nagle's algorithm off on every connection, for ``--workers N``.

uvicorn's supervisor binds the listening socket itself and leaves its ``proto`` at 0; the
connections it accepts inherit it, and asyncio turns on ``TCP_NODELAY`` only for a socket whose
``proto`` says TCP. So with ``--workers 2`` a keep-alive request after the first waits for the
client's delayed ACK: 40 ms on Linux for every answer (uvicorn issue #3149; measured here: 47 ms
a request on one connection with two workers, 4 ms with one). A single worker is not affected:
asyncio binds that socket from ``getaddrinfo``, which says TCP.

:func:`pulih.kit.workers.worker_args` names :class:`NoDelayHttpProtocol` (``--http``) whenever it
asks for more than one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from uvicorn.protocols.http.auto import AutoHTTPProtocol

_TCP = (socket.AF_INET, socket.AF_INET6)


class NoDelayHttpProtocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's own protocol (httptools when installed, else h11), with ``TCP_NODELAY`` set."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Turn Nagle's algorithm off on the connection's socket, then serve it as uvicorn does."""
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in _TCP:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
