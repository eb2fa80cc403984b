"""Replay the annotation loop on a labelled dataset, with its ground truth as the annotator.

In a fresh project (``project_dir``, or a temporary folder removed at the end; the results'
``project`` is then ``None``):

1. A fixed validation set (``val_fraction`` of the images, at least 4) is imported *with*
   its labels and stays the same in every round, so the rounds' mAPs are comparable. Its
   labels are given, not counted as effort (the same for every strategy). The other images
   are imported without labels, all in the train split.
2. Round 0: the simulated annotator opens images (shuffled with ``seed``) that contain a
   class still below ``seed_per_class`` objects, and draws every ground-truth box, until each
   class has about ``seed_per_class`` objects.
3. Round r >= 1: train (fine-tuning from round r-1's model), choose ``round_size`` images
   (``suggest`` or ``random``), pre-annotate them, and review: per image the annotator
   inspects; matches proposals to ground-truth objects (greedy by IoU >= 0.4, same class
   preferred); accepts a match of the same class with IoU >= 0.7; changes the class of a
   match with IoU >= 0.7 but the wrong class; fixes (redraws) a match with IoU 0.4-0.7;
   rejects unmatched proposals; and for each object nobody proposed, clicks its centre
   (click-to-box, :mod:`labelloop.services.click`) when the model's candidate there fits it
   with IoU >= 0.7 -- the product's own pick rule decides which candidate that is -- and
   draws it otherwise (``use_click=False``: always draws).

Every action goes through :mod:`labelloop.services.annotations` (as a person's would), so
the history and :func:`labelloop.services.effort.effort_report` are real.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from labelloop.core.geometry import box_iou
from labelloop.core.progress import EpochStages, StageProgress
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord, ReviewState
from labelloop.errors import InvalidInputError
from labelloop.formats import ReadOptions, detect_format, get_format
from labelloop.selection.effort import share_of_saving
from labelloop.selection.matching import greedy_pairs
from labelloop.selection.review_cost import ACCEPT_IOU, MATCH_IOU
from labelloop.services.annotations import (
    AnnotationInput,
    create_annotation,
    image_annotations,
    record_image_event,
    review_annotation,
    update_annotation,
)
from labelloop.services.click import add_candidate, candidate_at
from labelloop.services.effort import effort_report
from labelloop.services.importing import import_dataset
from labelloop.services.models import model_prediction
from labelloop.services.preannotate import preannotate
from labelloop.services.projects import load_project, new_project
from labelloop.settings import get_settings
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Image

__all__ = ["ACCEPT_IOU", "MATCH_IOU", "STRATEGIES", "annotate_from_scratch", "review_with_ground_truth",
           "simulate", "simulate_strategies"]

#: ``suggest`` = the product's default strategy; the others as ``labelloop suggest --strategy``
STRATEGIES = ("suggest", "random", "mixed", "diversity", "uncertainty", "class-deficit", "hybrid", "effort")
ANNOTATOR = "simulated-annotator"


def _shape(gt: AnnotationRecord, task: str) -> dict[str, Any]:
    if task == "detect":
        return {}
    return {"polygons": gt.polygons, "rle": gt.rle}


def annotate_from_scratch(ctx: ProjectContext, image_id: int, truth: Sequence[AnnotationRecord], *, round_: int,
                          actor: str = ANNOTATOR) -> None:
    """Open the image and draw every ground-truth object."""
    record_image_event(ctx, image_id, "inspect", actor=actor, round_=round_)
    for gt in truth:
        create_annotation(ctx, image_id, AnnotationInput(label=gt.label, bbox=gt.bbox, **_shape(gt, ctx.task)),
                          actor=actor, round_=round_)


def review_with_ground_truth(ctx: ProjectContext, image_id: int, truth: Sequence[AnnotationRecord], *, round_: int,
                             actor: str = ANNOTATOR, click_model: int | None = None) -> dict[str, int]:
    """Review an image's open proposals against ``truth`` (see the module docstring).

    ``click_model``: the model whose candidates click-to-box uses (``None``: every miss is drawn).
    """
    record_image_event(ctx, image_id, "inspect", actor=actor, round_=round_)
    props = [a for a in image_annotations(ctx, image_id) if a["review_state"] == ReviewState.PROPOSED]
    iou = box_iou(np.array([p["bbox"] for p in props]).reshape(-1, 4),
                  np.array([g.bbox for g in truth]).reshape(-1, 4))
    same = np.array([[p["label"] == g.label for g in truth] for p in props], dtype=bool).reshape(iou.shape)
    pairs = greedy_pairs(np.where(iou >= MATCH_IOU, iou + 0.05 * same, 0.0), MATCH_IOU)
    done: Counter[str] = Counter()
    matched_p, matched_g = set(), set()
    for p, g, _ in pairs:
        prop, gt, v = props[p], truth[g], float(iou[p, g])
        matched_p.add(p)
        matched_g.add(g)
        if v >= ACCEPT_IOU and prop["label"] == gt.label:
            review_annotation(ctx, prop["id"], "accept", actor=actor, round_=round_)
            done["accept"] += 1
        elif v >= ACCEPT_IOU:  # right place, wrong class: relabel only
            update_annotation(ctx, prop["id"], AnnotationInput(label=gt.label, bbox=tuple(prop["bbox"]),
                                                               polygons=prop["polygons"], rle=prop["rle"]),
                              actor=actor, expected_version=prop["version"], round_=round_)
            done["class_change"] += 1
        else:
            update_annotation(ctx, prop["id"], AnnotationInput(label=gt.label, bbox=gt.bbox, **_shape(gt, ctx.task)),
                              actor=actor, expected_version=prop["version"], round_=round_)
            done["fix"] += 1
    for p, prop in enumerate(props):
        if p not in matched_p:
            review_annotation(ctx, prop["id"], "reject", actor=actor, round_=round_)
            done["reject"] += 1
    for g, gt in enumerate(truth):
        if g in matched_g:
            continue
        if click_model is not None and _click(ctx, image_id, gt, click_model, actor=actor, round_=round_):
            done["click"] += 1
            continue
        create_annotation(ctx, image_id, AnnotationInput(label=gt.label, bbox=gt.bbox, **_shape(gt, ctx.task)),
                          actor=actor, round_=round_)
        done["draw"] += 1
    return dict(done)


def _click(ctx: ProjectContext, image_id: int, gt: AnnotationRecord, model_id: int, *, actor: str,
           round_: int) -> bool:
    """Click the object's centre if the product's pick rule gives a box with IoU >= ACCEPT_IOU there."""
    x, y = (gt.bbox[0] + gt.bbox[2]) / 2, (gt.bbox[1] + gt.bbox[3]) / 2
    model, preds, k = candidate_at(ctx, image_id, x, y, model_id=model_id)
    if k is None or float(box_iou(preds.boxes[k : k + 1], np.array([gt.bbox]))[0, 0]) < ACCEPT_IOU:
        return False
    add_candidate(ctx, image_id, model, preds, k, actor=actor, label=gt.label, round_=round_)
    return True


def _read(dataset: Path, format: str | None) -> DatasetRecord:
    if not dataset.exists():
        raise InvalidInputError(f"dataset {dataset} does not exist", "pass a labelled dataset folder or file")
    fmt = get_format(format) if format else detect_format(dataset)
    record = fmt.read(dataset, ReadOptions(skip_invalid=True))
    record.ensure_labels()
    if not any(img.annotations for img in record.images):
        raise InvalidInputError(f"{dataset} has no annotations to simulate an annotator with",
                                "simulate needs a labelled dataset")
    return record


def _truth(img: ImageRecord, task: str) -> list[AnnotationRecord]:
    """Usable ground truth of an image: no crowd regions, boxes of at least 1 px."""
    out = []
    for a in img.annotations:
        x1, y1, x2, y2 = a.bbox
        if a.iscrowd or x2 - x1 < 1 or y2 - y1 < 1:
            continue
        out.append(a if task != "detect" else replace(a, polygons=None, rle=None))
    return out


def _seed_images(pool: Sequence[str], truth: dict[str, list[AnnotationRecord]], classes: Sequence[str],
                 per_class: int) -> list[str]:
    present = {a.label for name in pool for a in truth[name]} & set(classes)
    counts: Counter[str] = Counter()
    chosen = []
    for name in pool:
        labels = [a.label for a in truth[name]]
        if any(counts[c] < per_class for c in set(labels)):
            chosen.append(name)
            counts.update(labels)
        if all(counts[c] >= per_class for c in present):
            break
    return chosen


def _check_rounds_left(pool: Sequence[str], rest: Sequence[str], truth: dict[str, list[AnnotationRecord]],
                       per_class: int) -> None:
    """Refuse, before any training, a start that leaves no image with an object in ``rest`` (the pool
    after the start) for the rounds: with many classes and few images, every round would review empty images."""
    if any(truth[name] for name in rest):
        return
    with_objects = sum(1 for name in pool if truth[name])
    if not with_objects:
        raise InvalidInputError("no image outside the validation split holds an object: nothing to train on",
                                "give a smaller --val-fraction, or a dataset with more labelled images")
    raise InvalidInputError(f"the start ({per_class} objects per class) takes all {with_objects} images with "
                            "objects outside the validation split: no image with an object is left for the rounds",
                            "give a smaller --seed-per-class (e.g. 2), or a dataset with more images")


def _setup(dataset: DatasetRecord, root: Path, task: str, val_fraction: float, seed: int
           ) -> tuple[ProjectContext, dict[str, int], dict[str, list[AnnotationRecord]], list[str]]:
    """The project: validation images with labels, the rest without; returns ids, truth and the pool."""
    rng = random.Random(seed)
    images = [img for img in dataset.images if img.path is not None]
    rng.shuffle(images)
    n_val = max(4, round(val_fraction * len(images)))
    if len(images) < n_val + 4:
        raise InvalidInputError(f"{len(images)} images are too few to simulate with {n_val} of them kept for "
                                "validation and at least 4 for the loop",
                                f"use a dataset of >= {n_val + 4} images, or a smaller --val-fraction")
    truth = {img.file_name: _truth(img, task) for img in images}
    val, pool = images[:n_val], images[n_val:]
    records = [ImageRecord(file_name=i.file_name, width=i.width, height=i.height, path=i.path, split="val",
                           annotations=truth[i.file_name]) for i in val]
    records += [ImageRecord(file_name=i.file_name, width=i.width, height=i.height, path=i.path, split="train")
                for i in pool]
    ctx = new_project(root, task=task, name=f"simulate {root.name}", labels=list(dataset.labels))
    import_dataset(ctx, DatasetRecord(labels=list(dataset.labels), images=records), skip_invalid=True,
                   actor="import")
    with ctx.store.session() as s:
        ids = dict(s.execute(select(Image.file_name, Image.id).where(Image.project_id == ctx.id)).all())
    return ctx, ids, truth, [i.file_name for i in pool if i.file_name in ids]


def _choose(ctx: ProjectContext, strategy: str, model_id: int, pool: list[str], ids: dict[str, int], n: int,
            rng: random.Random, progress: StageProgress | None) -> list[str]:
    if strategy == "random":
        return rng.sample(pool, min(n, len(pool)))
    from labelloop.services.suggest import DEFAULT_STRATEGY, suggest_images

    names = {ids[f]: f for f in pool}
    picks = suggest_images(ctx, n=n, model_id=model_id, candidate_ids=list(names), progress=progress,
                           strategy=DEFAULT_STRATEGY if strategy == "suggest" else strategy,
                           seed=rng.randrange(2**31))
    return [names[p["image_id"]] for p in picks]


@dataclass
class _Trunk:
    """What every strategy of one simulation shares: the dataset, its truth, the ids and the first model."""

    record: DatasetRecord
    ids: dict[str, int]
    truth: dict[str, list[AnnotationRecord]]
    pool: list[str]
    seed: int
    first: dict[str, Any] | None = None
    first_seconds: float = 0.0


def _train(ctx: ProjectContext, rnd: int, base: str | None, args: str, parent: int | None,
           progress: StageProgress | None) -> dict[str, Any]:
    from labelloop.services.training import train_project

    model = train_project(ctx, base=base, args=args, from_model=parent,
                          progress=EpochStages(progress, f"round {rnd} train"))
    if model["status"] == "interrupted":
        raise InvalidInputError(f"round {rnd}: training was stopped (a stop signal or a stop request)",
                                "run the simulation again, and let it finish")
    if model["status"] != "ready":
        raise InvalidInputError(f"round {rnd}: training ended {model['status']} ({model.get('error')})",
                                "give more epochs in --args")
    return model


@contextmanager
def _project_root(project_dir: Path | None) -> Iterator[Path]:
    """``project_dir``, or a temporary folder removed at the end: a simulated project holds a model per
    round and a copy of every image (gigabytes on big data), which nobody asked to keep."""
    if project_dir is not None:
        yield project_dir.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="labelloop-simulate-") as folder:
        yield Path(folder).resolve()


def simulate(dataset: Path, *, strategy: str = "suggest", **options: Any) -> dict[str, Any]:
    """Run the loop; returns ``{"dataset", "project", "strategy", ..., "rounds": [...], "summary": {...}}``.

    Each round: ``round``, ``model_id``, ``map50`` (validation mAP@.5 of the model used in the
    round), ``predict_size`` (the longest side that model predicts at), ``images``, ``objects``,
    ``actions``, ``seconds_by_action``, ``seconds_loop``,
    ``seconds_scratch``, ``seconds_perfect`` (inspect + accept every object), ``ratio``,
    ``share_of_saving`` ((scratch - loop) / (scratch - perfect)), ``cumulative_ratio`` (rounds
    1..r), ``thresholds`` and ``recall_at_threshold`` (per class, on the validation split), and
    ``wall_seconds`` (train, pre-annotate, suggest, review). ``summary.time_ratio``: loop /
    scratch over all rounds after round 0; ``summary.share_of_saving`` likewise;
    ``summary.final_map50``: the last model's validation mAP@.5. The options are
    :func:`simulate_strategies`'.
    """
    return simulate_strategies(dataset, strategies=[strategy], **options)[strategy]


def simulate_strategies(dataset: Path, *, strategies: Sequence[str], format: str | None = None,
                        seed_per_class: int = 20, round_size: int = 50, rounds: int = 3, base: str | None = None,
                        args: str = "", project_dir: Path | None = None, task: str = "detect",
                        val_fraction: float = 0.15, seed: int = 0, threshold: str = "auto",
                        use_click: bool = True, final_model: bool = False,
                        progress: StageProgress | None = None) -> dict[str, dict[str, Any]]:
    """:func:`simulate` for several strategies that share round 0 *and round 1's model*.

    The seed images, their labels and the first model (trained once, on round 0's labels) are
    the same for every strategy, so the strategies' first picks differ only by how they pick,
    not by training noise; each strategy then goes on in its own copy of the project
    (``project_dir/<strategy>``; with one strategy, ``project_dir`` itself; without ``project_dir``, a
    temporary folder that is removed on return).
    ``threshold``: as ``preannotate --threshold``; ``use_click=False`` draws every miss.
    ``final_model``: also train on the labels of the last round and report its validation mAP@.5
    as ``summary.after_last_round_map50`` (what the last round's picks bought; ``None`` otherwise).
    """
    if not strategies or len(set(strategies)) != len(strategies):
        raise InvalidInputError("give each strategy once", f"expected some of: {', '.join(STRATEGIES)}")
    for strategy in strategies:
        if strategy not in STRATEGIES:
            raise InvalidInputError(f"unknown strategy {strategy!r}", f"expected one of: {', '.join(STRATEGIES)}")
    if seed_per_class < 1 or round_size < 1 or rounds < 1:
        raise InvalidInputError("--seed-per-class, --round-size and --rounds must be >= 1")
    if not 0.0 < val_fraction < 0.9:
        raise InvalidInputError(f"--val-fraction must be in (0, 0.9), got {val_fraction}")
    branching = len(strategies) > 1
    if branching and get_settings().database_url:
        raise InvalidInputError("several strategies in one simulation copy the project, which needs its own "
                                "SQLite database", "unset LABELLOOP_DATABASE_URL, or simulate one strategy at a time")
    record = _read(dataset, format)
    with _project_root(project_dir) as root:
        trunk_root = root / "round-0" if branching else root
        ctx, ids, truth, pool = _setup(record, trunk_root, task, val_fraction, seed)
        trunk = _Trunk(record, ids, truth, pool, seed)
        try:
            seed_names = _seed_images(pool, truth, record.labels, seed_per_class)
            taken = set(seed_names)
            rest = [f for f in pool if f not in taken]
            _check_rounds_left(pool, rest, truth, seed_per_class)
            for n, name in enumerate(seed_names, 1):
                annotate_from_scratch(ctx, ids[name], truth[name], round_=0)
                if progress:
                    progress("round 0 seed", n, len(seed_names))
            trunk.pool = rest
            if trunk.pool:
                started = time.monotonic()
                trunk.first = _train(ctx, 1, base, args, None, progress)
                trunk.first_seconds = time.monotonic() - started
        except BaseException:
            ctx.close()
            raise
        if branching:
            ctx.close()  # each strategy goes on in its own copy
        out = {}
        for strategy in strategies:
            here = ctx
            if branching:
                shutil.copytree(trunk_root, root / strategy)
                here = load_project(root / strategy)
            try:
                out[strategy] = _rounds(here, trunk, dataset, strategy, round_size=round_size, rounds=rounds,
                                        base=base, args=args, threshold=threshold, use_click=use_click,
                                        final_model=final_model, progress=progress)
            finally:
                here.close()
    if project_dir is None:  # removed with its folder
        for result in out.values():
            result["project"] = None
    return out


def _rounds(ctx: ProjectContext, trunk: _Trunk, dataset: Path, strategy: str, *, round_size: int, rounds: int,
            base: str | None, args: str, threshold: str, use_click: bool, final_model: bool,
            progress: StageProgress | None) -> dict[str, Any]:
    """Rounds 1..``rounds`` of one strategy (round 1's model is the trunk's), then the summary."""
    ids, truth, pool = trunk.ids, trunk.truth, list(trunk.pool)
    rng = random.Random(trunk.seed + 1)
    models: dict[int, dict[str, Any]] = {}
    extra: dict[int, dict[str, Any]] = {}
    parent: int | None = None
    for rnd in range(1, rounds + 1):
        if not pool or trunk.first is None:
            break
        started = time.monotonic()
        model = trunk.first if rnd == 1 else _train(ctx, rnd, base, args, parent, progress)
        train_seconds = trunk.first_seconds if rnd == 1 else time.monotonic() - started
        parent = model["id"]
        models[model["round"]] = model
        trained = time.monotonic()
        batch = _choose(ctx, strategy, model["id"], pool, ids, round_size, rng, progress)
        chosen = time.monotonic()
        pre = preannotate(ctx, model_id=model["id"], image_ids=[ids[f] for f in batch], threshold=threshold,
                          progress=progress)
        for n, name in enumerate(batch, 1):
            review_with_ground_truth(ctx, ids[name], truth[name], round_=model["round"],
                                     click_model=model["id"] if use_click else None)
            if progress:
                progress(f"round {rnd} review", n, len(batch))
        extra[model["round"]] = _round_extra(pre, train_seconds, chosen - trained, chosen)
        taken = set(batch)
        pool = [f for f in pool if f not in taken]
    result = _summarise(ctx, dataset, strategy, trunk.record.labels, models, extra, len(ids))
    after = None
    if final_model and parent is not None:
        last = _train(ctx, len(models) + 1, base, args, parent, progress)
        after = (last.get("metrics") or {}).get("map50")
    result["summary"]["after_last_round_map50"] = after
    return result


def _round_extra(pre: dict[str, Any], train_seconds: float, suggest_seconds: float, chosen: float
                 ) -> dict[str, Any]:
    th = pre["thresholds"]
    review = time.monotonic() - chosen
    return {"thresholds": {n: t["threshold"] for n, t in th.items()},
            "recall_at_threshold": {n: t.get("recall") for n, t in th.items()},
            "expected_seconds": {n: t.get("expected_seconds") for n, t in th.items()},
            "wall_seconds": {"train": round(train_seconds, 1), "suggest": round(suggest_seconds, 1),
                             "preannotate_review": round(review, 1),
                             "total": round(train_seconds + suggest_seconds + review, 1)}}


def _summarise(ctx: ProjectContext, dataset: Path, strategy: str, classes: Sequence[str],
               models: dict[int, dict[str, Any]], extra: dict[int, dict[str, Any]], n_images: int) -> dict[str, Any]:
    report = effort_report(ctx)
    rows = []
    loop = scratch = perfect = 0.0
    keys = ("images", "objects", "actions", "seconds_by_action", "seconds_loop", "seconds_scratch",
            "seconds_perfect", "ratio", "share_of_saving")
    for r in report["rounds"]:
        if r["round"] > 0:
            loop += r["seconds_loop"]
            scratch += r["seconds_scratch"]
            perfect += r["seconds_perfect"]
        m = models.get(r["round"])
        rows.append({"round": r["round"], "model_id": m["id"] if m else None,
                     "map50": (m["metrics"] or {}).get("map50") if m else None,
                     "predict_size": (model_prediction(ctx, m["directory"]) or {}).get("predict_size") if m else None,
                     **{k: r[k] for k in keys},
                     "cumulative_ratio": round(loop / scratch, 4) if r["round"] > 0 and scratch else None,
                     **extra.get(r["round"], {})})
    last = models[max(models)] if models else None
    share = share_of_saving(loop, scratch, perfect)
    return {"dataset": str(dataset), "project": str(ctx.root), "strategy": strategy, "task": ctx.task,
            "classes": list(classes), "images": n_images, "costs": report["costs"], "rounds": rows,
            "summary": {"time_ratio": round(loop / scratch, 4) if scratch else None,
                        "share_of_saving": round(share, 4) if share is not None else None,
                        "final_map50": (last["metrics"] or {}).get("map50") if last else None,
                        "seconds_loop": round(loop, 2), "seconds_scratch": round(scratch, 2),
                        "seconds_perfect": round(perfect, 2), "rounds": len(models)}}
