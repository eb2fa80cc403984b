"""``labelloop doctor``: re-read every stored image and say which are missing, changed or damaged.

Problems, per image: ``missing`` (the file is gone), ``changed`` (its content no longer has the
SHA-256 recorded at import), ``damaged`` (a truncated file whose pixels only partly decode) and
``unreadable`` (nothing decodes). With ``fix`` the image's ``damaged`` field records the problem (the
web app and ``stats`` show it, the image list filters on it) and is cleared where the file is whole
again, in every layer of the project (each layer has its own row of the same file). Nothing is
deleted: jobs already leave such images out and report them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select, update

from labelloop.core.progress import StageProgress
from labelloop.errors import InvalidInputError
from labelloop.services.datasets import image_path
from labelloop.services.layers import layer_store_ids
from labelloop.settings import get_settings
from labelloop.store.images import damage_note, inspect_image, sha256_file
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Image

__all__ = ["PROBLEMS", "check_images"]

PROBLEMS = ("missing", "changed", "damaged", "unreadable")


def _problem(ctx: ProjectContext, storage_path: str, sha: str) -> tuple[str, str] | None:
    settings = get_settings()
    path = image_path(ctx, storage_path)
    if not path.is_file():
        return "missing", f"{path} is not there"
    try:
        info = inspect_image(path, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
    except InvalidInputError as err:
        return "unreadable", err.message
    if sha and sha256_file(path) != sha:
        return "changed", "the file's content changed since it was imported"
    if info.damaged:
        return "damaged", info.damaged
    return None


def check_images(ctx: ProjectContext, *, fix: bool = False, progress: StageProgress | None = None) -> dict[str, Any]:
    """``{"checked", "problems": [{"image_id", "file_name", "problem", "reason"}], "counts", "fixed"}``."""
    with ctx.store.session() as s:
        rows = s.execute(select(Image.id, Image.file_name, Image.storage_path, Image.sha256, Image.damaged)
                         .where(Image.project_id == ctx.id).order_by(Image.id)).all()
    problems: list[dict[str, Any]] = []
    marks: dict[str, str | None] = {}  # storage path -> its new mark
    for n, (image_id, name, storage, sha, was) in enumerate(rows, 1):
        found = _problem(ctx, storage, sha)
        if found is not None:
            problems.append({"image_id": image_id, "file_name": name, "problem": found[0], "reason": found[1]})
        mark = damage_note(*found) if found else None
        if mark != was:
            marks[storage] = mark
        if progress:
            progress("check images", n, len(rows))
    if fix and marks:
        with ctx.store.session() as s:
            stores = layer_store_ids(s, ctx)
            for storage, mark in marks.items():
                s.execute(update(Image).where(Image.project_id.in_(stores), Image.storage_path == storage)
                          .values(damaged=mark))
    return {"checked": len(rows), "problems": problems, "counts": dict(Counter(p["problem"] for p in problems)),
            "fixed": len(marks) if fix else 0}
