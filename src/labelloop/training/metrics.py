"""Validation metrics: COCO mAP with faster-coco-eval (boxes or masks) and mIoU for regions."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from labelloop.core.geometry import boxes_inside, polygons_to_rle, rle_to_mask
from labelloop.core.predictions import Predictions
from labelloop.core.samples import Sample

__all__ = ["coco_detections", "coco_ground_truth", "coco_metrics", "evaluate_predictions", "miou_metrics"]


def coco_ground_truth(samples: Sequence[Sample], classes: Sequence[str], with_masks: bool) -> dict[str, Any]:
    """COCO ``instances`` dict of ``samples`` (category ids are ``label + 1``)."""
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for s in samples:
        images.append({"id": int(s.image_id), "width": int(s.width), "height": int(s.height)})
        for i, (box, label) in enumerate(zip(s.boxes, s.labels, strict=True)):
            x0, y0, x1, y1 = (float(v) for v in box)
            ann: dict[str, Any] = {"id": len(anns) + 1, "image_id": int(s.image_id), "category_id": int(label) + 1,
                                   "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                   "iscrowd": 0}
            if with_masks:
                rle = s.masks[i] if s.masks is not None else _box_rle(box, s.height, s.width)
                ann["segmentation"] = rle
                ann["area"] = float(rle_to_mask(rle).sum())
            anns.append(ann)
    cats = [{"id": i + 1, "name": name} for i, name in enumerate(classes)]
    return {"images": images, "annotations": anns, "categories": cats}


def _box_rle(box: np.ndarray, h: int, w: int) -> dict[str, Any]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return polygons_to_rle([[x0, y0, x1, y0, x1, y1, x0, y1]], h, w)


def coco_detections(preds: Mapping[int, Predictions], with_masks: bool) -> list[dict[str, Any]]:
    """COCO results list from predictions keyed by image id."""
    out = []
    for image_id, p in preds.items():
        for i in range(len(p)):
            x0, y0, x1, y1 = (float(v) for v in p.boxes[i])
            det: dict[str, Any] = {"image_id": int(image_id), "category_id": int(p.labels[i]) + 1,
                                   "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(p.scores[i])}
            if with_masks and p.masks is not None:
                det["segmentation"] = p.masks[i]
            out.append(det)
    return out


def coco_metrics(gt: dict[str, Any], dets: list[dict[str, Any]], iou_type: str = "bbox",
                 backend: str = "faster") -> dict[str, Any]:
    """mAP@[.5:.95], mAP@.5, per-class AP, precision/recall at the best-F1 point (IoU .5) and
    per-class PR curves (``pr``: ``{class: [[recall...], [precision...]]}``, IoU .5).

    ``backend="pycocotools"`` runs the reference implementation (used as a test oracle).
    """
    names = [c["name"] for c in gt["categories"]]
    zero: dict[str, Any] = {"map": 0.0, "map50": 0.0, "precision": 0.0, "recall": 0.0,
                            "ap_per_class": {n: 0.0 for n in names}, "pr": {}}
    if not dets or not gt["annotations"]:
        return zero
    if backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval as Eval
    else:
        from faster_coco_eval import COCO
        from faster_coco_eval import COCOeval_faster as Eval
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(dets)
        ev = Eval(coco_gt, coco_dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return _summarise(np.asarray(ev.eval["precision"]), np.asarray(ev.stats), names, ev.params.recThrs)


def _summarise(precision: np.ndarray, stats: np.ndarray, names: list[str], rec_thrs: np.ndarray
               ) -> dict[str, Any]:
    """``precision``: ``(T, R, K, A, M)`` COCO array; uses area=all, maxDets=last."""
    p = precision[:, :, :, 0, -1]
    ap_per_class = {}
    for k, name in enumerate(names):
        valid = p[:, :, k][p[:, :, k] > -1]
        ap_per_class[name] = float(valid.mean()) if valid.size else 0.0
    p50 = np.where(p[0] > -1, p[0], np.nan)  # (R, K) at IoU .5
    pr = {name: [rec_thrs.tolist(), np.nan_to_num(p50[:, k]).round(4).tolist()]
          for k, name in enumerate(names) if not np.isnan(p50[:, k]).all()}
    mean_p = np.nanmean(p50, axis=1) if not np.isnan(p50).all() else np.zeros(len(rec_thrs))
    mean_p = np.nan_to_num(mean_p)
    f1 = 2 * mean_p * rec_thrs / np.maximum(mean_p + rec_thrs, 1e-9)
    best = int(np.argmax(f1))
    return {"map": max(0.0, float(stats[0])), "map50": max(0.0, float(stats[1])),
            "precision": float(mean_p[best]), "recall": float(rec_thrs[best]) if f1[best] > 0 else 0.0,
            "ap_per_class": ap_per_class, "pr": pr}


def miou_metrics(samples: Sequence[Sample], preds: Mapping[int, Predictions], classes: Sequence[str]
                 ) -> dict[str, Any]:
    """Mean IoU over background + classes (pixels outside training regions ignored)."""
    from labelloop.training.data import _object_masks, _semantic

    n = len(classes) + 1
    conf = np.zeros((n, n), dtype=np.int64)
    for s in samples:
        p = preds.get(s.image_id)
        if p is None or p.semantic is None:
            continue
        gt = _semantic(s.labels + 1, _object_masks(s, s.height, s.width), s.height, s.width)
        area = s.complete_area()
        valid = np.ones_like(gt, dtype=bool) if area is None else area
        idx = gt[valid] * n + p.semantic[: s.height, : s.width][valid]
        conf += np.bincount(idx, minlength=n * n).reshape(n, n)
    inter = np.diag(conf).astype(float)
    union = conf.sum(0) + conf.sum(1) - inter
    present = union > 0
    iou = np.where(present, inter / np.maximum(union, 1), 0.0)
    names = ["background", *classes]
    return {"miou": float(iou[present].mean()) if present.any() else 0.0,
            "iou_per_class": {names[i]: float(iou[i]) for i in range(n)},
            "pixel_accuracy": float(inter.sum() / max(conf.sum(), 1))}


def inside_areas(samples: Sequence[Sample], preds: Mapping[int, Predictions]
                 ) -> tuple[list[Sample], Mapping[int, Predictions]]:
    """Ground truth and detections outside each image's complete area dropped (an object at least half
    inside is kept): no one annotated there, so what lies there is neither found nor missed."""
    out = dict(preds)
    kept = []
    for s in samples:
        if not s.regions and s.area is None:
            kept.append(s)
            continue
        area = s.complete_area()
        assert area is not None
        p = out.get(s.image_id)
        if p is not None and len(p):
            out[s.image_id] = p.select(boxes_inside(area, p.boxes))
        keep = boxes_inside(area, s.boxes)
        masks = None if s.masks is None else [m for m, k in zip(s.masks, keep, strict=True) if k]
        kept.append(replace(s, boxes=s.boxes[keep], labels=s.labels[keep], masks=masks))
    return kept, out


def evaluate_predictions(samples: Sequence[Sample], preds: Mapping[int, Predictions],
                         classes: Sequence[str], task: str) -> dict[str, Any]:
    """The metrics for ``task``; ``score`` is what early stopping and ``best.pt`` use."""
    if task == "regions":
        m = miou_metrics(samples, preds, classes)
        return {**m, "score": m["miou"]}
    with_masks = task == "segment"
    samples, preds = inside_areas(samples, preds)
    gt = coco_ground_truth(samples, classes, with_masks)
    dets = coco_detections(preds, with_masks)
    m = coco_metrics(gt, dets, "bbox")
    if with_masks:
        segm = coco_metrics(gt, dets, "segm")
        m.update({f"mask_{k}": v for k, v in segm.items() if k != "pr"})
        return {**m, "score": segm["map"]}
    return {**m, "score": m["map"]}

