"""Every use of FAISS in one place: import, threads, k-means, index construction,
shipping and the per-process index cache.  (The joins' flat searches of buckets and
cells are :func:`distsmote.neighbors.topk.flat_topk`; the SMOTE family's IVF index and
the broadcast-query join search inverted lists with :mod:`distsmote.neighbors.lists`.)

FAISS is imported lazily (it is heavy, and must not be loaded in a parent that later
forks a searching child, faiss#5206).  Indexes travel as ``faiss.serialize_index``
bytes (:class:`ShippedIndex`) and are deserialized at most once per worker process.
Nothing here re-ranks: callers re-rank float32 candidates with exact float64 distances
so that the neighbours chosen never depend on FAISS's BLAS/direct code path, batch
sizes or thread counts.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np


#: Exhaustive searches with at least this many queries use FAISS's BLAS path (FAISS
#: 1.15's default, 128 000, sends every batch smaller than that to the direct path,
#: which is 2–3× slower here for batches of thousands of queries against thousands of
#: rows, as the flat indexes of small classes and exact mode's bound sample get).  Either path gives the same
#: neighbours after the callers' exact re-ranking.
BLAS_THRESHOLD = 20
#: Block of the BLAS path: queries × database rows per distance block.  FAISS's default
#: (4096 × 1024, a 16 MiB block) spills out of cache; a 4 MiB block made flat searches
#: of 2 000-row tables (16 features) about 20 % faster here.
BLAS_QUERY_BLOCK = 1024
BLAS_DATABASE_BLOCK = 1024


def faiss():
    """The ``faiss`` module, imported on first use, with its BLAS settings."""
    import faiss as _faiss  # imported lazily: heavy, and must not be loaded before a fork

    cv = _faiss.cvar
    cv.distance_compute_blas_threshold = BLAS_THRESHOLD
    cv.distance_compute_blas_query_bs = BLAS_QUERY_BLOCK
    cv.distance_compute_blas_database_bs = BLAS_DATABASE_BLOCK
    return _faiss


def set_threads(threads: int) -> None:
    """Limit FAISS's OpenMP threads to the cores the current task owns."""
    faiss().omp_set_num_threads(max(1, int(threads)))


def f32(x: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy (or view) of ``x``, as FAISS wants its inputs."""
    return np.ascontiguousarray(x, dtype=np.float32)


# ------------------------------------------------------------------------- k-means

#: k-means with fewer (rows × centroids × iterations) runs on one thread (the result
#: is the same with any thread count).
_SMALL_KMEANS = 500_000_000


def kmeans(
    x: np.ndarray,
    k: int,
    niter: int,
    seed: int,
    max_points_per_centroid: int | None = None,
    min_points_per_centroid: int | None = None,
) -> np.ndarray:
    """FAISS k-means centroids (float32, ``(k, d)``) of the rows of ``x``.

    Reproducible for a given input order and seed, whatever the thread count.  The
    per-centroid point limits are FAISS's defaults unless given.
    """
    options = {}
    if max_points_per_centroid is not None:
        options["max_points_per_centroid"] = int(max_points_per_centroid)
    if min_points_per_centroid is not None:
        options["min_points_per_centroid"] = int(min_points_per_centroid)
    fa = faiss()
    km = fa.Kmeans(x.shape[1], k, niter=niter, seed=int(seed % (2**31)), verbose=False, **options)
    previous = fa.omp_get_max_threads()
    if len(x) * k * niter < _SMALL_KMEANS:  # threads only add waiting (and suffer on busy machines)
        fa.omp_set_num_threads(1)
    try:
        km.train(f32(x))
    finally:
        fa.omp_set_num_threads(previous)
    return km.centroids


# ------------------------------------------------------------------ flat searches


def flat_index(points: np.ndarray):
    """An ``IndexFlatL2`` holding ``points`` (row number = id)."""
    index = faiss().IndexFlatL2(points.shape[1])
    index.add(f32(points))
    return index


# ------------------------------------------------------------------- IVF indexes


def ivf_flat(centroids: np.ndarray, vectors: np.ndarray):
    """An ``IndexIVFFlat`` over preset ``centroids`` holding ``vectors`` (row number = id)."""
    fa = faiss()
    d = centroids.shape[1]
    quant = fa.IndexFlatL2(d)
    quant.add(f32(centroids))
    index = fa.IndexIVFFlat(quant, d, len(centroids), fa.METRIC_L2)
    index.own_fields = True
    quant.this.disown()
    index.add(f32(vectors))
    return index


def hnsw(vectors: np.ndarray, m: int, ef_construction: int):
    """An ``IndexHNSWFlat``, built single-threaded (parallel insertion is not reproducible)."""
    fa = faiss()
    index = fa.IndexHNSWFlat(vectors.shape[1], m)
    index.hnsw.efConstruction = ef_construction
    previous = fa.omp_get_max_threads()
    fa.omp_set_num_threads(1)
    try:
        index.add(f32(vectors))
    finally:
        fa.omp_set_num_threads(previous)
    return index


# -------------------------------------------------------------- shipping and cache


@dataclass(frozen=True)
class ShippedIndex:
    """A serialized FAISS index plus what a worker needs to search it."""

    token: str
    data: bytes
    method: str
    nprobe: int
    ef_search: int


def ship(index, method: str, nprobe: int, ef_search: int = 0) -> ShippedIndex:
    """Serialize ``index``; the token is a hash of its bytes (the cache key)."""
    data = faiss().serialize_index(index).tobytes()
    token = hashlib.blake2b(data, digest_size=16).hexdigest()
    return ShippedIndex(token, data, method, nprobe, ef_search)


_CACHE: OrderedDict[str, object] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def load_index(shipped: ShippedIndex):
    """Deserialize ``shipped`` once per process (LRU cache keyed by content hash and
    search settings: the same index searched with another ``nprobe`` is another entry)."""
    key = f"{shipped.token}:{shipped.method}:{shipped.nprobe}:{shipped.ef_search}"
    with _CACHE_LOCK:
        index = _CACHE.get(key)
        if index is not None:
            _CACHE.move_to_end(key)
            return index
    fa = faiss()
    index = fa.deserialize_index(np.frombuffer(shipped.data, dtype=np.uint8))
    if shipped.method == "ivf":
        fa.extract_index_ivf(index).nprobe = shipped.nprobe
    elif shipped.method == "hnsw":
        index.hnsw.efSearch = shipped.ef_search
    with _CACHE_LOCK:
        _CACHE[key] = index
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return index
