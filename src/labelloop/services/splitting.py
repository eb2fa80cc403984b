"""A stratified, stable train/val(/test) split of the labelled images.

Stable: images that already have a split keep it; only unassigned labelled images are
placed. Stratified: each image is placed by its rarest class so every class gets its
share of validation images. The order of placement is a hash of (seed, sha256), so
the outcome does not depend on the order images were imported in.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select, update

from labelloop.core.records import LABELLED_STATUSES
from labelloop.errors import InvalidInputError
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, is_ground_truth

__all__ = ["assign_splits"]



def _order_key(seed: int, sha: str, image_id: int) -> str:
    return hashlib.sha256(f"{seed}:{sha or image_id}".encode()).hexdigest()


def assign_splits(ctx: ProjectContext, *, val: float = 0.2, test: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Place every labelled image without a split; returns counts per split and what moved."""
    if not (0.0 <= val < 1.0 and 0.0 <= test < 1.0 and val + test < 1.0):
        raise InvalidInputError(f"invalid fractions val={val}, test={test}",
                                "expected 0 <= val, test and val + test < 1, e.g. --val 0.2")
    with ctx.store.session() as s:
        images = s.execute(select(Image.id, Image.sha256, Image.split).where(
            Image.project_id == ctx.id, Image.status.in_(LABELLED_STATUSES))).all()
        gt = is_ground_truth()
        classes_of: dict[int, set[int]] = defaultdict(set)
        for image_id, class_id in s.execute(select(Annotation.image_id, Annotation.class_id).where(
                Annotation.project_id == ctx.id, gt)):
            classes_of[image_id].add(class_id)
        frequency = Counter(c for cs in classes_of.values() for c in cs)
        counts: dict[Any, Counter[str]] = defaultdict(Counter)
        for image_id, _sha, split in images:
            if split:
                counts[_stratum(classes_of[image_id], frequency)][split] += 1
        todo = sorted((img for img in images if not img[2]), key=lambda r: _order_key(seed, r[1], r[0]))
        placed: Counter[str] = Counter()
        for image_id, _sha, _ in todo:
            stratum = _stratum(classes_of[image_id], frequency)
            split = _choose(counts[stratum], val, test)
            counts[stratum][split] += 1
            placed[split] += 1
            s.execute(update(Image).where(Image.id == image_id).values(split=split))
        totals: Counter[str] = Counter()
        for c in counts.values():
            totals.update(c)
    return {"assigned": dict(placed), "totals": {k: totals.get(k, 0) for k in ("train", "val", "test")},
            "labelled_images": len(images)}


def _stratum(classes: set[int], frequency: Counter[int]) -> int:
    if not classes:
        return -1  # labelled as empty (no objects)
    return min(classes, key=lambda c: (frequency[c], c))


def _choose(counts: Counter[str], val: float, test: float) -> str:
    """The split whose share falls furthest below its target after adding one image."""
    n = sum(counts.values()) + 1
    targets = {"train": 1.0 - val - test, "val": val, "test": test}
    deficits = {k: t * n - counts[k] for k, t in targets.items() if t > 0}
    return max(deficits, key=lambda k: (deficits[k], k == "train"))
