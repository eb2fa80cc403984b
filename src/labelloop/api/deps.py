"""Request dependencies: the server's state, the current user, permission checks, the project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Path, Query, Request

from labelloop.jobs.executor import Executor
from labelloop.services import users
from labelloop.services.layers import layer_context
from labelloop.services.projects import ProjectRegistry
from labelloop.services.users import UserInfo
from labelloop.store.db import Store
from labelloop.store.project import ProjectContext

__all__ = ["COOKIE", "CurrentUser", "Project", "ServerState", "permission", "state"]

COOKIE = "labelloop_session"


@dataclass
class ServerState:
    registry: ProjectRegistry
    executor: Executor

    @property
    def store(self) -> Store:
        return self.registry.store()


# The dependencies are ``async`` on purpose: they do no blocking work on the hot path (the token
# and the project context are cached), and FastAPI runs a sync dependency in the thread pool,
# which costs a thread hop per dependency per request.

async def state(request: Request) -> ServerState:
    return request.app.state.labelloop  # type: ignore[no-any-return]


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get(COOKIE)


_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _check_origin(request: Request) -> None:
    """A browser sends its cookie with any site's form or fetch; a change made with the session cookie
    must come from this site's own pages (SameSite=Lax alone lets a sibling subdomain through)."""
    if request.method not in _UNSAFE or request.headers.get("authorization", "").lower().startswith("bearer "):
        return
    origin = request.headers.get("origin")
    # behind a proxy that rewrites Host (nginx does by default), X-Forwarded-Host is the site's name
    here = {request.headers.get("host", request.url.netloc), request.headers.get("x-forwarded-host")} - {None, ""}
    if origin and urlsplit(origin).netloc not in here:  # "null" (a sandboxed frame) has no host: refused
        raise HTTPException(403, f"a request from {origin} may not change anything here: only this server's "
                                 "own pages may (scripts use an API token)")


async def current_user(request: Request, st: Annotated[ServerState, Depends(state)]) -> UserInfo:
    _check_origin(request)
    token = _token(request)
    user = users.user_for_token(st.store, token) if token else None
    if user is None:
        raise HTTPException(401, "not logged in" if not token else "session expired or token revoked",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.user = user
    return user


CurrentUser = Annotated[UserInfo, Depends(current_user)]


def permission(action: str) -> Callable[..., Awaitable[UserInfo]]:
    """A dependency returning the current user once their role may do ``action``."""
    async def check(user: CurrentUser) -> UserInfo:
        users.require(user, action)
        return user
    check.__name__ = f"require_{action.replace('.', '_')}"
    return check


def project_context(slug: Annotated[str, Path(description="the project's folder name")],
                    user: CurrentUser, st: Annotated[ServerState, Depends(state)],
                    layer: Annotated[str | None, Query(
                        description="the project's layer (default: its first)", max_length=100)] = None,
                    ) -> ProjectContext:
    """The project of the URL, on the ``?layer=`` of the request (a database look-up only when given)."""
    users.require(user, "project.view")
    ctx = st.registry.open(slug)
    return ctx if not layer else layer_context(ctx, layer)


Project = Annotated[ProjectContext, Depends(project_context)]
#: ids are 64-bit database integers: a bigger number in a URL is a 422, not a database overflow
MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


