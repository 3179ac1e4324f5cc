"""The float32 flat search behind the joins' bucket and cell searches
(``distsmote.neighbors.topk.flat_topk``): the m nearest rows, against a float64 brute
force and against FAISS's ``IndexFlatL2``."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distsmote.neighbors.topk import QUERY_BLOCK, flat_topk


def _brute(points: np.ndarray, x: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    d2 = ((x[:, None, :].astype(np.float64) - points[None, :, :]) ** 2).sum(-1)
    order = np.argsort(d2, axis=1, kind="stable")[:, :m]
    return np.take_along_axis(d2, order, axis=1), order


@settings(max_examples=60, deadline=None)
@given(
    n_points=st.integers(1, 300),
    n_queries=st.integers(0, 2 * QUERY_BLOCK + 7),
    d=st.integers(1, 20),
    m=st.integers(1, 12),
    seed=st.integers(0, 2**31 - 1),
)
def test_the_m_nearest_by_distance(n_points, n_queries, d, m, seed):
    """Ascending distances equal to the exact ones (float32 rounding apart), ids whose
    exact distances are those, ``inf`` / ``-1`` past the table's rows."""
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((n_points, d)).astype(np.float32)
    x = rng.standard_normal((n_queries, d)).astype(np.float32)
    dist, ids = flat_topk(points, x, m)
    assert dist.shape == ids.shape == (n_queries, m)
    assert dist.dtype == np.float32 and ids.dtype == np.int64
    width = min(m, n_points)
    assert (ids[:, width:] == -1).all() and np.isinf(dist[:, width:]).all()
    want, _ = _brute(points, x, width)
    got = dist[:, :width].astype(np.float64)
    scale = (x.astype(np.float64) ** 2).sum(1)[:, None] + (points.astype(np.float64) ** 2).sum(1).max()
    assert (np.abs(got - want) <= 1e-5 * scale + 1e-12).all()
    assert (np.diff(got, axis=1) >= 0).all()
    assert ((ids[:, :width] >= 0) & (ids[:, :width] < n_points)).all()
    # The ids' exact distances are the m smallest, whichever ids tie.
    exact = ((x[:, None, :].astype(np.float64) - points[ids[:, :width]]) ** 2).sum(-1)
    assert (np.abs(np.sort(exact, 1) - want) <= 1e-5 * scale + 1e-12).all()
    assert all(len(set(row)) == width for row in ids[:, :width])


def test_ties_go_to_the_lower_row():
    points = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [2.0, 0.0]] * 3, dtype=np.float32)
    x = np.zeros((3, 2), dtype=np.float32)
    _, ids = flat_topk(points, x, 6)
    # Twelve rows at distance 1 (rows 4, 9 and 14 are farther): the first six of them.
    np.testing.assert_array_equal(ids, np.tile([0, 1, 2, 3, 5, 6], (3, 1)))


@pytest.mark.parametrize("m", [1, 2, 8, 24, 39])
def test_bounding_by_group_minima_keeps_every_tie_in_column_order(m):
    """Rows with many equal values (integer grid points), wide enough that the m-th
    smallest is first bounded by the groups' minima: the same ids as a stable sort of
    the exact distances, ties to the lower column, whatever the row's tail."""
    from distsmote.neighbors.topk import _LANES, _PREPASS_GROUPS

    rng = np.random.default_rng(m)
    n_points = _LANES * _PREPASS_GROUPS * m + 5  # whole groups and a tail
    points = rng.integers(-3, 4, size=(n_points, 3)).astype(np.float32)
    x = rng.integers(-3, 4, size=(200, 3)).astype(np.float32)
    _, ids = flat_topk(points, x, m)
    _, want = _brute(points, x, m)
    np.testing.assert_array_equal(ids, want)


@pytest.mark.parametrize("n_points, n_queries, m", [(2_048, 3_000, 6), (4_764, 500, 16), (70, 20_000, 2)])
def test_same_neighbours_as_faiss(n_points, n_queries, m):
    """On the joins' shapes (2 048-row buckets, cells of a quantizer) the same
    neighbours as FAISS's exhaustive search; distances within float32 rounding."""
    rng = np.random.default_rng(n_points)
    points = rng.standard_normal((n_points, 16)).astype(np.float32)
    x = rng.standard_normal((n_queries, 16)).astype(np.float32)
    index = faiss.IndexFlatL2(16)
    index.add(points)
    want_d, want_i = index.search(x, m)
    got_d, got_i = flat_topk(points, x, m)
    np.testing.assert_allclose(got_d, want_d, rtol=0, atol=1e-4)
    # Float32 ties may be listed in another order; the sets agree.
    assert (np.sort(got_i, 1) == np.sort(want_i, 1)).mean() > 0.9999


def test_compiled_without_a_cache_location():
    """Where numba finds nowhere to cache (here: source without a file), the kernel is
    compiled in memory instead of failing the import."""
    from distsmote._numba import compiled

    namespace: dict = {}
    exec("def twice(x):\n    return 2 * x\n", namespace)  # noqa: S102 - a function with no source file
    assert compiled(nogil=True)(namespace["twice"])(21) == 42
