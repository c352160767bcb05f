"""A hard cap on request bodies, before anything parses or spools them.

Starlette spools an uploaded file to a temporary file as it arrives and checks
sizes only afterwards; without this, anyone who can reach the port (the login
form is public) could fill the disk. A declared ``Content-Length`` over the cap
is answered 413 at once; a body streamed without one is cut off at the cap (the
form parser then sees a broken body and the guard refuses the form).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailbot.web.uploads import MAX_UPLOAD_BYTES

#: The largest body accepted: the largest upload and room for the form around it.
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 1024 * 1024


class BodyTooLarge(Exception):
    """The client sent more than :data:`MAX_BODY_BYTES`."""


class BodyLimit:
    """ASGI middleware refusing request bodies over *limit* bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.limit:
            await _too_large(send)
            return
        received = 0

        async def counting() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(f"request body over {self.limit} bytes")
            return message

        await self.app(scope, counting, send)


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length`` (None: absent or not a number)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Send) -> None:
    body = "Слишком большой запрос".encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
