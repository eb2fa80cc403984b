"""Dataset adapter over :class:`Sample`: loading, training regions, tiles, augmentation, collate.

A training item is ``(image, target)``: ``image`` a ``(3, H, W)`` uint8 tensor and
``target`` a dict with ``boxes (N, 4)`` xyxy float, ``labels (N,)`` int64 (1-based: 0 is
background), plus ``masks (N, H, W)`` uint8 for ``segment`` or ``semantic (H, W)``
int64 (255 = ignore) for ``regions``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from labelloop.core.geometry import boxes_inside, rle_to_mask
from labelloop.core.predictions import Predictions
from labelloop.core.samples import Sample
from labelloop.errors import InvalidInputError
from labelloop.inference.torch_engine import predict_arrays
from labelloop.models.semseg import IGNORE_INDEX

__all__ = ["ObjectBank", "SampleDataset", "build_transforms", "collate", "load_rgb", "mosaic", "paste_objects",
           "predict_samples", "prepare_arrays", "repeat_factors"]

log = logging.getLogger(__name__)
FILL = 127  # grey, ~0 after normalisation: blacked-out pixels look like "no information"


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image as ``(H, W, 3)`` uint8 RGB as stored (EXIF orientation not applied: the boxes are
    in stored pixels), within ``LABELLOOP_MAX_IMAGE_PIXELS`` (see :func:`labelloop.store.images.decode_rgb`)."""
    from labelloop.settings import get_settings
    from labelloop.store.images import decode_rgb

    return np.asarray(decode_rgb(path, max_pixels=get_settings().max_image_pixels))


def predict_samples(model: torch.nn.Module, samples: Sequence[Sample], device: torch.device | str, tile_size: int,
                    batch: int = 4, tta: bool = False) -> dict[int, Predictions]:
    """``model``'s predictions on the samples' images by image id (:func:`predict_arrays`), decoded a
    batch at a time so that big images are not all held at once."""
    out: dict[int, Predictions] = {}
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        preds = predict_arrays(model, [load_rgb(s.path) for s in chunk], device, tile_size, batch, tta=tta)
        out.update({s.image_id: p for s, p in zip(chunk, preds, strict=True)})
    return out


def _object_masks(sample: Sample, h: int, w: int) -> np.ndarray:
    """``(N, H, W)`` uint8 masks; objects without masks fall back to their box."""
    out = np.zeros((len(sample.boxes), h, w), dtype=np.uint8)
    for i, box in enumerate(sample.boxes):
        if sample.masks is not None and sample.masks[i] is not None:
            m = rle_to_mask(sample.masks[i])
            out[i, : min(h, m.shape[0]), : min(w, m.shape[1])] = m[:h, :w]
        else:
            x0, y0, x1, y1 = np.round(box).astype(int)
            out[i, max(0, y0) : y1, max(0, x0) : x1] = 1
    return out


def _semantic(labels: np.ndarray, masks: np.ndarray, h: int, w: int) -> np.ndarray:
    """Class map ``(H, W)``: 0 background, ``label`` where an object mask is set (later wins)."""
    sem = np.zeros((h, w), dtype=np.int64)
    for label, m in zip(labels, masks, strict=True):
        sem[m > 0] = label
    return sem


def _apply_regions(image: np.ndarray, arrays: dict[str, Any], region: np.ndarray
                   ) -> tuple[np.ndarray, dict[str, Any]]:
    """Keep only what lies inside ``region`` (bool mask: the training regions, a parent layer's regions).

    Crops to the regions' bounding box, greys out pixels outside the polygons, drops
    objects less than half inside, and marks outside pixels ``IGNORE`` in semantic maps,
    so partially annotated images never teach "no object here".
    """
    if not region.any():
        return image, arrays
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    inside = boxes_inside(region, arrays["boxes"])
    image = image[y0:y1, x0:x1].copy()
    region = region[y0:y1, x0:x1]
    image[~region] = FILL
    boxes = arrays["boxes"] - np.array([x0, y0, x0, y0], dtype=np.float32)
    boxes = np.clip(boxes, 0, [x1 - x0, y1 - y0, x1 - x0, y1 - y0]).astype(np.float32)
    out = {"boxes": boxes[inside], "labels": arrays["labels"][inside]}
    if "masks" in arrays:
        out["masks"] = arrays["masks"][inside][:, y0:y1, x0:x1] * region[None]
    if "semantic" in arrays:
        sem = arrays["semantic"][y0:y1, x0:x1].copy()
        sem[~region] = IGNORE_INDEX
        out["semantic"] = sem
    return image, out


