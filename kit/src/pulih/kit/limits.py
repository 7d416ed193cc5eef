"""How large a request's body may be: ``PULIH_MAX_BODY_BYTES`` (1 MiB by default).

Pulih's largest command (a client's registration with their identity, a WHOQOL-BREF of 26
answers) is a few kilobytes. :class:`BodyLimit` answers 413 ``body_too_large`` with the kit's
error body before the app sees a larger one: at once when ``Content-Length`` announces it, or as
soon as the bytes received pass the limit (a chunked body), so a 50 MB body is never read, let
alone parsed. A body within the limit is handed on to the app unchanged.

Not FastAPI's own ``max_body_size``: when ``Content-Length`` announces too much, Starlette's
limiter replaces whatever the app answers with a plain-text 413 of its own.
"""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOO_LARGE = "body_too_large"


class BodyLimit:
    """ASGI middleware refusing an HTTP request whose body passes ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received: list[Message] = []
        size = 0
        while True:
            message = await receive()
            received.append(message)
            if message["type"] != "http.request":
                break  # the client left; the app hears it
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if received:
                return received.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = {
            "code": TOO_LARGE,
            "message": f"the body is larger than {self.max_bytes} bytes, the most this service accepts",
            "field": "body",
        }
        # The rest of the body is not read: the connection is closed after the answer.
        response = JSONResponse(body, status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
