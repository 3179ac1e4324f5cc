"""A job copies the input's files into its output when an over-sampler leaves their rows
unchanged (distsmote.input_copy): byte for byte, numbered first, committed with the new
rows, on every engine; and rewrites the rows whenever a copy would not read the same."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distsmote import SMOTE
from distsmote.cli import main

from _data import assert_same_rows, make_frame


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _frame() -> pd.DataFrame:
    return make_frame({0: 600, 1: 40, 2: 25}, n_features=4, seed=11, dtype=np.float32)


@pytest.fixture()
def source(tmp_path) -> Path:
    """Three Parquet files written by pandas, without an index."""
    src = tmp_path / "input"
    src.mkdir()
    frame = _frame()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(src / f"part-{i}.parquet", index=False)
    return src


def _resample(src: Path, dst: Path, *extra: str) -> None:
    argv = ["resample", "--input", str(src), "--output", str(dst), "--label", "y", "--seed", "5", "--quiet",
            *extra]
    assert main(argv) == 0


def _copies(src: Path, dst: Path) -> list[str]:
    """The output files (sorted by name) that are byte-for-byte input files: their input names."""
    inputs = {_digest(f): f.name for f in src.glob("*.parquet")}
    return [inputs[d] for d in map(_digest, sorted(dst.glob("*.parquet"))) if d in inputs]


def _expected(frame: pd.DataFrame, **kwargs) -> pd.DataFrame:
    return SMOTE(random_state=5).resample(frame, label="y", **kwargs)


@pytest.mark.parametrize("engine", ["local", "dask", "spark"])
def test_the_input_files_are_copied_first_and_the_rows_match(engine, source, tmp_path, request):
    extra = ["--engine", engine]
    if engine == "dask":
        extra += ["--scheduler", request.getfixturevalue("dask_cluster").address]
    elif engine == "spark":
        request.getfixturevalue("spark")
    before = {f.name: _digest(f) for f in source.iterdir()}
    dst = tmp_path / "output"
    _resample(source, dst, *extra)

    names = sorted(f.name for f in dst.glob("*.parquet"))
    # Each input file once, byte for byte, as the first part files (input order); then
    # the new rows, which are no input file.
    assert _copies(source, dst) == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert {_digest(dst / n) for n in names[:3]} == {before[f"part-{i}.parquet"] for i in range(3)}
    assert len(names) > 3
    assert_same_rows(pd.read_parquet(dst), _expected(_frame()))
    doc = json.loads((dst / "_distsmote_manifest.json").read_text())
    assert doc["splits"]["output"]["after"] == {"0": 600, "1": 600, "2": 600}
    copied = [f["copy_of"] for f in doc["splits"]["output"]["files"] if "copy_of" in f]
    assert [Path(f).name for f in copied] == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert {f.name: _digest(f) for f in source.iterdir()} == before  # the input is only read


def test_the_same_output_rows_as_a_rewrite(source, tmp_path):
    """With an indicator the rows are rewritten; without, copied: the same rows either way."""
    copied, rewritten = tmp_path / "copied", tmp_path / "rewritten"
    _resample(source, copied, "--engine", "local")
    _resample(source, rewritten, "--engine", "local", "--indicator", "syn")
    assert len(_copies(source, copied)) == 3 and _copies(source, rewritten) == []
    assert_same_rows(pd.read_parquet(copied), pd.read_parquet(rewritten).drop(columns="syn"))


def test_delta_output_commits_the_copies(source, tmp_path):
    import deltalake

    dst = tmp_path / "table"
    _resample(source, dst, "--engine", "local", "--format", "delta")
    table = deltalake.DeltaTable(str(dst))
    assert sorted(Path(f).name for f in table.file_uris())[:3] == sorted(
        f.name for f in dst.glob("*.parquet"))[:3]
    assert len(_copies(source, dst)) == 3
    assert_same_rows(table.to_pandas(), _expected(_frame()))


def _rewrites(src: Path, tmp_path: Path, *extra: str) -> pd.DataFrame:
    dst = tmp_path / "output"
    _resample(src, dst, "--engine", "local", *extra)
    assert _copies(src, dst) == []
    return pd.read_parquet(dst)


def test_a_where_on_rows_rewrites(source, tmp_path):
    out = _rewrites(source, tmp_path, "--where", "f0 > -100")
    assert_same_rows(out, _expected(_frame()))


def test_files_with_other_column_orders_are_rewritten(tmp_path):
    src = tmp_path / "input"
    src.mkdir()
    frame = _frame()
    frame.iloc[:300].to_parquet(src / "a.parquet", index=False)
    frame.iloc[300:][["y", *frame.columns[:-1]]].to_parquet(src / "b.parquet", index=False)
    assert_same_rows(_rewrites(src, tmp_path), _expected(frame))


def test_files_with_an_index_column_are_rewritten(tmp_path):
    """pandas' index in the files is not a column of the frame: a copy would add one."""
    src = tmp_path / "input"
    src.mkdir()
    frame = _frame()
    frame.iloc[:300].to_parquet(src / "a.parquet", index=True)
    frame.iloc[300:].to_parquet(src / "b.parquet", index=True)
    assert "__index_level_0__" in pq.read_schema(src / "a.parquet").names
    assert_same_rows(_rewrites(src, tmp_path), _expected(frame))


