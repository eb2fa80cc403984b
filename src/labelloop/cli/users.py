"""``labelloop users add|list|set-password`` and ``labelloop tokens create|list|revoke`` on the
server's database (``--home`` or ``LABELLOOP_HOME``; ``LABELLOOP_DATABASE_URL`` if set)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from labelloop.cli.common import JsonOpt, out, output
from labelloop.store.db import Store

__all__ = ["register"]

users_app = typer.Typer(help="Users of `labelloop serve`: add, list, set passwords and roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens for scripts (Authorization: Bearer ...).", no_args_is_help=True)
HomeOpt = Annotated[Path | None, typer.Option(help="server folder (default: LABELLOOP_HOME or ~/.labelloop)",
                                              show_default=False)]


@contextmanager
def _store(home: Path | None) -> Iterator[Store]:
    from labelloop.services.projects import server_database_url
    from labelloop.settings import get_settings

    home = (home or get_settings().home).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    store = Store(server_database_url(home))
    try:
        yield store
    finally:
        store.dispose()


def _password(password: str | None) -> str:
    if password:
        return password
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
def add(username: str, role: Annotated[str, typer.Option(help="admin | annotator | reviewer")] = "annotator",
        password: Annotated[str | None, typer.Option(help="(default: asked for)")] = None,
        home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Add a user."""
    from labelloop.services.users import create_user

    with _store(home) as store:
        user = create_user(store, username, _password(password), role)
    output(user, json_out, lambda u: out.print(f"added {u.role} [bold]{u.username}[/]"))


@users_app.command("list")
def list_(home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """List users."""
    from labelloop.services.users import list_users

    with _store(home) as store:
        rows = list_users(store)
    output(rows, json_out, _print_users)


def _print_users(rows: list[dict[str, Any]]) -> None:
    table = Table("user", "role", "created")
    for r in rows:
        table.add_row(r["username"], r["role"], r["created_at"][:16].replace("T", " "))
    out.print(table)


@users_app.command("set-password")
def set_password(username: str, password: Annotated[str | None, typer.Option(help="(default: asked for)")] = None,
                 role: Annotated[str | None, typer.Option(help="also change the role")] = None,
                 home: HomeOpt = None) -> None:
    """Set a user's password (ends their open sessions); optionally change the role."""
    from labelloop.services.users import set_password as _set

    with _store(home) as store:
        _set(store, username, _password(password), role=role)
    out.print(f"password of [bold]{username}[/] changed")


@tokens_app.command("create")
def token_create(name: Annotated[str, typer.Argument(help="what the token is for")],
                 user: Annotated[str, typer.Option("--user", "-u", help="whose token")] = "admin",
                 home: HomeOpt = None, json_out: JsonOpt = False) -> None:
    """Create an API token; it is printed only now."""
    from labelloop.services.users import create_token

    with _store(home) as store:
        token = create_token(store, user, name)
    output(token, json_out, lambda t: out.print(f"token {t['id']} for {user} ({name}):\n{t['token']}"))


@tokens_app.command("list")
def token_list(user: Annotated[str | None, typer.Option("--user", "-u")] = None, home: HomeOpt = None,
               json_out: JsonOpt = False) -> None:
    """List API tokens (never their secrets)."""
    from labelloop.services.users import list_tokens

    with _store(home) as store:
        rows = list_tokens(store, user)
    output(rows, json_out, _print_tokens)


def _print_tokens(rows: list[dict[str, Any]]) -> None:
    table = Table("id", "user", "name", "created", "last used")
    for r in rows:
        table.add_row(str(r["id"]), r["username"], r["name"], r["created_at"][:16], (r["last_used_at"] or "")[:16])
    out.print(table)


@tokens_app.command("revoke")
def token_revoke(token_id: int, home: HomeOpt = None) -> None:
    """Revoke an API token."""
    from labelloop.services.users import revoke_token

    with _store(home) as store:
        revoke_token(store, token_id)
    out.print(f"token {token_id} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
