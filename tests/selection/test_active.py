"""Ranking suggestions: value first, novelty after, never the same image twice at the top."""

from __future__ import annotations

import numpy as np

from labelloop.selection.active import Candidate, class_deficits, rank_suggestions
from labelloop.selection.diversity import k_center_greedy


def _cand(i: int, emb: np.ndarray, u: float = 0.1, flip: float = 0.0, expected: dict | None = None) -> Candidate:
    return Candidate(i, f"img{i}.jpg", u, flip, 0.0, expected or {}, emb / np.linalg.norm(emb))


def test_class_deficits():
    assert class_deficits({"a": 0, "b": 10, "c": 25}, 20) == {"a": 1.0, "b": 0.5, "c": 0.0}


def test_k_center_greedy_spreads_out():
    pts = np.array([[0, 0], [0.1, 0], [10, 0], [0, 10], [10.1, 0]], dtype=float)
    assert k_center_greedy(pts, 3) == [0, 4, 3]
    assert k_center_greedy(pts, 1, existing=np.array([[0.0, 0.0]]))[0] in (2, 4)


def test_hard_deficit_image_first_and_near_duplicate_deferred():
    rng = np.random.default_rng(0)
    base = [rng.normal(size=16) for _ in range(8)]
    cands = [_cand(i, base[i]) for i in range(8)]
    hard = _cand(100, base[0] + 5, u=0.9, flip=0.8, expected={"rare": 5.0})
    twin = _cand(101, base[0] + 5 + 1e-4, u=0.9, flip=0.8, expected={"rare": 5.0})
    ranked = rank_suggestions([*cands, hard, twin], 10, counts={"rare": 2, "common": 40}, target=20)
    ids = [s.image_id for s in ranked]
    assert ids[0] in (100, 101)
    other = 101 if ids[0] == 100 else 100
    assert ids.index(other) == len(ids) - 1 and ranked[-1].reasons[0].startswith("near-duplicate of")
    assert any("rare" in r for r in ranked[0].reasons) and ranked[0].components["class_deficit"] > 0.5
    assert all(s.reasons for s in ranked)
    assert len(rank_suggestions([*cands, hard, twin], 3, counts={}, target=20)) == 3
