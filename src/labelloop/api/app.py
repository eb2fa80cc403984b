"""The FastAPI application: the REST API under ``/api`` (docs at ``/api/docs``) and the built
web UI (``labelloop/web/dist``) for every other path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from labelloop import __version__
from labelloop.api.deps import ServerState
from labelloop.api.errors import install_error_handlers
from labelloop.api.responses import ERRORS, Health
from labelloop.api.routes import ROUTERS
from labelloop.jobs.executor import Executor
from labelloop.services.projects import ProjectRegistry

__all__ = ["WEB_DIST", "create_app", "openapi_document"]

WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'")
_NOT_BUILT = """<!doctype html><meta charset=utf-8><title>labelloop</title>
<body style="font:16px system-ui;margin:4rem auto;max-width:40rem">
<h1>labelloop</h1><p>The web UI is not built in this installation.</p>
<p>Build it with <code>npm ci &amp;&amp; npm run build</code> in <code>src/labelloop/web/</code>,
or use the API: <a href="/api/docs">/api/docs</a>.</p>"""


def create_app(registry: ProjectRegistry, executor: Executor, *, web_dist: Path = WEB_DIST) -> FastAPI:
    app = _api()
    app.state.labelloop = ServerState(registry=registry, executor=executor)
    swagger = web_dist / "swagger"

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if (swagger / "swagger-ui-bundle.js").is_file():  # offline: shipped with the web build
            return get_swagger_ui_html(openapi_url="/api/openapi.json", title="labelloop API",
                                       swagger_js_url="/swagger/swagger-ui-bundle.js",
                                       swagger_css_url="/swagger/swagger-ui.css",
                                       swagger_favicon_url="/favicon.svg")
        return get_swagger_ui_html(openapi_url="/api/openapi.json", title="labelloop API")

    _mount_web(app, web_dist)
    app.add_middleware(SecurityHeaders)
    return app


class SecurityHeaders:
    """Plain ASGI middleware (cheaper than ``@app.middleware``): nosniff, no framing, and a strict
    Content-Security-Policy on the web UI's pages (not on the Swagger docs, which inline a script)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        extra = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]
        if not path.startswith(("/api/docs", "/swagger")):
            extra.append((b"x-frame-options", b"DENY"))
            if not path.startswith("/api/"):
                extra.append((b"content-security-policy", _CSP.encode()))

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _api() -> FastAPI:
    """The REST API's routes and error handlers, without server state (enough for its OpenAPI document)."""
    app = FastAPI(title="labelloop", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json",
                  description="Image annotation with a model in the loop. Authenticate with the session "
                              "cookie from POST /api/auth/login or an API token: `Authorization: Bearer ll_...`.")
    install_error_handlers(app)

    @app.get("/api/health", tags=["server"], summary="Liveness (no authentication)", response_model=Health)
    async def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    for router in ROUTERS:
        app.include_router(router, responses=ERRORS)
    return app


def openapi_document() -> dict[str, Any]:
    """The API's OpenAPI document, as served at ``/api/openapi.json``."""
    return _api().openapi()


def _mount_web(app: FastAPI, dist: Path) -> None:
    index = dist / "index.html"
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")
    if (dist / "swagger").is_dir():
        app.mount("/swagger", StaticFiles(directory=dist / "swagger"), name="swagger")

    @app.get("/{path:path}", include_in_schema=False)
    def spa(path: str) -> Response:
        if path.startswith("api/") or path == "api":
            return Response('{"error":"NotFoundError","message":"no such API route","hint":"see /api/docs"}',
                            status_code=404, media_type="application/json")
        candidate = (dist / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(dist.resolve()):
            return FileResponse(candidate)
        if index.is_file():
            return FileResponse(index, headers={"Cache-Control": "no-cache"})
        return HTMLResponse(_NOT_BUILT)
