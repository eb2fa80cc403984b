"""Errors as JSON: ``{"error": kind, "message": ..., "hint": ...}`` with the domain error's status.

Never a traceback: an unexpected exception is logged on the server and answered with a 500 that
says so in one line.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from labelloop.errors import LabelloopError

__all__ = ["error_body", "install_error_handlers"]

log = logging.getLogger("labelloop.api")


def error_body(kind: str, message: str, hint: str | None = None) -> dict[str, Any]:
    return {"error": kind, "message": message, "hint": hint}


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LabelloopError)
    async def domain_error(_request: Request, exc: LabelloopError) -> JSONResponse:
        return JSONResponse(error_body(type(exc).__name__, exc.message, exc.hint), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("InvalidInputError", _validation_message(exc),
                                       "see the request schema at /api/docs"), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "NotAuthenticated", 403: "PermissionDeniedError", 404: "NotFoundError",
                405: "MethodNotAllowed"}.get(exc.status_code, "HTTPError")
        hint = "log in, or send an API token as 'Authorization: Bearer ...'" if exc.status_code == 401 else None
        return JSONResponse(error_body(kind, str(exc.detail), hint), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("InternalError", f"internal error: {type(exc).__name__}",
                                       "the server log has the details"), status_code=500)
