"""Where a round's review time goes, by object size: what a trained model leaves to the person.

Reads a project kept by ``loop_value.py --keep`` (or ``labelloop simulate --project-dir``) and the
dataset's COCO ground truth. One model (the first by default: round 1) predicts every image that was
not labelled when it trained; its per-class thresholds are the time-optimal ones on the validation
split (``preannotate --threshold auto``). Each ground-truth object is then counted as a reviewer
would meet it -- a proposal fits it (IoU >= 0.7: accepted), a loose one (0.4-0.7: fixed), or none
(clicked or drawn) -- and beside that, whether *any* candidate of the model, at any score, fits it
(IoU >= 0.7): the part of the misses and fixes that better scoring could still turn into accepts,
against the part that needs a better box regression.

    .venv/bin/python benchmarks/loop_value.py --datasets dense --configs click --rounds 1 --keep
    .venv/bin/python benchmarks/review_anatomy.py /tmp/loop-dense-click-XXXX /tmp/labelloop-bench/dense/annotations.json
"""

from __future__ import annotations

import argparse
import json
from itertools import pairwise
from pathlib import Path

import numpy as np
from sqlalchemy import select

from labelloop.core.geometry import box_iou
from labelloop.core.predictions import Predictions, Truth
from labelloop.models.artifacts import load_model_dir, predict_size
from labelloop.selection.effort import CostModel
from labelloop.selection.review_cost import ACCEPT_IOU, MATCH_IOU
from labelloop.selection.review_curves import ReviewCurves
from labelloop.services.datasets import image_path
from labelloop.services.models import model_dir
from labelloop.store.project import open_project
from labelloop.store.tables import Annotation, Image, TrainedModel
from labelloop.training.data import load_rgb

#: object sides (square root of the box area, pixels) the table is cut at
SIZES = (16, 24, 32, 48, 64)


def coco_truth(path: Path, classes: list[str]) -> dict[str, np.ndarray]:
    """``file_name -> (M, 5)`` xyxy + class index, in the model's class order."""
    coco = json.loads(path.read_text())
    index = {c["id"]: classes.index(c["name"]) for c in coco["categories"] if c["name"] in classes}
    names = {im["id"]: im["file_name"] for im in coco["images"]}
    rows: dict[str, list[tuple[float, ...]]] = {name: [] for name in names.values()}
    for a in coco["annotations"]:
        if a["category_id"] in index:
            x, y, w, h = a["bbox"]
            rows[names[a["image_id"]]].append((x, y, x + w, y + h, index[a["category_id"]]))
    return {k: np.array(v, dtype=np.float64).reshape(-1, 5) for k, v in rows.items()}


def unseen_images(project: Path, model_id: int) -> tuple[Path, list[tuple[str, Path, bool]]]:
    """The model's folder and ``(file name, path, is validation)`` of every image it did not train on."""
    ctx = open_project(project)
    with ctx.store.session() as s:
        trained_at = s.scalar(select(TrainedModel.created_at).where(TrainedModel.id == model_id))
        if trained_at is None:
            raise SystemExit(f"{project} has no model {model_id}: give --model with an id `labelloop models` lists")
        seen = set(s.scalars(select(Annotation.image_id).where(Annotation.created_at < trained_at)))
        rows = s.execute(select(Image.id, Image.file_name, Image.storage_path, Image.split)).all()
    images = [(name, image_path(ctx, sp), split == "val") for iid, name, sp, split in rows
              if split == "val" or iid not in seen]
    return model_dir(ctx, model_id), images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project", type=Path)
    ap.add_argument("truth", type=Path, help="the dataset's COCO annotations")
    ap.add_argument("--model", type=int, default=1)
    ap.add_argument("--size", type=int, default=0, help="predict at this size (default: the model's)")
    args = ap.parse_args()
    folder, images = unseen_images(args.project, args.model)
    model, meta = load_model_dir(folder)
    if args.size:
        from labelloop.models.builders import set_input_size

        set_input_size(model, args.size)
    from labelloop.inference.torch_engine import predict_arrays

    truth = coco_truth(args.truth, meta["classes"])
    costs, n_classes = CostModel(), len(meta["classes"])
    curves, pool = ReviewCurves(n_classes, costs), []
    missing = [name for name, _, _ in images if name not in truth]
    if missing:
        raise SystemExit(f"{len(missing)} images of the project (e.g. {missing[0]!r}) are not in {args.truth}: "
                         "give the COCO file the project was simulated from")
    for name, path, is_val in images:
        preds = predict_arrays(model, [load_rgb(path)], "cpu", int(meta.get("tile_size") or 0))[0]
        t = Truth(truth[name][:, :4], truth[name][:, 4].astype(np.int64))
        if is_val:
            curves.add(preds, t)
        else:
            pool.append((preds, t))
    thresholds = np.array([curves.min_time(k).threshold for k in range(n_classes)])
    report(pool, thresholds, costs, args.size or predict_size(meta))


def _objects(pool: list[tuple[Predictions, Truth]], thresholds: np.ndarray) -> np.ndarray:
    """Per object: side, best IoU of a proposal (above its threshold), best IoU of any candidate."""
    rows = []
    for p, t in pool:
        shown = p.scores >= thresholds[p.labels]
        iou = box_iou(p.boxes.astype(np.float64), t.boxes) if len(p.boxes) else np.zeros((0, len(t.boxes)))
        for j, (x1, y1, x2, y2) in enumerate(t.boxes):
            col = iou[:, j]
            rows.append((np.sqrt((x2 - x1) * (y2 - y1)), col[shown].max(initial=0.0), col.max(initial=0.0)))
    return np.array(rows).reshape(-1, 3)


def report(pool: list[tuple[Predictions, Truth]], thresholds: np.ndarray, costs: CostModel, size: int) -> None:
    curves = ReviewCurves(len(thresholds), costs)
    for p, t in pool:
        curves.add(p, t)
    loop = len(pool) * (costs.inspect + sum(curves.seconds_at(k, float(thr)) for k, thr in enumerate(thresholds)))
    scratch = sum(costs.inspect + costs.draw * len(t.labels) for _, t in pool)
    obj = _objects(pool, thresholds)
    print(f"{len(pool)} images not seen in training, {len(obj)} objects; predicted at {size} px; thresholds "
          f"{np.round(thresholds, 3).tolist()}; time ratio {loop / max(scratch, 1e-9):.3f}")
    print("| object side (px) | objects | proposal fits (accept) | loose (fix) | none (click/draw) "
          "| some candidate fits |\n|---|---|---|---|---|---|")
    bucket = np.digitize(obj[:, 0], SIZES)
    labels = [f"< {SIZES[0]}", *(f"{a}-{b}" for a, b in pairwise(SIZES)), f">= {SIZES[-1]}"]
    for label, x in [*((labels[b], obj[bucket == b]) for b in range(len(labels))), ("all", obj)]:
        if len(x):
            print(f"| {label} | {len(x)} | {np.mean(x[:, 1] >= ACCEPT_IOU):.2f} | "
                  f"{np.mean((x[:, 1] >= MATCH_IOU) & (x[:, 1] < ACCEPT_IOU)):.2f} | "
                  f"{np.mean(x[:, 1] < MATCH_IOU):.2f} | {np.mean(x[:, 2] >= ACCEPT_IOU):.2f} |")

if __name__ == "__main__":
    from labelloop.errors import LabelloopError

    try:
        main()
    except LabelloopError as exc:
        raise SystemExit(f"error: {exc}") from None