def _blank(image: np.ndarray, arrays: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The image greyed out with no objects (and every pixel ignored in a semantic map)."""
    out: dict[str, Any] = {"boxes": arrays["boxes"][:0], "labels": arrays["labels"][:0]}
    if "masks" in arrays:
        out["masks"] = arrays["masks"][:0]
    if "semantic" in arrays:
        out["semantic"] = np.full_like(arrays["semantic"], IGNORE_INDEX)
    return np.full_like(image, FILL), out


def _random_tile(image: np.ndarray, arrays: dict[str, Any], tile: int, rng: random.Random
                 ) -> tuple[np.ndarray, dict[str, Any]]:
    """A ``tile`` x ``tile`` crop, around a random object 80% of the time."""
    h, w = image.shape[:2]
    if max(h, w) <= tile:
        return image, arrays
    boxes = arrays["boxes"]
    if len(boxes) and rng.random() < 0.8:
        b = boxes[rng.randrange(len(boxes))]
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        x0 = int(np.clip(cx - rng.uniform(0.1, 0.9) * tile, 0, max(0, w - tile)))
        y0 = int(np.clip(cy - rng.uniform(0.1, 0.9) * tile, 0, max(0, h - tile)))
    else:
        x0, y0 = rng.randint(0, max(0, w - tile)), rng.randint(0, max(0, h - tile))
    return _crop(image, arrays, x0, y0, min(w, x0 + tile), min(h, y0 + tile))


def _box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def _crop(image: np.ndarray, arrays: dict[str, Any], x0: int, y0: int, x1: int, y1: int, min_keep: float = 0.0
          ) -> tuple[np.ndarray, dict[str, Any]]:
    """``image[y0:y1, x0:x1]`` with its objects clipped to it (boxes, masks, semantic map); an object
    under 2 px a side after clipping, or keeping less than ``min_keep`` of its box, is dropped."""
    boxes = arrays["boxes"].reshape(-1, 4)
    clipped = np.clip(boxes - np.array([x0, y0, x0, y0], dtype=np.float32), 0,
                      [x1 - x0, y1 - y0, x1 - x0, y1 - y0]).astype(np.float32)
    keep = ((clipped[:, 2] - clipped[:, 0]) >= 2) & ((clipped[:, 3] - clipped[:, 1]) >= 2)
    if min_keep:
        keep &= _box_area(clipped) >= min_keep * np.maximum(_box_area(boxes), 1e-6)
    out = {"boxes": clipped[keep], "labels": arrays["labels"][keep]}
    if "masks" in arrays:
        out["masks"] = arrays["masks"][keep][:, y0:y1, x0:x1]
    if "semantic" in arrays:
        out["semantic"] = arrays["semantic"][y0:y1, x0:x1]
    return image[y0:y1, x0:x1], out


def _downscale(image: np.ndarray, arrays: dict[str, Any], max_side: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Shrink so the longest side is ``max_side`` (augmenting a 2000 px photo costs more than the step)."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image, arrays
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = dict(arrays, boxes=(arrays["boxes"] * np.float32(scale)).astype(np.float32))
    if "masks" in arrays:
        out["masks"] = np.stack([np.asarray(Image.fromarray(m).resize(size, Image.Resampling.NEAREST))
                                 for m in arrays["masks"]]) if len(arrays["masks"]) else \
            np.zeros((0, size[1], size[0]), np.uint8)
    if "semantic" in arrays:
        out["semantic"] = np.asarray(Image.fromarray(arrays["semantic"].astype(np.uint8))
                                     .resize(size, Image.Resampling.NEAREST)).astype(np.int64)
    return np.array(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR)), out


Paste = Callable[[np.ndarray, dict[str, Any], random.Random], tuple[np.ndarray, dict[str, Any]]]


def prepare_arrays(sample: Sample, task: str, *, tile: int = 0, rng: random.Random | None = None,
                   max_side: int = 0, paste: Paste | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Load ``sample``, apply training regions, (if ``paste``) paste objects of other images,
    (if ``tile``) a random tile crop, and (if ``max_side``) shrink so the longest side is at
    most ``max_side``.

    Returns ``(H, W, 3)`` uint8 and numpy arrays ``boxes``, ``labels`` (1-based),
    ``masks`` / ``semantic`` depending on ``task``.
    """
    image = load_rgb(sample.path)
    h, w = image.shape[:2]
    arrays: dict[str, Any] = {"boxes": sample.boxes.copy(), "labels": sample.labels + 1}
    if task in ("segment", "regions"):
        masks = _object_masks(sample, h, w)
        if task == "segment":
            arrays["masks"] = masks
        else:
            arrays["semantic"] = _semantic(arrays["labels"], masks, h, w)
    area = sample.complete_area()
    if area is not None and sample.area is not None and not area.any():
        image, arrays = _blank(image, arrays)  # a child layer's image outside every parent region: teaches nothing
    elif area is not None:
        image, arrays = _apply_regions(image, arrays, area)
    rng = rng or random.Random()
    if paste is not None:
        image, arrays = paste(image, arrays, rng)
    if tile:
        image, arrays = _random_tile(image, arrays, tile, rng)
    if max_side:
        image, arrays = _downscale(image, arrays, max_side)
    return image, arrays


# ---------------------------------------------------------------- copy-paste

#: objects pasted into one image at most, and how much of an annotated object a paste may cover
PASTE_MAX_OBJECTS = 4
PASTE_MAX_COVER = 0.2
PASTE_SCALE = (0.8, 1.25)
_BANK_IMAGES = 64  # donor images whose cut-outs are kept in memory


def _cut_objects(image: np.ndarray, arrays: dict[str, Any]) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """``(patch (h, w, 3), alpha (h, w) bool, label)`` per object: the mask where there is one, else the box."""
    h, w = image.shape[:2]
    out = []
    for i, (box, label) in enumerate(zip(arrays["boxes"], arrays["labels"], strict=True)):
        x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
        x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
        alpha = np.zeros((0, 0), bool)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            alpha = (arrays["masks"][i, y0:y1, x0:x1] > 0) if "masks" in arrays else np.ones((y1 - y0, x1 - x0), bool)
        if not alpha.any():  # too small, or a mask with no pixels (a degenerate polygon): nothing to paste
            out.append((np.zeros((0, 0, 3), np.uint8), np.zeros((0, 0), bool), int(label)))
        else:
            out.append((image[y0:y1, x0:x1].copy(), alpha, int(label)))
    return out


def _cover(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Fraction of each of ``boxes`` (xyxy) that ``box`` covers."""
    if not len(boxes):
        return np.zeros(0)
    iw = np.clip(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0, None)
    ih = np.clip(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0, None)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6)
    return iw * ih / area


def _rescale(patch: np.ndarray, alpha: np.ndarray, factor: float) -> tuple[np.ndarray, np.ndarray]:
    h, w = alpha.shape
    size = (max(2, round(w * factor)), max(2, round(h * factor)))
    return (np.asarray(Image.fromarray(patch).resize(size, Image.Resampling.BILINEAR)),
            np.asarray(Image.fromarray(alpha.astype(np.uint8)).resize(size, Image.Resampling.NEAREST)) > 0)


def paste_objects(image: np.ndarray, arrays: dict[str, Any],
                  objects: Sequence[tuple[np.ndarray, np.ndarray, int]], rng: random.Random
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """Paste ``objects`` (cut-outs) at random free places of ``image``: each covers at most 20% of any
    object already there (no annotation is hidden), masks under a paste are cleared. Objects that
    find no free place in 10 tries are skipped."""
    h, w = image.shape[:2]
    image = image.copy()
    boxes, labels = list(arrays["boxes"]), list(arrays["labels"])
    masks = list(arrays["masks"]) if "masks" in arrays else None
    for patch, alpha, label in objects:
        if not alpha.size:
            continue
        patch, alpha = _rescale(patch, alpha, rng.uniform(*PASTE_SCALE))
        ph, pw = alpha.shape
        if ph >= h or pw >= w or not alpha.any():  # too big here, or a thin mask the rescale lost
            continue
        for _ in range(10):
            x0, y0 = rng.randint(0, w - pw), rng.randint(0, h - ph)
            ys, xs = np.nonzero(alpha)
            box = np.array([x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1], np.float32)
            if (_cover(np.asarray(boxes, np.float32).reshape(-1, 4), box) <= PASTE_MAX_COVER).all():
                break
        else:
            continue
        region = image[y0 : y0 + ph, x0 : x0 + pw]
        region[alpha] = patch[alpha]
        if masks is not None:
            for m in masks:
                m[y0 : y0 + ph, x0 : x0 + pw][alpha] = 0
            full = np.zeros((h, w), np.uint8)
            full[y0 : y0 + ph, x0 : x0 + pw] = alpha
            masks.append(full)
        boxes.append(box)
        labels.append(label)
    out = dict(arrays, boxes=np.asarray(boxes, np.float32).reshape(-1, 4), labels=np.asarray(labels, np.int64))
    if masks is not None:
        out["masks"] = np.stack(masks) if masks else np.zeros((0, h, w), np.uint8)
    return image, out


class ObjectBank:
    """Cut-outs of the training objects for copy-paste, drawn class-balanced.

    A class is drawn uniformly, then one of its objects: a class with 20 objects is pasted as often
    as one with 2000. Donor images are decoded on first use; their cut-outs of the last 64 are kept.
    """

    def __init__(self, samples: Sequence[Sample], task: str) -> None:
        self.samples, self.task = list(samples), task
        self.by_class: dict[int, list[tuple[int, int]]] = {}
        for si, smp in enumerate(self.samples):
            for oi, label in enumerate(smp.labels):
                self.by_class.setdefault(int(label) + 1, []).append((si, oi))
        self._cache: dict[int, list[tuple[np.ndarray, np.ndarray, int]]] = {}

    def _objects_of(self, si: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
        if si not in self._cache:
            if len(self._cache) >= _BANK_IMAGES:
                self._cache.pop(next(iter(self._cache)))
            try:
                image, arrays = prepare_arrays(self.samples[si], self.task)
                self._cache[si] = _cut_objects(image, arrays)
            except InvalidInputError:  # an unreadable donor gives nothing; the image being built goes on
                self._cache[si] = []
        return self._cache[si]

    def draw(self, n: int, rng: random.Random) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """``n`` cut-outs (fewer when some are not available), class-balanced."""
        if not self.by_class:
            return []
        classes = sorted(self.by_class)
        out = []
        for _ in range(n):
            label = rng.choice(classes)
            si, oi = rng.choice(self.by_class[label])
            objects = self._objects_of(si)
            # training regions may drop objects, shifting the indices: keep only a cut-out of the class drawn
            if oi < len(objects) and objects[oi][2] == label:
                out.append(objects[oi])
        return out

    def __call__(self, image: np.ndarray, arrays: dict[str, Any], rng: random.Random
                 ) -> tuple[np.ndarray, dict[str, Any]]:
        return paste_objects(image, arrays, self.draw(rng.randint(1, PASTE_MAX_OBJECTS), rng), rng)


# ---------------------------------------------------------------- mosaic

#: an object cut by a mosaic cell's edge is kept when this much of its box stays inside the cell
MOSAIC_MIN_KEEP = 0.25
MOSAIC_CENTRE = (0.3, 0.7)  # where the cells meet, as a fraction of the canvas side


def _window(image: np.ndarray, arrays: dict[str, Any], h: int, w: int, rng: random.Random
            ) -> tuple[np.ndarray, dict[str, Any]]:
    """A random ``h`` x ``w`` window of ``image`` at its own scale (grey where the image is smaller),
    its objects clipped to it; an object keeping less than :data:`MOSAIC_MIN_KEEP` of its box, or
    under 2 px a side, is dropped."""
    ih, iw = image.shape[:2]
    x0, y0 = rng.randint(0, max(0, iw - w)), rng.randint(0, max(0, ih - h))
    part, out = _crop(image, arrays, x0, y0, min(iw, x0 + w), min(ih, y0 + h), min_keep=MOSAIC_MIN_KEEP)
    ph, pw = part.shape[:2]
    out_image = np.full((h, w, 3), FILL, np.uint8)
    out_image[:ph, :pw] = part
    if "masks" in out:
        masks = np.zeros((len(out["masks"]), h, w), np.uint8)
        masks[:, :ph, :pw] = out["masks"]
        out["masks"] = masks
    return out_image, out


def mosaic(parts: Sequence[tuple[np.ndarray, dict[str, Any]]], rng: random.Random
           ) -> tuple[np.ndarray, dict[str, Any]]:
    """Four prepared images (:func:`prepare_arrays`) in one: the canvas is the first one's size, cut
    into four cells around a random centre; each cell shows a random window of one image at its own
    scale (small objects stay small), with its boxes and masks moved along."""
    h, w = parts[0][0].shape[:2]
    cx, cy = round(w * rng.uniform(*MOSAIC_CENTRE)), round(h * rng.uniform(*MOSAIC_CENTRE))
    cells = [(0, 0, cx, cy), (cx, 0, w, cy), (0, cy, cx, h), (cx, cy, w, h)]
    canvas = np.full((h, w, 3), FILL, np.uint8)
    boxes, labels, masks = [np.zeros((0, 4), np.float32)], [np.zeros(0, np.int64)], []
    with_masks = "masks" in parts[0][1]
    for (image, arrays), (x0, y0, x1, y1) in zip(parts, cells, strict=False):
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        cell, objects = _window(image, arrays, y1 - y0, x1 - x0, rng)
        canvas[y0:y1, x0:x1] = cell
        boxes.append(objects["boxes"] + np.array([x0, y0, x0, y0], np.float32))
        labels.append(objects["labels"].astype(np.int64))
        if with_masks:
            full = np.zeros((len(objects["boxes"]), h, w), np.uint8)
            full[:, y0:y1, x0:x1] = objects["masks"]
            masks.append(full)
    out: dict[str, Any] = {"boxes": np.concatenate(boxes).astype(np.float32), "labels": np.concatenate(labels)}
    if with_masks:
        out["masks"] = np.concatenate(masks) if masks else np.zeros((0, h, w), np.uint8)
    return canvas, out


class _RandomCrop:
    """Crop each side to a random fraction in ``[min_scale, 1]`` (zoom in), with probability ``p``."""

    def __init__(self, min_scale: float = 0.6, p: float = 0.5) -> None:
        self.min_scale, self.p = min_scale, p

    def __call__(self, image: Tensor, target: dict[str, Any]) -> tuple[Tensor, dict[str, Any]]:
        if random.random() >= self.p:
            return image, target
        h, w = image.shape[-2:]
        ch, cw = int(h * random.uniform(self.min_scale, 1)), int(w * random.uniform(self.min_scale, 1))
        top, left = random.randint(0, h - ch), random.randint(0, w - cw)
        image = F.crop(image, top, left, ch, cw)
        target = {k: (F.crop(v, top, left, ch, cw) if isinstance(v, tv_tensors.TVTensor) else v)
                  for k, v in target.items()}
        return image, target


def build_transforms(level: str, image_size: int, task: str) -> Callable[..., Any]:
    """Box/mask-aware ``v2`` pipeline ending with a resize to longest side ``image_size``."""
    ops: list[Any] = []
    if level != "none":
        ops.append(v2.RandomHorizontalFlip())
    if level == "light":
        ops.append(v2.ColorJitter(0.2, 0.2, 0.2, 0.02))
    if level in ("medium", "strong"):
        ops += [v2.RandomPhotometricDistort(p=0.5), _RandomCrop(0.6 if level == "medium" else 0.4)]
        ops.append(v2.RandomZoomOut(fill={tv_tensors.Image: FILL, tv_tensors.Mask: _mask_fill(task)},
                                    side_range=(1.0, 1.5 if level == "medium" else 2.0),
                                    p=0.2 if level == "medium" else 0.4))
    if level == "strong":
        ops.append(v2.RandomVerticalFlip())
    ops.append(v2.Resize(size=None, max_size=image_size))
    if task != "regions":
        ops += [v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=2)]
    return v2.Compose(ops)


def _mask_fill(task: str) -> int:
    return IGNORE_INDEX if task == "regions" else 0


class SampleDataset(Dataset[tuple[Tensor, dict[str, Any]]]):
    """Training items from :class:`Sample` records (see module docstring for shapes)."""

    def __init__(self, samples: Sequence[Sample], task: str, image_size: int, augment: str = "medium",
                 tile_size: int = 0, copy_paste: float = 0.0, mosaic: float = 0.0) -> None:
        self.samples = list(samples)
        self.task = task
        self.tile_size = tile_size
        self.copy_paste = copy_paste if task != "regions" else 0.0
        self.mosaic = mosaic if task != "regions" and len(self.samples) > 1 else 0.0
        self.bank = ObjectBank(self.samples, task) if self.copy_paste > 0 else None
        self.max_side = int(image_size * 1.5)  # headroom for zoom-in crops
        self.transforms = build_transforms(augment, image_size, task)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, dict[str, Any]]:
        """The item at ``index``; an image that became unreadable since training started (deleted,
        replaced on disk) is replaced by the next readable one, so one file never stops an epoch."""
        for step in range(len(self.samples)):
            at = (index + step) % len(self.samples)
            try:
                return self._item(at)
            except InvalidInputError as err:
                log.warning("training image %s skipped: %s", self.samples[at].image_id, err.message)
        raise InvalidInputError("no training image can be read", "run `labelloop doctor` to find the broken files")

    def _mosaic(self, image: np.ndarray, arrays: dict[str, Any], rng: random.Random
                ) -> tuple[np.ndarray, dict[str, Any]]:
        """``image`` in a :func:`mosaic` with three other training images drawn at random; the image
        alone when one of them cannot be read."""
        parts = [(image, arrays)]
        for _ in range(3):
            other = self.samples[rng.randrange(len(self.samples))]
            try:
                parts.append(prepare_arrays(other, self.task, tile=self.tile_size, rng=rng, max_side=self.max_side))
            except InvalidInputError as err:
                log.warning("training image %s skipped in a mosaic: %s", other.image_id, err.message)
                return image, arrays
        return mosaic(parts, rng)

    def _item(self, index: int) -> tuple[Tensor, dict[str, Any]]:
        sample = self.samples[index]
        rng = random.Random(random.getrandbits(32))
        paste = self.bank if self.bank is not None and rng.random() < self.copy_paste else None
        image, arrays = prepare_arrays(sample, self.task, tile=self.tile_size, rng=rng, max_side=self.max_side,
                                       paste=paste)
        if self.mosaic and rng.random() < self.mosaic:
            image, arrays = self._mosaic(image, arrays, rng)
        h, w = image.shape[:2]
        img = tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1))
        target: dict[str, Any] = {
            "boxes": tv_tensors.BoundingBoxes(torch.as_tensor(arrays["boxes"], dtype=torch.float32),
                                              format="XYXY", canvas_size=(h, w)),
            "labels": torch.as_tensor(arrays["labels"], dtype=torch.int64),
        }
        if "masks" in arrays:
            target["masks"] = tv_tensors.Mask(torch.from_numpy(arrays["masks"]))
        if "semantic" in arrays:
            target["semantic"] = tv_tensors.Mask(torch.from_numpy(arrays["semantic"]))
        img, target = self.transforms(img, target)
        target["image_id"] = sample.image_id
        return img.as_subclass(Tensor), {k: (v.as_subclass(Tensor) if isinstance(v, Tensor) else v)
                                         for k, v in target.items()}


def repeat_factors(samples: Sequence[Sample], cap: float = 4.0) -> list[float]:
    """Repeat-factor sampling weights (LVIS-style, relative to the most frequent class).

    A class in a fraction ``f_c`` of the images gets ``r_c = sqrt(f_max / f_c)`` (at most ``cap``);
    an image is weighted by the largest ``r_c`` of the classes it holds (1 when it holds none).
    """
    counts: dict[int, int] = {}
    for smp in samples:
        for c in set(int(x) for x in smp.labels):
            counts[c] = counts.get(c, 0) + 1
    if not counts:
        return [1.0] * len(samples)
    top = max(counts.values())
    r = {c: min(cap, float(np.sqrt(top / n))) for c, n in counts.items()}
    return [max((r[int(c)] for c in smp.labels), default=1.0) for smp in samples]


def collate(batch: list[tuple[Tensor, dict[str, Any]]]) -> tuple[list[Tensor], list[dict[str, Any]]]:
    """Variable-size images stay a list (the models batch and pad them)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
