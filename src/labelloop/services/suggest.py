"""Where to annotate next: rank unlabelled images with a trained model.

For each candidate the model predicts on the image and on its horizontal mirror (test-time
augmentation) and embeds it, and the image's expected review seconds are estimated from its
predictions; a strategy of :mod:`labelloop.selection.strategies` picks them. The default is a
random sample, because no strategy clearly beat it in the selection benchmark (paired by seed,
every lead was within its spread on Penn-Fudan, raccoon and a crowded 3-class set; ``mixed``,
``diversity`` and ``hybrid`` were worse on Penn-Fudan by more than the spread, ``hybrid`` on the
crowded set too); each pick still says what it brings, by which strategy and with which
model round.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import select

from labelloop.core.progress import StageProgress
from labelloop.core.records import LABELLED_STATUSES, UNLABELLED_STATUSES
from labelloop.core.unreadable import Unreadable
from labelloop.errors import InvalidInputError
from labelloop.selection.active import Candidate, SuggestWeights
from labelloop.selection.effort import CostModel
from labelloop.selection.review_cost import expected_review_seconds
from labelloop.selection.strategies import SelectionContext, check_strategy, rank_by_strategy
from labelloop.selection.uncertainty import class_ambiguity, flip_disagreement, score_uncertainty
from labelloop.services.datasets import image_path
from labelloop.services.effort import cost_model
from labelloop.services.layers import inside_parent_images
from labelloop.services.preannotate import (
    THRESHOLDS_FILE,
    PredictorLike,
    load_model_predictor,
    read_rgb,
    resolve_model,
)
from labelloop.settings import get_settings
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, LabelClass, is_ground_truth

__all__ = ["DEFAULT_STRATEGY", "candidate_signals", "labelled_counts", "still_unlabelled", "suggest_images"]

#: what ``suggest`` uses unless told otherwise: the winner of the selection benchmark (README)
DEFAULT_STRATEGY = "random"

#: predictions at or above this score count towards a class's expected objects (without stored thresholds)
EXPECTED_MIN_SCORE = 0.3
#: at most this many labelled images are embedded as the novelty reference
MAX_REFERENCE_IMAGES = 300


def labelled_counts(ctx: ProjectContext) -> dict[str, int]:
    """Ground-truth objects per active class on labelled images (human, accepted or edited)."""
    gt = is_ground_truth()
    with ctx.store.session() as s:
        names = list(s.scalars(select(LabelClass.name).where(LabelClass.project_id == ctx.id,
                                                             LabelClass.active.is_(True))
                               .order_by(LabelClass.position)))
        rows = s.execute(select(LabelClass.name).join(Annotation, Annotation.class_id == LabelClass.id)
                         .join(Image, Image.id == Annotation.image_id)
                         .where(Annotation.project_id == ctx.id, gt, Image.status.in_(LABELLED_STATUSES))).all()
    counts = Counter(r[0] for r in rows)
    return {n: counts.get(n, 0) for n in names if n != "background"}


def _stored_thresholds(ctx: ProjectContext, model_dir: str, classes: Sequence[str]) -> list[float]:
    """The model's chosen class thresholds (``EXPECTED_MIN_SCORE`` where none was chosen yet)."""
    path = ctx.root / model_dir / THRESHOLDS_FILE
    try:
        stored = json.loads(path.read_text())["classes"] if path.is_file() else {}
    except (ValueError, KeyError):
        stored = {}
    return [float(stored.get(n, {}).get("threshold", EXPECTED_MIN_SCORE)) for n in classes]


def _min_scores(thresholds: Sequence[float]) -> list[float]:
    # never above EXPECTED_MIN_SCORE: a class too weak to pre-annotate is exactly the one whose
    # likely instances we want to find
    return [min(t, EXPECTED_MIN_SCORE) for t in thresholds]


def candidate_signals(predictor: PredictorLike, pixels: np.ndarray, image_id: int, file_name: str,
                      min_scores: Sequence[float], tta: bool = True, thresholds: Sequence[float] | None = None,
                      costs: CostModel | None = None) -> Candidate:
    """The model's view of one image: uncertainty, mirror disagreement, ambiguity, expected objects,
    and (with ``thresholds`` and ``costs``) the review seconds its proposals are expected to cost."""
    # single views: a model with mirror TTA fuses both in predict(), which would hide their disagreement
    single = getattr(predictor, "predict_single", predictor.predict)
    preds = single(pixels)
    flip = 0.0
    if tta:
        mirrored = single(np.ascontiguousarray(pixels[:, ::-1]))
        flip = flip_disagreement(preds, mirrored, pixels.shape[1])
    expected: dict[str, float] = {}
    for k, name in enumerate(predictor.classes):
        sel = (preds.labels == k) & (preds.scores >= min_scores[k])
        if sel.any():
            expected[name] = float(preds.scores[sel].sum())
    seconds = expected_review_seconds(preds.scores, preds.labels, thresholds, costs) \
        if thresholds is not None and costs is not None else 0.0
    return Candidate(image_id, file_name, score_uncertainty(preds.scores), flip,
                     class_ambiguity(preds), expected,
                     np.asarray(predictor.embed(pixels), dtype=np.float32), seconds)


