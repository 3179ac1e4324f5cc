"""Spark shuffles in blocks (distsmote.engines.spark_shuffle): the blocks' rows, and a
shuffle of a frame a Python task makes, on the real Spark cluster."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distsmote.engines.direct import destinations
from distsmote.engines.spark_shuffle import (
    BLOCK,
    PARTITION,
    block_bytes,
    from_blocks,
    to_blocks,
)


def _tables(n_rows: int, seed: int, pieces: int) -> list[pa.Table]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"k": rng.integers(-2**62, 2**62, n_rows), "x": rng.normal(size=n_rows).astype(np.float32),
                          "c": rng.integers(0, 5, n_rows).astype(np.int32)})
    cuts = np.linspace(0, n_rows, pieces + 1).astype(int)
    return [pa.Table.from_pandas(frame.iloc[a:b], preserve_index=False) for a, b in itertools.pairwise(cuts)]


@settings(max_examples=25, deadline=None)
@given(n_rows=st.integers(0, 3_000), seed=st.integers(0, 2**16), pieces=st.integers(1, 4),
       n=st.integers(1, 9), max_bytes=st.sampled_from([1, 256, 4_096, 1 << 20]))
def test_blocks_carry_every_row_to_its_partition(n_rows, seed, pieces, n, max_bytes):
    """Each row arrives once, in a block of its partition's value; no block is empty,
    and none is much over ``max_bytes`` unless it holds a single row."""
    tables = _tables(n_rows, seed, pieces)
    values = [1000 + p for p in range(n)]
    sent = list(to_blocks(tables, "k", n, False, values, max_bytes))
    rows = pa.concat_tables(tables).to_pandas()
    expected = destinations(rows["k"].to_numpy(), n, False)
    assert {v for b in sent for v in b.column(PARTITION).to_pylist()} == {values[p] for p in np.unique(expected)}
    for b in sent:
        for block in b.column(BLOCK):
            table = from_blocks([pa.RecordBatch.from_arrays([pa.array([block.as_py()], pa.binary())], names=[BLOCK])])
            assert table.num_rows == 1 or table.nbytes <= 2 * max_bytes
    for p in range(n):
        mine = [b.filter(pc.equal(b.column(PARTITION), values[p])) for b in sent]
        got = from_blocks(mine)
        want = rows[expected == p]
        if got is None:
            assert want.empty
            continue
        pd.testing.assert_frame_equal(got.to_pandas().sort_values("k", ignore_index=True),
                                      want.sort_values("k", ignore_index=True))


def test_direct_destinations_and_block_size():
    assert destinations(np.array([3, 0, 2]), 4, True).tolist() == [3, 0, 2]
    hashed = destinations(np.arange(10_000), 7, False)
    assert hashed.min() == 0 and hashed.max() == 6 and np.bincount(hashed).min() > 1_200
    assert block_bytes(10_000) == (1 << 30) // 10_000  # 10 000 blocks per batch stay under 2 GiB
    assert block_bytes(1) == 4 << 20 and block_bytes(10**9) == 64 << 10
    assert from_blocks([]) is None


@pytest.mark.parametrize("direct", [False, True])
def test_spark_shuffle_of_a_python_frame_travels_in_blocks(spark, direct):
    """A shuffle of a ``map_partitions`` output: the map's tasks send blocks (the plan
    shuffles ``__block__`` rows), and every row reaches its one ``fn`` call."""
    from distsmote.engines.spark import SparkEngine

    engine = SparkEngine(spark)
    rng = np.random.default_rng(7)
    n = 5
    frame = pd.DataFrame({"g": rng.integers(0, n, 4_000), "x": rng.normal(size=4_000)})
    meta_in = pd.DataFrame({"g": np.array([], np.int64), "x": np.array([], np.float64)})

    def doubled(pdf, payload, threads):
        return pdf.assign(x=pdf["x"] * 2)

    def per_call(pdf, payload, threads):
        sums = pdf.groupby("g")["x"].agg(["size", "sum"])
        return pd.DataFrame({"g": sums.index.to_numpy(np.int64), "values": len(sums),
                             "rows": sums["size"].to_numpy(np.int64), "x": sums["sum"].to_numpy()})

    meta = pd.DataFrame({"g": np.array([], np.int64), "values": np.array([], np.int64),
                         "rows": np.array([], np.int64), "x": np.array([], np.float64)})
    handle = engine.broadcast(None)
    made = engine.map_partitions(spark.createDataFrame(frame).repartition(3), doubled, handle, meta_in)
    out = engine.shuffle_map(made, "g", per_call, handle, meta, n, direct=direct)
    assert BLOCK in out._jdf.queryExecution().optimizedPlan().toString()
    got = out.toPandas().sort_values("g", ignore_index=True)
    assert got["g"].tolist() == list(range(n))  # each value's rows reach one call, whole
    if direct:
        assert got["values"].tolist() == [1] * n
    assert got["rows"].tolist() == np.bincount(frame["g"], minlength=n).tolist()
    np.testing.assert_allclose(got["x"].to_numpy(), frame.groupby("g")["x"].sum().to_numpy() * 2)
