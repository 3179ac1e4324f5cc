"""Input files are checked on the driver from their footers: read failures and schema
drift are one line naming the file and the column, on every engine; lossless widening
(float32 with float64, int32 with int64) is read as the wider type everywhere."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from distsmote import SMOTE
from distsmote.cli import main
from distsmote.inputs import resolve_input
from distsmote.reading import InputFileError, unify_types

from _data import assert_same_rows, make_frame


def _frame(n0=120, n1=20, seed=4) -> pd.DataFrame:
    return make_frame({0: n0, 1: n1}, n_features=3, seed=seed, dtype=np.float32)


def _error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if not re.match(r"\d\d:\d\d:\d\d distsmote: ", line)]


def _bad_inputs(tmp_path):
    """``(name, input path, words the one-line error must contain)``."""
    frame = _frame()
    cases = []

    def dataset(name, *parts):
        d = tmp_path / name
        d.mkdir()
        for i, part in enumerate(parts):
            part.to_parquet(d / f"part-{i}.parquet", index=False)
        return d

    cases.append(("missing", tmp_path / "nope", ["does not exist"]))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_SUCCESS").touch()
    cases.append(("empty dir", empty, ["no Parquet files under", "empty"]))
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    cases.append(("csv", csv, ["data.csv", "not a Parquet file"]))
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    cases.append(("truncated", cut, ["cut.parquet", "truncated or corrupt Parquet file"]))
    d = dataset("later-extra", frame.iloc[:70], frame.iloc[70:].assign(extra=1.0))
    cases.append(("extra column later", d, ["part-1.parquet", "'extra'"]))
    d = dataset("first-extra", frame.iloc[:70].assign(extra=1.0), frame.iloc[70:])
    cases.append(("extra column first", d, ["part-1.parquet", "'extra'"]))
    d = dataset("int-vs-float", frame.iloc[:70], frame.iloc[70:].assign(f1=np.int64(3)))
    cases.append(("int vs float", d, ["part-1.parquet", "'f1'", "int64", "float"]))
    d = tmp_path / "one-bad-file"
    d.mkdir()
    frame.iloc[:70].to_parquet(d / "part-0.parquet", index=False)
    (d / "part-1.parquet").write_text("label,f0\n1,2\n")
    cases.append(("one CSV among Parquet", d, ["part-1.parquet", "not a Parquet file"]))
    return cases


def test_input_errors_are_one_line(tmp_path):
    for name, path, words in _bad_inputs(tmp_path):
        with pytest.raises((InputFileError, FileNotFoundError)) as err:
            resolve_input(str(path))
        message = str(err.value)
        assert "\n" not in message, name
        for word in words:
            assert word in message, (name, message)


@pytest.mark.parametrize("engine", ["local", "dask", "spark"])
def test_read_failures_and_drift_are_one_line_on_every_engine(tmp_path, capsys, engine, request):
    if engine == "spark":
        request.getfixturevalue("spark")  # a run that got past the check would use it
    for name, path, words in _bad_inputs(tmp_path):
        dst = tmp_path / "out"
        code = main(["resample", "--input", str(path), "--output", str(dst), "--label", "y",
                     "--engine", engine])
        err = capsys.readouterr().err
        lines = _error_lines(err)
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (name, err)
        for word in words:
            assert word in lines[0], (name, lines[0])
        assert not dst.exists() and not list(tmp_path.glob(".out*"))


@pytest.mark.parametrize(
    "types, unified",
    [
        ([pa.float32(), pa.float64()], pa.float64()),
        ([pa.float64(), pa.float32(), pa.float16()], pa.float64()),
        ([pa.int32(), pa.int64()], pa.int64()),
        ([pa.int8(), pa.int16()], pa.int16()),
        ([pa.uint32(), pa.int64()], pa.int64()),
        ([pa.uint8(), pa.uint16()], pa.uint16()),
        ([pa.string(), pa.large_string()], pa.large_string()),
        ([pa.int64(), pa.uint64()], None),
        ([pa.int32(), pa.uint32()], None),
        ([pa.int64(), pa.float64()], None),
        ([pa.string(), pa.int64()], None),
        ([pa.timestamp("ms"), pa.timestamp("us")], None),
    ],
)
def test_widening_rules(types, unified):
    typed = [(f"f{i}.parquet", t) for i, t in enumerate(types)]
    if unified is None:
        with pytest.raises(InputFileError, match="column 'c' is"):
            unify_types("c", typed)
    else:
        assert unify_types("c", typed) == unified


def test_hidden_files_are_ignored(tmp_path):
    d = tmp_path / "ds"
    (d / "_temporary").mkdir(parents=True)
    _frame().to_parquet(d / "part-0.parquet", index=False)
    (d / "_SUCCESS").touch()
    (d / ".part-0.parquet.crc").write_bytes(b"crc")
    (d / "_temporary" / "junk").write_text("x")
    info = resolve_input(str(d))
    assert [f.rsplit("/", 1)[1] for f in info.files] == ["part-0.parquet"] and not info.widened


@pytest.fixture()
def widened(tmp_path):
    """Two files: float32 features and int32 labels, then float64 and int64."""
    frame = _frame(n0=200, n1=30)
    frame["y"] = frame["y"].astype(np.int32)
    src = tmp_path / "mixed"
    src.mkdir()
    frame.iloc[:110].to_parquet(src / "part-0.parquet", index=False)
    later = frame.iloc[110:].astype({"f0": np.float64, "f1": np.float64, "f2": np.float64, "y": np.int64})
    later.to_parquet(src / "part-1.parquet", index=False)
    whole = frame.astype({"f0": np.float64, "f1": np.float64, "f2": np.float64, "y": np.int64})
    return whole, src


def _run_widened(engine, whole, src, tmp_path, capsys, *extra):
    dst = tmp_path / "out"
    code = main(["resample", "--input", str(src), "--output", str(dst), "--label", "y",
                 "--engine", engine, "--seed", "5", "--quiet", *extra])
    assert code == 0, capsys.readouterr().err
    info = resolve_input(str(dst))
    assert info.schema.field("f0").type == pa.float64() and info.schema.field("y").type == pa.int64()
    assert not info.widened  # every output file has the unified types
    assert_same_rows(pd.read_parquet(dst), SMOTE(random_state=5).resample(whole, label="y"))


def test_widening_local(widened, tmp_path, capsys):
    _run_widened("local", *widened, tmp_path, capsys)


def test_widening_dask(widened, tmp_path, capsys, dask_cluster):
    _run_widened("dask", *widened, tmp_path, capsys, "--scheduler", dask_cluster.address)


def test_widening_spark(widened, spark):
    """Spark reads every file with the unified types (the rest of a run is engine-blind)."""
    from distsmote.engines.spark import SparkEngine
    from distsmote.inputs import resolve_input

    whole, src = widened
    source = resolve_input(str(src))
    assert source.widened
    frame = SparkEngine(spark).read(source)
    assert dict(frame.dtypes) == {"f0": "double", "f1": "double", "f2": "double", "y": "bigint"}
    assert_same_rows(frame.toPandas(), whole)  # 230 rows


def test_spark_inputs_fsspec_cannot_open_skip_the_footer_check(caplog):
    """Hadoop-only URLs (no s3fs/adlfs/libhdfs here) are left to Spark, not refused."""
    import logging

    from distsmote.config import load_config
    from distsmote.job import resolve_source

    for url in ("s3a://bucket/train", "abfs://c@acct.dfs.core.windows.net/train", "hdfs://nn:8020/train"):
        config = load_config(None, {"input": url, "output": url + "_out", "label": "y", "engine": "spark"})
        with caplog.at_level(logging.INFO, logger="distsmote"):
            assert resolve_source(config).files is None
        assert "input files not checked before reading" in caplog.text
        caplog.clear()
        dask_config = load_config(None, {"input": url, "output": url + "_out", "label": "y", "engine": "dask"})
        with pytest.raises(Exception):
            resolve_source(dask_config)
