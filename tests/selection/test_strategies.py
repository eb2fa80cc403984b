"""Selection strategies: each picks what its rule says, on hand-made candidates."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.errors import InvalidInputError
from labelloop.selection.active import Candidate
from labelloop.selection.effort import CostModel
from labelloop.selection.review_cost import expected_review_seconds
from labelloop.selection.strategies import STRATEGIES, SelectionContext, kmeans_pp, rank_by_strategy

CTX = SelectionContext(counts={"common": 40, "rare": 2}, target=20)


def _cand(i: int, emb: list[float], u: float = 0.1, flip: float = 0.0, expected: dict | None = None,
          seconds: float = 10.0) -> Candidate:
    return Candidate(i, f"img{i}.jpg", u, flip, 0.0, expected or {}, np.asarray(emb, float), seconds)


def _pool() -> list[Candidate]:
    rng = np.random.default_rng(0)
    left = [_cand(i, np.zeros(2) + rng.normal(0, 0.01, 2), u=0.1 * i) for i in range(5)]  # one tight cluster
    right = [_cand(10 + i, np.full(2, 5.0) + rng.normal(0, 0.01, 2), u=0.05 * i) for i in range(5)]  # another
    return [*left, *right]


def test_every_strategy_returns_distinct_pool_images() -> None:
    pool = _pool()
    for name in STRATEGIES:
        picks = rank_by_strategy(name, pool, 4, CTX)
        ids = [p.image_id for p in picks]
        assert len(ids) == len(set(ids)) == 4 and set(ids) <= {c.image_id for c in pool}, name
        assert all(p.reasons for p in picks), name
    assert rank_by_strategy("mixed", [], 3, CTX) == []


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match="diversity"):
        rank_by_strategy("smart", _pool(), 2, CTX)


def test_uncertainty_takes_the_most_doubtful_and_diversity_covers_both_clusters() -> None:
    pool = _pool()
    spread = [_cand(i, np.random.default_rng(i).normal(size=8), u=0.1 * i) for i in range(6)]
    assert [p.image_id for p in rank_by_strategy("uncertainty", spread, 3, CTX)] == [5, 4, 3]
    # near-duplicates are still deferred: the second pick is not the first one's twin
    assert [p.image_id for p in rank_by_strategy("uncertainty", pool, 2, CTX)] == [4, 14]
    assert {p.image_id // 10 for p in rank_by_strategy("diversity", pool, 2, CTX)} == {0, 1}
    labelled = SelectionContext(CTX.counts, CTX.target, labelled_embeddings=np.array([[0.0, 0.0]]))
    assert rank_by_strategy("diversity", pool, 1, labelled)[0].image_id >= 10  # far from the labelled image


def test_hybrid_takes_the_most_valuable_image_of_each_cluster() -> None:
    assert kmeans_pp(np.array([[0, 0], [0.1, 0], [9, 9], [9.1, 9]]), 2).tolist() in ([0, 0, 1, 1], [1, 1, 0, 0])
    picks = rank_by_strategy("hybrid", _pool(), 2, CTX)
    assert sorted(p.image_id for p in picks) == [4, 14]
    assert any("similar images" in r for r in picks[0].reasons)


def test_class_deficit_prefers_likely_rare_objects() -> None:
    pool = [*_pool(), _cand(99, [2, 2], expected={"rare": 3.0}), _cand(98, [3, 3], expected={"common": 9.0})]
    assert rank_by_strategy("class-deficit", pool, 1, CTX)[0].image_id == 99


def test_effort_prefers_the_cheaper_of_two_equally_valuable_images() -> None:
    pool = [_cand(1, [0, 0], u=0.5, seconds=60.0), _cand(2, [1, 1], u=0.5, seconds=15.0),
            _cand(3, [2, 2], u=0.5, seconds=30.0)]
    picks = rank_by_strategy("effort", pool, 3, CTX)
    assert [p.image_id for p in picks] == [2, 3, 1]
    assert picks[0].components["expected_seconds"] == pytest.approx(15.0)


def test_random_is_seeded() -> None:
    pool = _pool()
    a = [p.image_id for p in rank_by_strategy("random", pool, 5, SelectionContext({}, 20, seed=3))]
    b = [p.image_id for p in rank_by_strategy("random", pool, 5, SelectionContext({}, 20, seed=3))]
    c = [p.image_id for p in rank_by_strategy("random", pool, 5, SelectionContext({}, 20, seed=4))]
    assert a == b and a != c
    picks = rank_by_strategy("random", pool, 5, SelectionContext({"cat": 25}, 20, seed=3))
    assert all(p.reasons[0] == "random pick" and len(p.reasons) > 1 and p.components for p in picks)  # explained


def test_expected_review_seconds_by_hand() -> None:
    costs = CostModel(inspect=2, accept=0.5, delete=1, draw=7)
    # class 0 threshold 0.5: 0.9 shown (0.9 * 0.5 + 0.1 * 1), 0.3 below (0.3 * 7); class 1 threshold 0.2: 0.25 shown
    got = expected_review_seconds(np.array([0.9, 0.3, 0.25, 0.01]), np.array([0, 0, 1, 1]), [0.5, 0.2], costs)
    assert got == pytest.approx(2 + 0.55 + 2.1 + (0.25 * 0.5 + 0.75 * 1))
    assert expected_review_seconds(np.zeros(0), np.zeros(0), [0.5], costs) == 2


def test_every_strategy_says_what_the_benchmarks_measured() -> None:
    from labelloop.selection.strategies import STRATEGIES, strategy_note

    notes = {name: strategy_note(name) for name in STRATEGIES}
    assert all("random" in note for note in notes.values())
    assert notes["mixed"] != notes["random"] and "beaten" in notes["mixed"]
    assert "worse than it on Penn-Fudan" in notes["mixed"] and "worse" not in notes["uncertainty"]
    assert "came closest" in notes["class-deficit"] and notes["uncertainty"] != notes["class-deficit"]
    assert "on the crowded set (-0.016" in notes["hybrid"] and "on every seed" not in notes["mixed"]
    with pytest.raises(InvalidInputError, match="unknown selection strategy"):
        strategy_note("clairvoyant")


def test_hybrid_tops_up_when_duplicates_leave_fewer_clusters_than_picks() -> None:
    twins = [_cand(i, [float(i % 2), 0.0], u=0.05 * i) for i in range(20)]  # two distinct pictures, ten copies each
    picks = rank_by_strategy("hybrid", twins, 5, CTX)
    assert len({p.image_id for p in picks}) == 5
    assert sorted(p.image_id for p in picks[:2]) == [18, 19]  # one per cluster first: each cluster's most doubtful


def test_effort_treats_unknown_seconds_as_typical_not_free() -> None:
    pool = [_cand(1, [0, 0], u=0.5, seconds=0.0), _cand(2, [1, 1], u=0.5, seconds=20.0),
            _cand(3, [2, 2], u=0.5, seconds=40.0)]
    picks = {p.image_id: p for p in rank_by_strategy("effort", pool, 3, CTX)}
    assert picks[1].components["expected_seconds"] == pytest.approx(30.0)  # the median of the known ones
    assert picks[1].score == pytest.approx(picks[2].score * 20 / 30, rel=1e-3)


def test_class_deficit_says_when_no_class_is_below_target() -> None:
    full = SelectionContext(counts={"common": 40, "rare": 25}, target=20, seed=1)
    picks = rank_by_strategy("class-deficit", _pool(), 4, full)
    assert len({p.image_id for p in picks}) == 4
    assert all(p.reasons[0] == "no class is below its target of 20 labelled objects" for p in picks)
    assert [p.image_id for p in picks] == [p.image_id for p in rank_by_strategy("random", _pool(), 4, full)]
