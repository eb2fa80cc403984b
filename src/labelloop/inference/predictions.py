"""Conversion of model outputs to :class:`~labelloop.core.predictions.Predictions`, tiling and merging.

Pure numpy + pycocotools here; torch is imported inside the functions that need it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from labelloop.core.geometry import box_iou, flip_xyxy
from labelloop.core.predictions import Predictions

__all__ = ["FUSE_IOU", "from_model_output", "fuse_mirrored", "fuse_views", "merge_tiles", "mirror",
           "semantic_to_predictions", "tile_windows"]

#: boxes of two views of one image are the same object at this IoU (weighted box fusion)
FUSE_IOU = 0.55


def encode_masks(binary: np.ndarray) -> list[dict[str, Any]]:
    """``(N, H, W)`` bool -> N COCO RLE dicts with str counts."""
    if len(binary) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(binary.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(r["size"][0]), int(r["size"][1])], "counts": r["counts"].decode("ascii")}
            for r in rles]


def semantic_to_predictions(semantic: np.ndarray, scores: np.ndarray) -> Predictions:
    """A class map ``(H, W)`` (0 = background) + per-pixel confidence -> one region per class."""
    classes = [int(c) for c in np.unique(semantic) if c > 0]
    binary = np.stack([semantic == c for c in classes]) if classes else np.zeros((0, *semantic.shape), bool)
    boxes, conf = [], []
    for m in binary:
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        conf.append(float(scores[m].mean()))
    return Predictions(np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(conf),
                       np.array(classes, dtype=np.int64) - 1, encode_masks(binary), semantic.astype(np.int64))


def from_model_output(output: dict[str, Any], mask_threshold: float = 0.5) -> Predictions:
    """One image's output of a labelloop model (torch tensors or numpy) -> :class:`Predictions`.

    Detectors give ``boxes (N, 4)``, ``scores (N,)``, ``labels (N,)`` with 0 = background and
    optionally ``masks (N, 1, H, W)`` probabilities; semantic models give ``semantic (H, W)``
    and ``scores (H, W)``.
    """
    out = {k: (v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)) for k, v in output.items()}
    if "semantic" in out:
        return semantic_to_predictions(out["semantic"], out["scores"])
    masks = None
    if "masks" in out:
        masks = encode_masks(out["masks"][:, 0] > mask_threshold)
    return Predictions(out["boxes"], out["scores"], out["labels"] - 1, masks)


def mirror(p: Predictions, width: int) -> Predictions:
    """Predictions made on the horizontally flipped image, mapped back to the original image."""
    masks = None
    if p.masks is not None:
        masks = encode_masks(np.stack([mask_utils.decode(r)[:, ::-1] for r in p.masks]).astype(bool)) \
            if p.masks else []
    return Predictions(flip_xyxy(p.boxes, width), p.scores, p.labels, masks)


def fuse_mirrored(direct: Predictions, flipped: Predictions, width: int) -> Predictions:
    """Mirror test-time augmentation: the predictions on an image and on its horizontal flip (mapped
    back), fused by :func:`fuse_views`."""
    return fuse_views([direct, mirror(flipped, width)])


def fuse_views(views: list[Predictions], iou: float = FUSE_IOU, max_detections: int = 1000) -> Predictions:
    """Weighted box fusion of several views' predictions of one image (test-time augmentation).

    In score order, a box joins the first cluster of its class whose fused box it overlaps at
    ``iou`` and that has no box of its view yet; else it starts a cluster. A cluster's box is the
    score-weighted mean of its members, its score their sum over the number of views (an object
    found in one view of two keeps half its score), its mask the best member's.
    """
    n_views = max(1, len(views))
    order_boxes = np.concatenate([v.boxes for v in views]) if views else np.zeros((0, 4), np.float32)
    scores = np.concatenate([v.scores for v in views]) if views else np.zeros(0, np.float32)
    labels = np.concatenate([v.labels for v in views]) if views else np.zeros(0, np.int64)
    view_of = np.concatenate([np.full(len(v), k) for k, v in enumerate(views)]) if views else np.zeros(0, int)
    has_masks = bool(views) and views[0].masks is not None
    masks = [m for v in views for m in (v.masks or [])]
    clusters: list[list[int]] = []
    fused: list[np.ndarray] = []
    for i in np.argsort(-scores, kind="stable"):
        home = _cluster_for(i, clusters, fused, order_boxes, labels, view_of, iou)
        if home is None:
            clusters.append([int(i)])
            fused.append(order_boxes[i].astype(np.float64))
            continue
        clusters[home].append(int(i))
        w = scores[clusters[home]][:, None].astype(np.float64)
        fused[home] = (order_boxes[clusters[home]] * w).sum(0) / max(float(w.sum()), 1e-9)
    if not clusters:
        return Predictions.empty(has_masks)
    out_scores = np.array([scores[c].sum() / n_views for c in clusters])
    keep = np.argsort(-out_scores, kind="stable")[:max_detections]
    return Predictions(np.array(fused)[keep], out_scores[keep], labels[[clusters[k][0] for k in keep]],
                       [masks[clusters[k][0]] for k in keep] if has_masks else None)


def _cluster_for(i: int, clusters: list[list[int]], fused: list[np.ndarray], boxes: np.ndarray, labels: np.ndarray,
                 view_of: np.ndarray, iou: float) -> int | None:
    if not clusters:
        return None
    ious = box_iou(boxes[i : i + 1].astype(np.float64), np.array(fused))[0]
    for k in np.argsort(-ious, kind="stable"):
        if ious[k] < iou:
            return None
        c = clusters[k]
        if labels[c[0]] == labels[i] and view_of[i] not in view_of[c]:
            return int(k)
    return None


def tile_windows(width: int, height: int, tile: int, overlap: float = 0.2) -> list[tuple[int, int, int, int]]:
    """Windows ``(x0, y0, x1, y1)`` of side ``tile`` covering the image with ``overlap`` (fraction)."""

    def starts(size: int) -> list[int]:
        if size <= tile:
            return [0]
        step = max(1, int(tile * (1 - overlap)))
        s = list(range(0, size - tile, step))
        return [*s, size - tile]

    return [(x, y, min(x + tile, width), min(y + tile, height)) for y in starts(height) for x in starts(width)]


def merge_tiles(parts: list[tuple[tuple[int, int, int, int], Predictions]], width: int, height: int,
                iou_threshold: float = 0.5, max_detections: int = 1000) -> Predictions:
    """Shift each tile's predictions to image coordinates and merge with class-wise NMS.

    Boxes touching an inner tile edge are dropped when another tile sees them whole
    (NMS keeps the higher-scoring, usually complete, box). Semantic maps are pasted
    (later tiles overwrite the overlap).
    """
    import torch
    from torchvision.ops import batched_nms

    if parts and parts[0][1].semantic is not None:
        return _merge_semantic(parts, width, height)
    boxes: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    masks: list[dict[str, Any]] = []
    has_masks = bool(parts) and parts[0][1].masks is not None
    for (x0, y0, _x1, _y1), p in parts:
        boxes.append(p.boxes + np.array([x0, y0, x0, y0], dtype=np.float32))
        scores.append(p.scores)
        labels.append(p.labels)
        if has_masks:
            masks.extend(_paste_rle(r, x0, y0, width, height) for r in (p.masks or []))
    if not boxes:
        return Predictions.empty(has_masks)
    b, s, lab = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
    keep = batched_nms(torch.from_numpy(b), torch.from_numpy(s), torch.from_numpy(lab), iou_threshold)
    keep_np = keep[:max_detections].numpy()
    return Predictions(b[keep_np], s[keep_np], lab[keep_np], [masks[i] for i in keep_np] if has_masks else None)


def _paste_rle(rle: dict[str, Any], x0: int, y0: int, width: int, height: int) -> dict[str, Any]:
    tile = mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
    full = np.zeros((height, width), dtype=bool)
    full[y0 : y0 + tile.shape[0], x0 : x0 + tile.shape[1]] = tile > 0
    return encode_masks(full[None])[0]


def _merge_semantic(parts: list[tuple[tuple[int, int, int, int], Predictions]], width: int,
                    height: int) -> Predictions:
    semantic = np.zeros((height, width), dtype=np.int64)
    conf = np.zeros((height, width), dtype=np.float32)
    for (x0, y0, x1, y1), p in parts:
        if p.semantic is None:
            continue
        semantic[y0:y1, x0:x1] = p.semantic
        conf[y0:y1, x0:x1] = 1.0
    return semantic_to_predictions(semantic, conf)
