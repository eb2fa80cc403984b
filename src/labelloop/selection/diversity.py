"""Diversity on image embeddings: distances and k-center greedy (core-set) selection.

Embeddings are ``(N, D)`` float arrays (L2-normalised backbone features).
"""

from __future__ import annotations

import numpy as np

__all__ = ["k_center_greedy", "min_distances", "pairwise_distances"]


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances ``(N, M)`` between rows of ``a (N, D)`` and ``b (M, D)``."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(d2, 0, None))


def min_distances(features: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """``(N,)`` distance of each feature row to its nearest reference row (``inf`` if none)."""
    n = len(features)
    if reference is None or len(reference) == 0:
        return np.full(n, np.inf)
    out = np.empty(n)
    for start in range(0, n, 1024):  # bounded memory for big pools
        out[start:start + 1024] = pairwise_distances(features[start:start + 1024], reference).min(1)
    return out


def k_center_greedy(features: np.ndarray, n: int, existing: np.ndarray | None = None) -> list[int]:
    """Indices of ``n`` rows chosen so each is farthest from everything chosen before
    (and from ``existing``, e.g. the labelled images); the first is the farthest from
    ``existing``, or row 0 when there is nothing yet."""
    feats = np.asarray(features, dtype=np.float64)
    n = min(n, len(feats))
    if n <= 0:
        return []
    dist = min_distances(feats, existing)
    chosen: list[int] = []
    for _ in range(n):
        i = int(np.argmax(dist))  # all inf (nothing chosen or existing yet) -> row 0
        chosen.append(i)
        dist = np.minimum(dist, pairwise_distances(feats, feats[i:i + 1])[:, 0])
        dist[chosen] = -1.0
    return chosen
