"""Unit tests of the server's own services: passwords, tokens, roles, slugs, next steps."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from labelloop.errors import ConflictError, InvalidInputError, PermissionDeniedError
from labelloop.services import users
from labelloop.services.projects import ProjectRegistry, next_steps, slugify
from labelloop.store.db import Store, sqlite_url
from labelloop.store.tables import Project


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(sqlite_url(tmp_path / "server.db"))
    yield s
    s.dispose()


def test_passwords_are_salted_and_verified() -> None:
    a, b = users.hash_password("correct horse"), users.hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert users.verify_password("correct horse", a) and not users.verify_password("wrong horse", a)
    assert not users.verify_password("x", "garbage")
    with pytest.raises(InvalidInputError, match="at least 8"):
        users.hash_password("short")


def test_first_admin_tokens_and_roles(store: Store) -> None:
    generated = users.ensure_admin(store, None)
    assert generated and len(generated) >= 12
    assert users.ensure_admin(store, None) is None  # shown once: never again
    admin = users.authenticate(store, "admin", generated)
    with pytest.raises(PermissionDeniedError):
        users.authenticate(store, "admin", "nope-nope")
    with pytest.raises(PermissionDeniedError):
        users.authenticate(store, "ghost", "nope-nope")
    ann = users.create_user(store, "ann", "password-1", "annotator")
    with pytest.raises(ConflictError):
        users.create_user(store, "ann", "password-1", "annotator")
    users.require(admin, "users.manage")
    with pytest.raises(PermissionDeniedError, match="admin"):
        users.require(ann, "project.delete")
    token = users.create_token(store, "ann", "script")["token"]
    assert users.user_for_token(store, token) == ann
    users.revoke_token(store, users.list_tokens(store, "ann")[0]["id"])
    assert users.user_for_token(store, token) is None
    session = users.create_session(store, ann)
    script = users.create_token(store, "ann", "script-2")["token"]
    users.set_password(store, "ann", "password-2")
    assert users.user_for_token(store, session) is None  # a new password ends the sessions
    assert users.user_for_token(store, script) is None  # and revokes the API tokens (a leak is why one changes it)
    with pytest.raises(ConflictError, match="'admin' is the last admin"):
        users.set_role(store, "admin", "annotator")
    with pytest.raises(ConflictError, match="last admin"):
        users.set_password(store, "admin", "password-3", role="reviewer")
    assert users.authenticate(store, "admin", generated).role == "admin"  # nothing changed
    users.set_role(store, "ann", "admin")
    users.set_role(store, "admin", "annotator")  # with another admin, one may step down


def test_registry_slugs_and_external_folders(tmp_path: Path) -> None:
    from labelloop.store.project import init_project

    assert slugify("My Cats!") == "my-cats"
    url = sqlite_url(tmp_path / "home" / "server.db")
    registry = ProjectRegistry(tmp_path / "home", url)
    try:
        # the registry's own database, whatever LABELLOOP_DATABASE_URL says (here: unset)
        created = registry.create("My Cats", labels=["cat"])
        assert created["slug"] == "my-cats"
        assert not (tmp_path / "home" / "projects" / "my-cats" / "labelloop.db").exists()
        with registry.store().session() as s:
            assert s.scalar(select(func.count()).select_from(Project)) == 1
        with pytest.raises(ConflictError):
            registry.create("my cats")
        cli = init_project(tmp_path / "cli-proj", labels=["dog"])  # a CLI project on its own SQLite file
        cli.close()
        slug = registry.register_folder(tmp_path / "cli-proj")
        assert slug == "cli-proj" and registry.slugs() == ["my-cats", "cli-proj"]
        assert registry.open(slug).store is not registry.store()  # its own database, as the CLI uses it
        registry.delete(slug)
        assert (tmp_path / "cli-proj" / "labelloop.json").exists()  # unregistered, never deleted
        registry.delete("my-cats")
        assert registry.slugs() == []
    finally:
        registry.close()


def test_next_steps() -> None:
    stats = {"images": {"total": 10, "by_status": {"new": 4}}, "annotations": {"proposals": 0},
             "classes": [{"name": "cat", "missing": 5}, {"name": "dog", "missing": 12}], "ready_to_train": False}
    assert next_steps(stats, None, 0)[0] == {"action": "annotate", "label": "dog", "count": 12,
                                              "text": "Annotate 12 more dog"}
    stats["annotations"]["proposals"] = 37
    assert next_steps(stats, None, 0)[0]["text"] == "Review 37 proposals"
    stats["annotations"]["proposals"] = 0
    steps = next_steps(stats, {"round": 1}, 15)
    assert steps[0]["text"].startswith("Train round 2") and steps[1]["action"] == "preannotate"
    assert next_steps({**stats, "images": {"total": 0, "by_status": {}}}, None, 0)[0]["action"] == "upload"
