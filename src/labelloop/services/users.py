"""Users, roles, passwords, sessions and API tokens for ``labelloop serve``.

Passwords are hashed with scrypt and a random salt and compared in constant time. Session
cookies and API tokens are random strings of which only a SHA-256 is stored (they carry 256
bits of entropy, so a slow hash adds nothing); a session is an ``api_tokens`` row whose name
starts with ``session:`` and which expires after :data:`SESSION_DAYS`.

Role checks live here, once: :func:`require` raises :class:`PermissionDeniedError`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select

from labelloop.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from labelloop.store.db import Store
from labelloop.store.tables import ApiToken, User, utcnow

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "SESSION_DAYS",
    "UserInfo",
    "authenticate",
    "can",
    "create_session",
    "create_token",
    "create_user",
    "delete_session",
    "ensure_admin",
    "hash_password",
    "list_tokens",
    "list_users",
    "require",
    "revoke_token",
    "set_password",
    "set_role",
    "user_for_token",
    "verify_password",
]

ROLES = ("admin", "annotator", "reviewer")
SESSION_DAYS = 14
_SESSION_PREFIX = "session:"
_TOKEN_PREFIX = "ll_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_TOUCH_EVERY = timedelta(minutes=5)

#: action -> roles allowed to do it
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "project.view": ROLES,
    "project.create": ("admin", "reviewer"),
    "project.delete": ("admin",),
    "classes.edit": ("admin", "reviewer"),
    "images.upload": ROLES,
    "annotate": ROLES,
    "review": ("admin", "reviewer"),
    "jobs.run": ROLES,
    "data.import": ("admin", "reviewer"),
    "data.export": ROLES,
    "users.manage": ("admin",),
}


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    role: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role,
                "permissions": sorted(a for a, roles in PERMISSIONS.items() if self.role in roles)}


def can(user: UserInfo, action: str) -> bool:
    if action not in PERMISSIONS:
        raise KeyError(f"unknown action {action!r}")
    return user.role in PERMISSIONS[action]


def require(user: UserInfo, action: str) -> None:
    """Raise PermissionDeniedError unless ``user``'s role may do ``action``."""
    if not can(user, action):
        allowed = " or ".join(PERMISSIONS[action])
        raise PermissionDeniedError(f"{user.username} ({user.role}) may not do {action}",
                                    f"ask an administrator; this needs the role {allowed}")


# -- passwords ------------------------------------------------------------------------------

