"""Generated test data: images with shapes, boxes, polygons and masks. No downloads, no fixtures on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from labelloop.core.geometry import mask_to_polygons, mask_to_rle, polygons_bbox, rle_bbox_xyxy
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord

__all__ = ["assert_same_dataset", "make_dataset", "make_image", "make_smooth_image", "random_boxes"]

COLORS = [(220, 40, 40), (40, 200, 60), (50, 80, 230), (230, 200, 40), (200, 60, 200)]


def make_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """An ``(h, w, 3)`` uint8 noisy background."""
    rng = np.random.default_rng(seed)
    return rng.integers(60, 120, size=(h, w, 3), dtype=np.uint8)


def make_smooth_image(h: int, w: int) -> np.ndarray:
    """An ``(h, w, 3)`` uint8 image that survives JPEG almost unchanged (gradients and 256 px blocks),
    different everywhere, for comparing pixels at a known place: red grows with x, green with y."""
    y, x = np.mgrid[0:h, 0:w]
    blocks = ((x // 256 + y // 256) % 2) * 160 + 40
    return np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), blocks], axis=-1).astype(np.uint8)


def random_boxes(n: int, width: int, height: int, seed: int = 0, min_size: int = 6) -> np.ndarray:
    """``(n, 4)`` float xyxy boxes inside a ``width`` x ``height`` image."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(min_size, max(min_size + 1, width / 3), n)
    h = rng.uniform(min_size, max(min_size + 1, height / 3), n)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    return np.stack([x, y, x + w, y + h], axis=1)


def make_dataset(root: Path, *, n_images: int = 6, labels: tuple[str, ...] = ("cat", "dog", "bird"),
                 kinds: tuple[str, ...] = ("box",), size: tuple[int, int] = (96, 128), seed: int = 0,
                 with_proposals: bool = False, ext: str = ".png") -> DatasetRecord:
    """Write ``n_images`` images under ``root`` and return their annotations.

    ``kinds`` picks the shapes drawn: ``box`` (fractional coordinates), ``polygon``
    (integer corner polygons traced from masks, so rasterising formats round-trip) and
    ``mask`` (RLE). Each image has 1-4 objects, each object is painted into the pixels.
    """
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    images: list[ImageRecord] = []
    h, w = size
    for i in range(n_images):
        pixels = Image.fromarray(make_image(h, w, seed=seed + i))
        draw = ImageDraw.Draw(pixels)
        anns: list[AnnotationRecord] = []
        for j in range(int(rng.integers(1, 5))):
            label_idx = int(rng.integers(0, len(labels)))
            kind = kinds[int(rng.integers(0, len(kinds)))]
            anns.append(_object(draw, rng, kind, labels[label_idx], w, h, COLORS[label_idx % len(COLORS)],
                                proposal=with_proposals and j % 2 == 1))
        path = root / f"img_{i:03d}{ext}"
        pixels.save(path)
        images.append(ImageRecord(file_name=path.name, width=w, height=h, path=path, annotations=anns))
    return DatasetRecord(labels=list(labels), images=images)


def _object(draw: ImageDraw.ImageDraw, rng: np.random.Generator, kind: str, label: str, w: int, h: int,
            color: tuple[int, int, int], proposal: bool) -> AnnotationRecord:
    extra: dict = {}
    if proposal:
        extra = {"score": round(float(rng.uniform(0.3, 0.99)), 4), "source": "model:1",
                 "review_state": "proposed"}
    if kind == "box":
        x1, y1 = rng.uniform(0, w * 0.6), rng.uniform(0, h * 0.6)
        x2, y2 = x1 + rng.uniform(5, w * 0.35), y1 + rng.uniform(5, h * 0.35)
        draw.rectangle([x1, y1, x2, y2], fill=color)
        return AnnotationRecord(label=label, bbox=(x1, y1, x2, y2), **extra)
    mask = np.zeros((h, w), dtype=np.uint8)
    cx, cy = int(rng.integers(10, w - 10)), int(rng.integers(10, h - 10))
    rx, ry = int(rng.integers(4, max(5, w // 5))), int(rng.integers(4, max(5, h // 5)))
    yy, xx = np.mgrid[0:h, 0:w]
    mask[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1] = 1
    ys, xs = np.nonzero(mask)
    for y, x in zip(ys[::7], xs[::7], strict=True):
        draw.point((int(x), int(y)), fill=color)
    if kind == "polygon":
        polys = mask_to_polygons(mask)
        return AnnotationRecord(label=label, bbox=polygons_bbox(polys), polygons=polys, **extra)
    rle = mask_to_rle(mask)
    return AnnotationRecord(label=label, bbox=rle_bbox_xyxy(rle), rle=rle, **extra)


def _key(ann: AnnotationRecord) -> tuple:
    return (ann.label, round(ann.bbox[0], 3), round(ann.bbox[1], 3))


def assert_same_dataset(a: DatasetRecord, b: DatasetRecord, *, tol: float = 1e-6, mask_iou: float = 0.999,
                        check_scores: bool = True, check_bbox: bool = True) -> None:
    """Same images (by file name) with the same annotations: boxes within ``tol`` px,
    polygons/masks by IoU >= ``mask_iou``, scores and sources where both carry them."""
    from labelloop.core.geometry import polygons_to_rle, rle_iou

    assert set(a.labels) <= set(b.labels) or set(b.labels) <= set(a.labels), (a.labels, b.labels)
    imgs_a = {i.file_name: i for i in a.images}
    imgs_b = {i.file_name: i for i in b.images}
    assert imgs_a.keys() == imgs_b.keys(), sorted(imgs_a.keys() ^ imgs_b.keys())[:5]
    for name, ia in imgs_a.items():
        ib = imgs_b[name]
        assert len(ia.annotations) == len(ib.annotations), (name, len(ia.annotations), len(ib.annotations))
        for x, y in zip(sorted(ia.annotations, key=_key), sorted(ib.annotations, key=_key), strict=True):
            assert x.label == y.label, (name, x.label, y.label)
            if check_bbox:
                assert np.allclose(x.bbox, y.bbox, atol=tol), (name, x.bbox, y.bbox)
            h, w = ia.height or 0, ia.width or 0
            if x.kind != "box" or y.kind != "box":
                rx = x.rle if x.rle is not None else polygons_to_rle(x.polygons or [], h, w)
                ry = y.rle if y.rle is not None else polygons_to_rle(y.polygons or [], h, w)
                assert rle_iou(rx, ry) >= mask_iou, (name, rle_iou(rx, ry))
            if check_scores and x.score is not None and y.score is not None:
                assert abs(x.score - y.score) < 1e-6, (name, x.score, y.score)