def test_non_nullable_columns_are_rewritten(tmp_path):
    """A file whose columns are declared required differs from the output's schema."""
    src = tmp_path / "input"
    src.mkdir()
    frame = _frame()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema([f.with_nullable(False) for f in table.schema])
    pq.write_table(table.cast(schema), src / "a.parquet")
    assert_same_rows(_rewrites(src, tmp_path), _expected(frame))


def test_a_test_split_rewrites(source, tmp_path):
    dst = tmp_path / "output"
    _resample(source, dst, "--engine", "local", "--test-fraction", "0.2")
    assert _copies(source, dst / "train") == [] and _copies(source, dst / "test") == []


def test_an_input_with_nothing_to_generate_is_rewritten(tmp_path):
    """A balanced input: the sampler returns its rows, which are written as they are read."""
    src = tmp_path / "input"
    src.mkdir()
    frame = make_frame({0: 50, 1: 50}, n_features=3, seed=2, dtype=np.float32)
    frame.to_parquet(src / "a.parquet", index=False)
    assert_same_rows(_rewrites(src, tmp_path), frame)


def test_the_sampler_returns_only_new_rows_when_asked():
    frame = _frame()
    sampler = SMOTE(random_state=5)
    full = sampler.resample(frame, label="y")
    assert sampler.new_rows_only_ is False
    new = sampler.resample(frame, label="y", new_rows_only=True)
    assert sampler.new_rows_only_ is True
    assert_same_rows(pd.concat([frame, new], ignore_index=True), full)
    # An indicator changes the input's rows (a column): they stay in the output.
    out = sampler.resample(frame, label="y", indicator="syn", new_rows_only=True)
    assert sampler.new_rows_only_ is False and len(out) == len(full)


@pytest.mark.parametrize("name, params", [
    ("adasyn", {}),
    ("borderline-2", {}),
    ("smote", {"driver_budget": 1}),  # generated from the kNN join, not a broadcast index
])
def test_every_over_sampler_copies_the_input(tmp_path, name, params):
    from distsmote.config import build_config, make_sampler
    from distsmote.job import run_job

    rng = np.random.default_rng(3)  # overlapping classes: ADASYN needs mixed neighbourhoods
    frame = pd.DataFrame(rng.normal(size=(900, 4)).astype(np.float32), columns=[f"f{j}" for j in range(4)])
    frame["y"] = rng.choice([0, 1, 2], size=900, p=[0.8, 0.12, 0.08])
    src = tmp_path / "input"
    src.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(src / f"part-{i}.parquet", index=False)
    dst = tmp_path / "output"
    config = build_config({"input": str(src), "output": str(dst), "label": "y", "engine": "local",
                           "seed": 5, "sampler": {"name": name, "params": params}})
    summary = run_job(config, progress=False)
    assert _copies(src, dst) == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    expected = make_sampler(config.sampler, 5).resample(frame, label="y")
    assert_same_rows(pd.read_parquet(dst), expected)
    assert summary.rows_written == len(expected) > len(frame)