def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with base64 salt and hash."""
    _check_password(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}$".format(**_SCRYPT) + _b64(salt) + "$" + _b64(digest)


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, base64.b64decode(digest))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _check_password(password: str) -> None:
    if len(password) < 8:
        raise InvalidInputError(f"password has {len(password)} characters, expected at least 8",
                                "pick a longer password")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInputError(f"unknown role {role!r}", f"expected one of: {', '.join(ROLES)}")


def _info(user: User) -> UserInfo:
    return UserInfo(id=user.id, username=user.username, role=user.role)


# -- users ----------------------------------------------------------------------------------

def create_user(store: Store, username: str, password: str, role: str = "annotator") -> UserInfo:
    username = username.strip()
    if not username or len(username) > 200 or any(c.isspace() for c in username):
        raise InvalidInputError(f"invalid user name {username!r}", "use 1-200 characters without spaces")
    _check_role(role)
    encoded = hash_password(password)
    with store.session() as s:
        if s.scalars(select(User.id).where(User.username == username)).first() is not None:
            raise ConflictError(f"user {username!r} already exists", "pick another name, or set-password")
        user = User(username=username, password_hash=encoded, role=role)
        s.add(user)
        s.flush()
        return _info(user)


def list_users(store: Store) -> list[dict[str, Any]]:
    with store.session() as s:
        users = s.scalars(select(User).order_by(User.id)).all()
        return [{"id": u.id, "username": u.username, "role": u.role, "created_at": u.created_at.isoformat()}
                for u in users]


def _user(s: Any, username: str) -> User:
    user = s.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise NotFoundError(f"no user named {username!r}", "see `labelloop users list`")
    return user


def set_password(store: Store, username: str, password: str, *, role: str | None = None) -> None:
    """Change a password (and the role, if given). A new password is what one sets after a leak, so every
    session of the user ends and every API token of the user is revoked (make new ones)."""
    encoded = hash_password(password)
    if role is not None:
        _check_role(role)
    with store.session() as s:
        user = _user(s, username)
        user.password_hash = encoded
        if role is not None:
            _keep_an_admin(s, user, role)
            user.role = role
        s.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    _forget_all()


def _keep_an_admin(s: Any, user: User, role: str) -> None:
    """Refuse to take the admin role from the last admin: nobody could manage users any more."""
    if user.role == "admin" and role != "admin":
        admins = s.scalar(select(func.count()).select_from(User).where(User.role == "admin")) or 0
        if admins <= 1:
            raise ConflictError(f"{user.username!r} is the last admin", "make another user admin first")


def set_role(store: Store, username: str, role: str) -> None:
    _check_role(role)
    with store.session() as s:
        user = _user(s, username)
        _keep_an_admin(s, user, role)
        user.role = role
    _forget_all()


def ensure_admin(store: Store, password: str | None) -> str | None:
    """On first run create ``admin``: with ``password`` if given, else a random one that is returned
    (to be printed once). Returns None when users exist already."""
    with store.session() as s:
        if s.scalars(select(User.id).limit(1)).first() is not None:
            return None
    generated = password or secrets.token_urlsafe(12)
    try:
        create_user(store, "admin", generated, "admin")
    except ConflictError:  # another process created it meanwhile
        return None
    return None if password else generated


#: a user name that failed this many logins within LOGIN_WINDOW seconds is locked for the rest of it
MAX_FAILED_LOGINS = 10
LOGIN_WINDOW = 300.0
_FAILED: dict[str, list[float]] = {}
_FAILED_LOCK = threading.Lock()


def _failed_recently(username: str, now: float) -> list[float]:
    with _FAILED_LOCK:
        times = [t for t in _FAILED.get(username, []) if now - t < LOGIN_WINDOW]
        _FAILED[username] = times
        return times


def authenticate(store: Store, username: str, password: str) -> UserInfo:
    """The user when the password matches; the same error for an unknown user or a wrong password.
    After :data:`MAX_FAILED_LOGINS` failures within :data:`LOGIN_WINDOW` seconds the name is locked
    (a :class:`TooManyAttemptsError`) until the oldest failure is that old: guessing is slow."""
    now = time.monotonic()
    failed = _failed_recently(username, now)
    if len(failed) >= MAX_FAILED_LOGINS:
        wait = int(LOGIN_WINDOW - (now - failed[0])) + 1
        raise TooManyAttemptsError(f"too many failed logins for {username!r}: try again in {wait} s",
                                   "check the password, or ask an administrator to set a new one")
    with store.session() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        encoded = user.password_hash if user else _DUMMY_HASH
        ok = verify_password(password, encoded)  # hashes even for an unknown user: same timing
        if user is None or not ok:
            with _FAILED_LOCK:
                _FAILED.setdefault(username, []).append(now)
            raise PermissionDeniedError("wrong user name or password", "check both, or ask an administrator")
        with _FAILED_LOCK:
            _FAILED.pop(username, None)
        return _info(user)


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


# -- sessions and tokens --------------------------------------------------------------------

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _issue(store: Store, user_id: int, name: str) -> tuple[int, str]:
    token = _TOKEN_PREFIX + secrets.token_urlsafe(32)
    with store.session() as s:
        row = ApiToken(user_id=user_id, name=name, token_hash=_digest(token))
        s.add(row)
        s.flush()
        return row.id, token


def create_session(store: Store, user: UserInfo, client: str = "") -> str:
    return _issue(store, user.id, _SESSION_PREFIX + client[:150])[1]


def delete_session(store: Store, token: str) -> None:
    with store.session() as s:
        s.execute(delete(ApiToken).where(ApiToken.token_hash == _digest(token)))
    _forget_all()


def create_token(store: Store, username: str, name: str) -> dict[str, Any]:
    """A named API token for scripts (``Authorization: Bearer ...``); the secret is shown only now."""
    if not name.strip() or name.startswith(_SESSION_PREFIX):
        raise InvalidInputError(f"invalid token name {name!r}", "name it after the script that uses it")
    with store.session() as s:
        user_id = _user(s, username).id
    token_id, token = _issue(store, user_id, name.strip())
    return {"id": token_id, "name": name.strip(), "username": username, "token": token}


def list_tokens(store: Store, username: str | None = None) -> list[dict[str, Any]]:
    with store.session() as s:
        q = select(ApiToken, User.username).join(User, User.id == ApiToken.user_id).where(
            ApiToken.name.not_like(_SESSION_PREFIX + "%")).order_by(ApiToken.id)
        if username:
            q = q.where(User.username == username)
        return [{"id": t.id, "name": t.name, "username": u, "created_at": t.created_at.isoformat(),
                 "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None}
                for t, u in s.execute(q).all()]


def revoke_token(store: Store, token_id: int) -> None:
    with store.session() as s:
        row = s.get(ApiToken, token_id)
        if row is None or row.name.startswith(_SESSION_PREFIX):
            raise NotFoundError(f"no API token {token_id}", "see the token list")
        s.delete(row)
    _forget_all()


#: token digest -> (monotonic expiry, user): a request costs no database round trip for auth.
#: Changes made in this process (logout, revoke, password, role) clear it at once; changes made
#: by another process (the CLI) apply within CACHE_SECONDS.
CACHE_SECONDS = 2.0
_cache: dict[str, tuple[float, UserInfo]] = {}
_cache_lock = threading.Lock()


def _forget_all() -> None:
    with _cache_lock:
        _cache.clear()


def user_for_token(store: Store, token: str) -> UserInfo | None:
    """The user a session cookie or API token belongs to, or None (unknown, revoked, expired)."""
    if not token.startswith(_TOKEN_PREFIX):
        return None
    key = _digest(token)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    user = _lookup_token(store, token)
    if user is not None:
        with _cache_lock:
            if len(_cache) > 10_000:
                _cache.clear()
            _cache[key] = (time.monotonic() + CACHE_SECONDS, user)
    return user


def _lookup_token(store: Store, token: str) -> UserInfo | None:
    now = utcnow()
    with store.session() as s:
        row = s.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                        .where(ApiToken.token_hash == _digest(token))).first()
        if row is None:
            return None
        tok, user = row
        if tok.name.startswith(_SESSION_PREFIX) and tok.created_at < now - timedelta(days=SESSION_DAYS):
            s.delete(tok)
            return None
        if tok.last_used_at is None or tok.last_used_at < now - _TOUCH_EVERY:
            tok.last_used_at = now  # rarely, so reads stay reads
        return _info(user)
