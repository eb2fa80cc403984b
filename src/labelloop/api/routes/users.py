"""User management (administrators only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from labelloop.api import responses as rs
from labelloop.api.deps import ServerState, permission, state
from labelloop.api.schemas import UserIn, UserUpdateIn
from labelloop.services import users
from labelloop.services.users import UserInfo

router = APIRouter(prefix="/api/users", tags=["users"])
State = Annotated[ServerState, Depends(state)]
Admin = Annotated[UserInfo, Depends(permission("users.manage"))]


@router.get("", response_model=list[rs.UserRecord], summary="List users")
def list_users(_: Admin, st: State) -> list[dict[str, Any]]:
    return users.list_users(st.store)


@router.post("", response_model=rs.UserInfo, status_code=201, summary="Add a user")
def add_user(body: UserIn, _: Admin, st: State) -> dict[str, Any]:
    return users.create_user(st.store, body.username, body.password, body.role).as_dict()


@router.patch("/{username}", response_model=rs.UserRecord, summary="Set a user's password and/or role")
def update_user(username: str, body: UserUpdateIn, _: Admin, st: State) -> dict[str, Any]:
    if body.password:
        users.set_password(st.store, username, body.password, role=body.role)
    elif body.role:
        users.set_role(st.store, username, body.role)
    return next(u for u in users.list_users(st.store) if u["username"] == username)
