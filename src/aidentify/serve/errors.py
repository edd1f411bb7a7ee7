"""Every error the server answers is JSON ``{"error": "..."}`` with a status that says what went wrong.

Library errors leave the routes as :class:`ApiError`; FastAPI's own request
validation (422), Starlette's 404/405 and anything unexpected (500) are turned
into the same shape by :func:`install_error_handlers`, so a client has one
format to read and the server keeps serving after each of them. What uvicorn
itself answers (400, the 408 of a stalled upload, the 503 of the cap) is made
JSON in :mod:`aidentify.serve.protocol`. A client that hangs up is no error:
one info line, no answer.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("aidentify.serve")


class ApiError(Exception):
    """A request the server refuses: ``status`` (400, 404, 413, 415, 422, ...) and a one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)  # both in args: it crosses from worker processes by pickle
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path"))
        if error.get("type") == "missing":
            parts.append(f"missing field {where!r}")
        else:
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error as ``{"error": message}``."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such page: {request.url.path}"
        return error_response(exc.status_code, message)

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # An expected event (a closed tab, a phone that lost its Wi-Fi): one line at info level, and
        # no answer is sent (nobody is there; uvicorn drops it): 499 is nginx's name for the event.
        log.info("client left before its answer: %s %s", request.method, request.url.path)
        return error_response(499, "the client closed the connection before the answer")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal error: {type(exc).__name__}")
