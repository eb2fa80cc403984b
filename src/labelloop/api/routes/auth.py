"""Log in and out (session cookie), who am I, API tokens for scripts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from labelloop.api import responses as rs
from labelloop.api.deps import COOKIE, CurrentUser, Id, ServerState, state
from labelloop.api.schemas import LoginIn, TokenIn
from labelloop.errors import NotFoundError
from labelloop.services import users
from labelloop.services.users import SESSION_DAYS

router = APIRouter(prefix="/api/auth", tags=["auth"])
State = Annotated[ServerState, Depends(state)]


@router.post("/login", response_model=rs.AuthUser, summary="Log in; sets an HttpOnly session cookie")
def login(body: LoginIn, request: Request, response: Response, st: State) -> dict[str, Any]:
    user = users.authenticate(st.store, body.username, body.password)
    token = users.create_session(st.store, user, request.headers.get("user-agent", ""))
    response.set_cookie(COOKIE, token, max_age=SESSION_DAYS * 86400, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
    return {"user": user.as_dict()}


@router.post("/logout", response_model=rs.Ok, summary="End this session")
def logout(request: Request, response: Response, st: State) -> dict[str, Any]:
    token = request.cookies.get(COOKIE)
    if token:
        users.delete_session(st.store, token)
    response.delete_cookie(COOKIE, path="/")
    return {"ok": True}


@router.get("/me", response_model=rs.AuthUser, summary="The logged-in user and what their role may do")
def me(user: CurrentUser) -> dict[str, Any]:
    return {"user": user.as_dict()}


@router.get("/tokens", response_model=list[rs.TokenInfo], summary="My API tokens")
def my_tokens(user: CurrentUser, st: State) -> list[dict[str, Any]]:
    return users.list_tokens(st.store, user.username)


@router.post("/tokens", response_model=rs.TokenCreated, status_code=201,
             summary="Create an API token (shown once) for 'Authorization: Bearer'")
def create_token(body: TokenIn, user: CurrentUser, st: State) -> dict[str, Any]:
    return users.create_token(st.store, user.username, body.name)


@router.delete("/tokens/{token_id}", response_model=rs.Ok, summary="Revoke one of my API tokens")
def revoke_token(token_id: Id, user: CurrentUser, st: State) -> dict[str, Any]:
    mine = {t["id"] for t in users.list_tokens(st.store, user.username)}
    if token_id not in mine and user.role != "admin":
        raise NotFoundError(f"no API token {token_id} of yours")
    users.revoke_token(st.store, token_id)
    return {"ok": True}