def _pool(ctx: ProjectContext, candidate_ids: Sequence[int] | None) -> list[tuple[int, str, str]]:
    with ctx.store.session() as s:
        q = select(Image.id, Image.file_name, Image.storage_path).where(Image.project_id == ctx.id)
        q = q.where(Image.id.in_(list(candidate_ids))) if candidate_ids is not None else \
            q.where(Image.status.in_(UNLABELLED_STATUSES))
        rows = [(i, f, p) for i, f, p in s.execute(q.order_by(Image.id)).all()]
    inside = inside_parent_images(ctx, [f for _, f, _ in rows])  # a child layer: only where its parent has regions
    return rows if inside is None else [r for r in rows if r[1] in inside]


def _reference_embeddings(ctx: ProjectContext, predictor: PredictorLike, progress: StageProgress | None,
                          unreadable: Unreadable) -> np.ndarray | None:
    with ctx.store.session() as s:
        rows = s.execute(select(Image.id, Image.storage_path, Image.file_name).where(
            Image.project_id == ctx.id, Image.status.in_(LABELLED_STATUSES)).order_by(Image.id)).all()
    if len(rows) > MAX_REFERENCE_IMAGES:
        rows = random.Random(0).sample(list(rows), MAX_REFERENCE_IMAGES)
    feats = []
    for n, (image_id, path, name) in enumerate(rows, 1):
        try:
            feats.append(np.asarray(predictor.embed(read_rgb(image_path(ctx, path))), dtype=np.float32))
        except InvalidInputError as err:  # an undecodable image is not a reference
            unreadable.add(image_id, name, err.message)
        if progress:
            progress("labelled", n, len(rows))
    return np.stack(feats) if feats else None


def suggest_images(ctx: ProjectContext, *, n: int = 50, model_id: int | None = None,
                   predictor: PredictorLike | None = None, candidate_ids: Sequence[int] | None = None,
                   backend: str = "auto", target: int | None = None, tta: bool = True,
                   weights: SuggestWeights | None = None, strategy: str = DEFAULT_STRATEGY, seed: int = 0,
                   progress: StageProgress | None = None, unreadable: Unreadable | None = None
                   ) -> list[dict[str, Any]]:
    """The ``n`` unlabelled images (or of ``candidate_ids``) worth annotating next, best first. On a child
    layer, only images where its parent layer has labelled regions (elsewhere nothing is its to learn).

    Each item: ``image_id``, ``file_name``, ``score``, ``reasons`` (short strings),
    ``components`` (the signals in ``[0, 1]``), ``rank`` (1-based), ``strategy`` and
    ``model_id`` / ``model_round`` (the model that scored it). Images that cannot be read are left
    out and listed in ``unreadable`` (when given); more than the ``max_unreadable_share`` setting
    of the candidates fail the ranking.
    ``strategy``: one of :data:`labelloop.selection.strategies.STRATEGIES`.
    """
    if n < 1:
        raise InvalidInputError(f"--n must be at least 1, got {n}")
    check_strategy(strategy)
    unreadable = unreadable if unreadable is not None else Unreadable("suggest")
    model = resolve_model(ctx, model_id)
    predictor = predictor or load_model_predictor(ctx, model, backend)
    thresholds = _stored_thresholds(ctx, model.directory, predictor.classes)
    min_scores, costs = _min_scores(thresholds), cost_model(ctx)
    pool = _pool(ctx, candidate_ids)
    candidates = []
    for done, (image_id, name, path) in enumerate(pool, 1):
        try:
            pixels = read_rgb(image_path(ctx, path))
        except InvalidInputError as err:
            unreadable.add(image_id, name, err.message)
            continue
        candidates.append(candidate_signals(predictor, pixels, image_id, name, min_scores, tta, thresholds, costs))
        if progress:
            progress("score images", done, len(pool))
    counts = labelled_counts(ctx)
    unreadable.check(len(pool))
    reference = _reference_embeddings(ctx, predictor, progress, unreadable)
    chooser = SelectionContext(counts, target or get_settings().target_per_class, reference, weights, seed)
    ranked = rank_by_strategy(strategy, candidates, n, chooser)
    return [{**s.as_dict(), "rank": i + 1, "strategy": strategy, "model_id": model.id, "model_round": model.round}
            for i, s in enumerate(ranked)]


def still_unlabelled(ctx: ProjectContext, suggestions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``suggestions`` (of an earlier suggest job) whose images are still waiting for labels, in order:
    an image labelled, reviewed or deleted since is no longer a suggestion."""
    ids = [int(s["image_id"]) for s in suggestions if "image_id" in s]
    if not ids:
        return []
    with ctx.store.session() as s:
        waiting = set(s.scalars(select(Image.id).where(Image.project_id == ctx.id, Image.id.in_(ids),
                                                       Image.status.in_(UNLABELLED_STATUSES))))
    return [s for s in suggestions if s.get("image_id") in waiting]
