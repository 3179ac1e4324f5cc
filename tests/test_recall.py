"""The recall an approximate per-class index reports equals the recall measured by hand."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from distsmote.neighbors.config import KnnConfig
from distsmote.neighbors.index import build_index, measured_recall, search_neighbors


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(20, d))
    return (centers[rng.integers(0, 20, n)] + rng.normal(0, 1, size=(n, d))).astype(np.float32)


def test_recall_of_a_coarse_ivf_index_equals_a_hand_count():
    x, k = _clustered(3000, 6, 0), 5
    index = build_index(x, KnnConfig(method="ivf", nlist=64, nprobe=1), seed=1)
    recall = measured_recall(x, index, k, extra=0, seed=1, sample=len(x))
    found = search_neighbors(index, x, np.arange(len(x)), k, 0, 1)
    truth = NearestNeighbors(n_neighbors=k + 1).fit(x.astype(np.float64)).kneighbors(return_distance=False)
    by_hand = np.mean([len(np.intersect1d(a, b[:k])) / k for a, b in zip(found, truth)])
    assert 0.5 < recall < 1  # one probe of 64 cells misses neighbours
    assert abs(recall - by_hand) < 0.005  # sklearn and the flat index may break exact ties apart


def test_exact_indexes_report_full_recall_and_more_probes_do_not_lower_it():
    x = _clustered(2000, 4, 2)
    assert measured_recall(x, build_index(x, KnnConfig(method="exact"), 0), 5, 0, 0) == 1.0
    low = measured_recall(x, build_index(x, KnnConfig(method="ivf", nlist=32, nprobe=1), 0), 5, 0, 0)
    high = measured_recall(x, build_index(x, KnnConfig(method="ivf", nlist=32, nprobe=32), 0), 5, 0, 0)
    assert low < high == 1.0
