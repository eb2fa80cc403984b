"""The demo: a generated 'shapes' dataset (nothing downloaded) turned into a ready project.

Images are textured backgrounds with circles, squares and triangles of several sizes,
some small and crowded, with imbalanced class frequencies: the cases a real project has.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from labelloop.core.geometry import polygons_bbox
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.formats import WriteOptions, get_format
from labelloop.services.importing import import_path
from labelloop.services.projects import new_project
from labelloop.services.splitting import assign_splits
from labelloop.store.project import ProjectContext

__all__ = ["DEMO_CLASSES", "create_demo_project", "make_shapes_dataset"]

DEMO_CLASSES = ("circle", "square", "triangle")
_CLASS_WEIGHTS = (0.5, 0.3, 0.2)  # imbalanced on purpose
_COLORS = {"circle": (230, 70, 60), "square": (60, 170, 80), "triangle": (70, 110, 230)}


def _shape_polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> list[float]:
    if kind == "circle":
        n = 24
        pts = [(cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n)) for k in range(n)]
    elif kind == "square":
        pts = [(cx + r * math.cos(angle + math.pi / 4 + k * math.pi / 2),
                cy + r * math.sin(angle + math.pi / 4 + k * math.pi / 2)) for k in range(4)]
    else:
        pts = [(cx + r * math.cos(angle - math.pi / 2 + k * 2 * math.pi / 3),
                cy + r * math.sin(angle - math.pi / 2 + k * 2 * math.pi / 3)) for k in range(3)]
    return [round(v, 2) for p in pts for v in p]


def _draw_image(rng: np.random.Generator, size: tuple[int, int], n_objects: int,
                small: bool) -> tuple[Any, list[AnnotationRecord]]:
    from PIL import Image, ImageDraw, ImageFilter

    h, w = size
    base = rng.integers(90, 170, size=3)
    noise = rng.normal(0, 18, size=(h, w, 3))
    pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
    img = Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(1.2))
    draw = ImageDraw.Draw(img)
    anns: list[AnnotationRecord] = []
    for _ in range(n_objects):
        kind = str(rng.choice(DEMO_CLASSES, p=_CLASS_WEIGHTS))
        r = float(rng.uniform(6, 12) if small else rng.uniform(12, min(h, w) / 5))
        cx, cy = float(rng.uniform(r, w - r)), float(rng.uniform(r, h - r))
        poly = _shape_polygon(kind, cx, cy, r, float(rng.uniform(0, math.pi)))
        shade = tuple(int(c + rng.integers(-25, 25)) for c in _COLORS[kind])
        draw.polygon(list(zip(poly[::2], poly[1::2], strict=True)), fill=shade, outline=(20, 20, 20))
        x1, y1, x2, y2 = polygons_bbox([poly])
        if x2 - x1 >= 2 and y2 - y1 >= 2:
            anns.append(AnnotationRecord(label=kind, bbox=(x1, y1, x2, y2), polygons=[poly]))
    return img, anns


def make_shapes_dataset(out_dir: Path, *, n_images: int = 60, size: tuple[int, int] = (240, 320),
                        seed: int = 0, with_polygons: bool = True) -> DatasetRecord:
    """Write ``n_images`` JPEGs into ``out_dir/images`` and return their ground truth."""
    rng = np.random.default_rng(seed)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    images: list[ImageRecord] = []
    for i in range(n_images):
        small = i % 4 == 3  # every fourth image is crowded with small objects
        img, anns = _draw_image(rng, size, int(rng.integers(12, 25) if small else rng.integers(1, 6)), small)
        path = out_dir / "images" / f"shapes_{i:04d}.jpg"
        img.save(path, quality=92)
        if not with_polygons:
            for a in anns:
                a.polygons = None
        images.append(ImageRecord(file_name=path.name, width=size[1], height=size[0], path=path,
                                  annotations=anns))
    return DatasetRecord(labels=list(DEMO_CLASSES), images=images)


def create_demo_project(root: Path, *, n_images: int = 60, labelled: int = 24, task: str = "detect",
                        seed: int = 0, progress: Callable[[str, int, int], None] | None = None
                        ) -> tuple[ProjectContext, dict[str, Any]]:
    """Generate shapes, import the first ``labelled`` images with annotations and the rest
    without, and split the labelled ones 80/20. The full ground truth is kept in
    ``root/demo-source/ground_truth`` (COCO) for ``labelloop simulate``."""
    source = root / "demo-source"
    truth = make_shapes_dataset(source, n_images=n_images, seed=seed, with_polygons=task != "detect")
    coco = get_format("coco")
    coco.write(truth, source / "ground_truth", WriteOptions(images="none"))
    for rec in truth.images[labelled:]:
        rec.annotations = []
    coco.write(truth, source, WriteOptions(images="none"))
    (source / "annotations.json").rename(source / "labelled.json")
    ctx = new_project(root, task=task, name="shapes demo", labels=list(DEMO_CLASSES))
    report = import_path(ctx, source / "labelled.json", format="coco", progress=progress)
    split = assign_splits(ctx)
    return ctx, {"import": report.as_dict(), "split": split}
