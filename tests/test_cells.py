"""Cells of the kNN joins: the cheap home of rows that are only data."""

from __future__ import annotations

import numpy as np
import pytest

from distsmote.neighbors.cells import (
    FLAT_MAX_CELLS,
    data_home,
    home_and_probes,
    homes_and_probes,
    train_quantizer,
)


def _reference_home(q, x):
    """The documented rule by float64 brute force: the nearest coarse cell (ties: lowest
    id), then the nearest of its fine cells (ties: lowest id)."""
    xc = np.asarray(x, np.float64) - q.center
    owner = ((xc[:, None, :] - q.coarse[None]) ** 2).sum(-1).argmin(1)
    out = np.empty(len(xc), np.int64)
    for i, g in enumerate(owner):
        cells = np.flatnonzero(q.parent == g)
        out[i] = cells[((xc[i] - q.centroids[cells]) ** 2).sum(-1).argmin()]
    return out


@pytest.fixture(scope="module")
def grid():
    """Rows on a coarse integer grid (many ties and duplicates) and a two-level quantizer."""
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 4, size=(6000, 3)).astype(np.float64)
    q = train_quantizer(rng.normal(size=(9000, 3)) * 2, 400, 10, 20, 0)
    assert q.coarse is not None and q.n_cells > FLAT_MAX_CELLS
    return x, q


def test_data_home_is_the_nearest_cell_within_the_nearest_coarse_cell(grid):
    x, q = grid
    np.testing.assert_array_equal(data_home(q, x), _reference_home(q, x))


def test_data_home_breaks_exact_ties_by_lowest_id():
    from distsmote.neighbors.cells import Quantizer

    # Two coarse cells and four fine cells placed symmetrically around the origin.
    coarse = np.array([[-1.0, 0.0], [1.0, 0.0]])
    fine = np.array([[-1.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [1.0, -1.0]])
    q = Quantizer(np.zeros(2), fine, (fine**2).sum(1), coarse=coarse, parent=np.array([0, 0, 1, 1]))
    x = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [2.0, 0.0], [-0.5, 0.0]])
    # (0, 0) ties between both coarse cells -> coarse 0; then fine 0 and 1 tie -> 0.
    np.testing.assert_array_equal(data_home(q, x), [0, 0, 2, 2, 0])


def test_data_home_does_not_depend_on_the_batch(grid):
    x, q = grid
    whole = data_home(q, x)
    perm = np.random.default_rng(0).permutation(len(x))
    parts = np.concatenate([data_home(q, x[perm[s : s + 313]]) for s in range(0, len(x), 313)])
    np.testing.assert_array_equal(parts, whole[perm])


def test_data_home_is_the_usual_home_for_a_flat_quantizer():
    rng = np.random.default_rng(2)
    x = np.round(rng.normal(size=(5000, 4)), 1)
    q = train_quantizer(x[:3000], 60, 10, 40, 0)
    assert q.coarse is None
    np.testing.assert_array_equal(data_home(q, x), home_and_probes(q, x, 1)[0])


def test_query_rows_keep_their_nearest_probe_as_home(grid):
    x, q = grid
    is_query = np.arange(len(x)) % 7 == 0
    home, probes = homes_and_probes(q, x, is_query, 5)
    full_home, _, full_probes = home_and_probes(q, x[is_query], 5)
    np.testing.assert_array_equal(home[is_query], full_home)
    np.testing.assert_array_equal(probes, full_probes)
    np.testing.assert_array_equal(home[~is_query], data_home(q, x[~is_query]))
