"""Label classes: list, add, rename and merge, each change recorded in the class history."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from labelloop.core.records import clean_class_name
from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.store.project import ProjectContext, palette_color
from labelloop.store.tables import Annotation, AnnotationEvent, ClassEvent, LabelClass, utcnow

__all__ = ["add_labels", "list_labels", "merge_labels", "rename_label"]


def _get(s: Session, ctx: ProjectContext, name: str) -> LabelClass:
    cls = s.scalars(select(LabelClass).where(LabelClass.project_id == ctx.id, LabelClass.name == name,
                                             LabelClass.active.is_(True))).first()
    if cls is None:
        known = s.scalars(select(LabelClass.name).where(LabelClass.project_id == ctx.id,
                                                        LabelClass.active.is_(True))).all()
        raise NotFoundError(f"no class named {name!r}", f"classes: {', '.join(known) or 'none yet'}")
    return cls


def list_labels(ctx: ProjectContext) -> list[dict[str, Any]]:
    with ctx.store.session() as s:
        counts = dict(s.execute(select(Annotation.class_id, func.count()).where(
            Annotation.project_id == ctx.id).group_by(Annotation.class_id)).all())
        rows = s.scalars(select(LabelClass).where(LabelClass.project_id == ctx.id, LabelClass.active.is_(True))
                         .order_by(LabelClass.position)).all()
        return [{"id": c.id, "name": c.name, "color": c.color, "position": c.position,
                 "annotations": counts.get(c.id, 0)} for c in rows]


def add_labels(ctx: ProjectContext, names: list[str], actor: str = "") -> list[str]:
    added: list[str] = []
    with ctx.store.session() as s:
        existing = set(s.scalars(select(LabelClass.name).where(LabelClass.project_id == ctx.id)).all())
        position = len(existing)
        for raw in names:
            name = clean_class_name(raw)
            if name in added:
                raise InvalidInputError(f"class {name!r} is given twice", "name each new class once")
            if name in existing:
                raise ConflictError(f"class {name!r} already exists", "pick another name")
            cls = LabelClass(project_id=ctx.id, name=name, color=palette_color(position), position=position)
            s.add(cls)
            s.flush()
            s.add(ClassEvent(project_id=ctx.id, class_id=cls.id, action="create", detail={"name": name},
                             actor=actor))
            existing.add(name)
            added.append(name)
            position += 1
    return added


def rename_label(ctx: ProjectContext, old: str, new: str, actor: str = "") -> None:
    new = clean_class_name(new)
    with ctx.store.session() as s:
        cls = _get(s, ctx, old)
        if new == cls.name:
            raise InvalidInputError(f"class {old!r} is already called {new!r}", "give the new name")
        taken = s.scalars(select(LabelClass.id).where(LabelClass.project_id == ctx.id,
                                                      LabelClass.name == new)).first()
        if taken is not None:
            raise ConflictError(f"class {new!r} already exists", f"to combine them use: labels merge {old} {new}")
        cls.name = new
        s.add(ClassEvent(project_id=ctx.id, class_id=cls.id, action="rename", detail={"from": old, "to": new},
                         actor=actor))


def merge_labels(ctx: ProjectContext, sources: list[str], target: str, actor: str = "") -> int:
    """Move every annotation of ``sources`` to ``target``; the sources stay in history as merged."""
    moved = 0
    sources = [name.strip() for name in sources if name.strip()]
    if not sources:
        raise InvalidInputError("no class to merge was given", f"name the classes to merge into {target!r}, "
                                "e.g. labels merge kitten,cub cat")
    with ctx.store.session() as s:
        dst = _get(s, ctx, target)
        for name in sources:
            if name == target:
                raise InvalidInputError(f"cannot merge {name!r} into itself")
            src = _get(s, ctx, name)
            ann_ids = s.scalars(select(Annotation.id).where(Annotation.class_id == src.id)).all()
            s.execute(update(Annotation).where(Annotation.class_id == src.id)
                      .values(class_id=dst.id, version=Annotation.version + 1, updated_at=utcnow()))
            s.add_all([AnnotationEvent(project_id=ctx.id, annotation_id=aid, action="class_change",
                                       actor=actor or "merge", actor_kind="bulk",
                                       before={"class": name}, after={"class": target}) for aid in ann_ids])
            src.active = False
            src.merged_into_id = dst.id
            src.name = f"{src.name}@merged{src.id}"  # frees the name; history keeps the original
            s.add(ClassEvent(project_id=ctx.id, class_id=src.id, action="merge",
                             detail={"from": name, "into": target, "annotations": len(ann_ids)}, actor=actor))
            moved += len(ann_ids)
    return moved
