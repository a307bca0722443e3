"""API keys and request limits: who may call what, and how much a request may carry.

- A Bearer key (when the server has one) is required for the knowledge, job and version endpoints, and
  for chat unless chat is opened to everyone; keys are compared in constant time.
- Bodies larger than the limit are refused with 413 before the application reads them (Content-Length
  is checked first; a chunked body is counted as it arrives).
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def api_error(status: int, message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    """The OpenAI error body: `{"error": {"message", "type", "param", "code"}}` (what its clients parse)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code or str(status)}}


class KeyCheck:
    """A FastAPI dependency: passes when no key is configured, when `optional` (open chat), or when the
    request carries `Authorization: Bearer <key>`."""

    def __init__(self, key: str | None, optional: bool = False):
        self.key = key
        self.optional = optional

    def __call__(self, request: Request) -> None:
        if not self.key or self.optional:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise HTTPException(401, "this endpoint needs an API key: send the header 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), self.key.encode()):
            raise HTTPException(401, "the API key is not valid", headers={"WWW-Authenticate": "Bearer"})


class BodyLimit:
    """ASGI middleware: answer 413 to any request whose body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send, int(declared))
            return
        # read the body here, counting; the application gets it replayed in one message
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            if total > self.max_bytes:
                await self._too_large(scope, receive, send, None)
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect as usual

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, size: int | None) -> None:
        got = f"{size} bytes" if size is not None else "more"
        message = (f"request body too large: {got}, this server accepts at most {self.max_bytes} bytes "
                   f"(--max-body-bytes); split the document into several requests")
        await JSONResponse(api_error(413, message, "request_too_large"), status_code=413)(scope, receive, send)
