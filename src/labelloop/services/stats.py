"""Project statistics: images by status and split, annotations per class against the target."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from labelloop.core.records import ReviewState
from labelloop.settings import get_settings
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, LabelClass, is_ground_truth

__all__ = ["project_stats"]



def project_stats(ctx: ProjectContext, target_per_class: int | None = None) -> dict[str, Any]:
    target = target_per_class or get_settings().target_per_class
    with ctx.store.session() as s:
        by_status = dict(s.execute(select(Image.status, func.count()).where(Image.project_id == ctx.id)
                                   .group_by(Image.status)).all())
        by_split = {k or "none": v for k, v in s.execute(
            select(Image.split, func.count()).where(Image.project_id == ctx.id).group_by(Image.split)).all()}
        damaged = s.scalar(select(func.count()).select_from(Image).where(Image.project_id == ctx.id,
                                                                          Image.damaged.is_not(None))) or 0
        classes = s.execute(select(LabelClass.id, LabelClass.name, LabelClass.color)
                            .where(LabelClass.project_id == ctx.id, LabelClass.active.is_(True))
                            .order_by(LabelClass.position)).all()
        gt = is_ground_truth()
        labelled = dict(s.execute(select(Annotation.class_id, func.count()).where(
            Annotation.project_id == ctx.id, gt).group_by(Annotation.class_id)).all())
        proposed = dict(s.execute(select(Annotation.class_id, func.count()).where(
            Annotation.project_id == ctx.id, Annotation.review_state == ReviewState.PROPOSED)
            .group_by(Annotation.class_id)).all())
    per_class = [{"name": name, "color": color, "annotations": labelled.get(cid, 0),
                  "proposals": proposed.get(cid, 0), "target": target,
                  "missing": max(0, target - labelled.get(cid, 0))} for cid, name, color in classes]
    return {
        "project": ctx.name,
        "layer": ctx.layer,
        "task": ctx.task,
        "images": {"total": sum(by_status.values()), "by_status": by_status, "by_split": by_split,
                   "damaged": damaged},
        "annotations": {"total": sum(labelled.values()), "proposals": sum(proposed.values())},
        "classes": per_class,
        "target_per_class": target,
        "ready_to_train": bool(per_class) and all(c["missing"] == 0 for c in per_class
                                                  if not (ctx.task == "regions" and c["name"] == "background")),
    }
