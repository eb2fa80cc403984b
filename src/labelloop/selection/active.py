"""Which unlabelled images to annotate next: uncertainty + class deficit, made diverse.

Each candidate carries signals computed from a model's predictions (see
:mod:`labelloop.selection.uncertainty`) and an embedding. :func:`rank_suggestions` picks
greedily: at each step the candidate with the best mix of its own *value* (uncertainty,
test-time-augmentation disagreement, class ambiguity, class deficit) and its *novelty*
(distance to the labelled images and to what was already picked). A near-duplicate of an
already picked image is deferred to the end of the list, so a batch is never the same image twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from labelloop.selection.diversity import min_distances, pairwise_distances

__all__ = ["Candidate", "SuggestWeights", "Suggestion", "class_deficits", "deficit_score", "rank_suggestions",
           "score_candidates"]


@dataclass(frozen=True)
class Candidate:
    """One unlabelled image and what the model thinks of it.

    Attributes:
        uncertainty, flip_disagreement, class_ambiguity: in ``[0, 1]``.
        expected_objects: class name -> expected number of objects (sum of scores of
            confident predictions), used for the class deficit.
        embedding: ``(D,)`` image features.
        expected_seconds: review seconds the image's proposals are expected to cost (0 = unknown).
    """

    image_id: int
    file_name: str
    uncertainty: float
    flip_disagreement: float
    class_ambiguity: float
    expected_objects: Mapping[str, float]
    embedding: np.ndarray
    expected_seconds: float = 0.0


@dataclass(frozen=True)
class SuggestWeights:
    """Weights of the value signals (normalised to sum 1) and of novelty in the final mix."""

    uncertainty: float = 0.3
    flip: float = 0.25
    ambiguity: float = 0.15
    deficit: float = 0.3
    diversity: float = 0.25
    #: a candidate closer than this fraction of the typical distance to a picked one is a near-duplicate
    duplicate_fraction: float = 0.15


@dataclass
class Suggestion:
    image_id: int
    file_name: str
    score: float
    reasons: list[str]
    components: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"image_id": self.image_id, "file_name": self.file_name, "score": round(self.score, 4),
                "reasons": self.reasons, "components": {k: round(v, 4) for k, v in self.components.items()}}


def class_deficits(counts: Mapping[str, int], target: int) -> dict[str, float]:
    """Per class ``max(0, target - count) / target``: 1 = no examples yet, 0 = at target."""
    if target <= 0:
        return {c: 0.0 for c in counts}
    return {c: max(0.0, (target - n) / target) for c, n in counts.items()}


def deficit_score(expected: Mapping[str, float], deficits: Mapping[str, float]) -> tuple[float, list[str]]:
    """``x / (1 + x)`` with ``x = sum(deficit_c * expected_c)``, and the classes contributing."""
    x = 0.0
    contributing = []
    for name, n in sorted(expected.items(), key=lambda kv: -kv[1] * deficits.get(kv[0], 0.0)):
        d = deficits.get(name, 0.0)
        if d > 0 and n > 0:
            x += d * n
            contributing.append(name)
    return x / (1.0 + x), contributing


def _value(c: Candidate, deficits: Mapping[str, float], w: SuggestWeights) -> tuple[float, dict[str, float],
                                                                                       list[str]]:
    deficit, classes = deficit_score(c.expected_objects, deficits)
    parts = {"uncertainty": c.uncertainty, "flip_disagreement": c.flip_disagreement,
             "class_ambiguity": c.class_ambiguity, "class_deficit": deficit}
    weights = {"uncertainty": w.uncertainty, "flip_disagreement": w.flip, "class_ambiguity": w.ambiguity,
               "class_deficit": w.deficit}
    total = sum(weights.values()) or 1.0
    value = sum(parts[k] * weights[k] for k in parts) / total
    return value, parts, classes


def _reasons(c: Candidate, parts: dict[str, float], classes: list[str], counts: Mapping[str, int],
             target: int, novelty: float) -> list[str]:
    reasons = []
    if parts["class_deficit"] >= 0.2 and classes:
        reasons.append("likely " + ", ".join(
            f"{c.expected_objects[k]:.1f}× {k} ({counts.get(k, 0)}/{target} labelled)" for k in classes[:3]))
    if parts["uncertainty"] >= 0.3:
        reasons.append(f"uncertain scores (uncertainty {parts['uncertainty']:.2f})")
    if parts["flip_disagreement"] >= 0.3:
        reasons.append(f"predictions change when mirrored (disagreement {parts['flip_disagreement']:.2f})")
    if parts["class_ambiguity"] >= 0.5:
        reasons.append(f"boxes torn between two classes (ambiguity {parts['class_ambiguity']:.2f})")
    if novelty >= 0.75:
        reasons.append(f"unlike the labelled images (novelty {novelty:.2f})")
    if not reasons:
        reasons.append("best remaining mix of value and novelty")
    return reasons


def score_candidates(candidates: Sequence[Candidate], *, counts: Mapping[str, int], target: int,
                     weights: SuggestWeights | None = None) -> list[Suggestion]:
    """Every candidate with its value alone (no novelty), best first, with its reasons."""
    w = weights or SuggestWeights()
    deficits = class_deficits(counts, target)
    out = []
    for c in candidates:
        value, parts, classes = _value(c, deficits, w)
        reasons = [r for r in _reasons(c, parts, classes, counts, target, 0.0)
                   if r != "best remaining mix of value and novelty"] or ["highest remaining value"]
        out.append(Suggestion(c.image_id, c.file_name, value, reasons, {**parts, "value": value}))
    return sorted(out, key=lambda s: -s.score)


def _typical_distance(feats: np.ndarray, labelled: np.ndarray | None) -> float:
    """Scale for novelty: median nearest-labelled distance, else median pairwise candidate distance."""
    if labelled is not None and len(labelled):
        d = min_distances(feats, labelled)
    else:
        sample = feats[:512]
        pd = pairwise_distances(sample, sample)
        d = pd[np.triu_indices(len(sample), 1)] if len(sample) > 1 else np.ones(1)
    d = d[np.isfinite(d) & (d > 0)]
    return float(np.median(d)) if d.size else 1.0


def rank_suggestions(candidates: Sequence[Candidate], n: int, *, counts: Mapping[str, int], target: int,
                     labelled_embeddings: np.ndarray | None = None,
                     weights: SuggestWeights | None = None) -> list[Suggestion]:
    """The ``n`` images to annotate next, best first, each with its reasons.

    Args:
        candidates: the unlabelled pool.
        counts: labelled objects per class (the class deficit is measured against ``target``).
        labelled_embeddings: ``(M, D)`` features of labelled images (novelty is measured from them).
    """
    w = weights or SuggestWeights()
    if not candidates or n <= 0:
        return []
    deficits = class_deficits(counts, target)
    feats = np.stack([np.asarray(c.embedding, dtype=np.float64).reshape(-1) for c in candidates])
    scale = _typical_distance(feats, labelled_embeddings)
    values = [_value(c, deficits, w) for c in candidates]
    base = np.array([v[0] for v in values])
    dist = min_distances(feats, labelled_embeddings)  # inf when nothing is labelled
    to_picked = np.full(len(candidates), np.inf)
    nearest_pick = np.full(len(candidates), -1)
    remaining = set(range(len(candidates)))
    picked: list[Suggestion] = []
    deferred: list[tuple[int, float]] = []
    while remaining and len(picked) < n:
        idx = np.array(sorted(remaining))
        novelty = np.minimum(np.minimum(dist[idx], to_picked[idx]) / scale, 1.0)
        novelty = np.where(np.isfinite(novelty), novelty, 1.0)
        dup = to_picked[idx] < w.duplicate_fraction * scale
        final = (1 - w.diversity) * base[idx] + w.diversity * novelty
        final = np.where(dup, -1.0, final)
        k = int(np.argmax(final))
        i = int(idx[k])
        remaining.discard(i)
        if dup[k]:  # only near-duplicates left: defer them all
            deferred.extend((int(j), float(base[j])) for j in idx)
            break
        _, parts, classes = values[i]
        picked.append(Suggestion(candidates[i].image_id, candidates[i].file_name, float(final[k]),
                                 _reasons(candidates[i], parts, classes, counts, target, float(novelty[k])),
                                 {**parts, "novelty": float(novelty[k]), "value": float(base[i])}))
        d_new = pairwise_distances(feats, feats[i:i + 1])[:, 0]
        closer = d_new < to_picked
        nearest_pick = np.where(closer, i, nearest_pick)
        to_picked = np.minimum(to_picked, d_new)
    for j, value in sorted(deferred, key=lambda t: -t[1]):
        if len(picked) >= n:
            break
        _, parts, _ = values[j]
        twin = candidates[int(nearest_pick[j])].file_name if nearest_pick[j] >= 0 else "?"
        picked.append(Suggestion(candidates[j].image_id, candidates[j].file_name, 0.0,
                                 [f"near-duplicate of {twin}"], {**parts, "novelty": 0.0, "value": value}))
    return picked
