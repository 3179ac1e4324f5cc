"""The daily data-lake job: Hive and Delta inputs, --where/--version, partitioned Parquet
and Delta outputs, idempotent reruns, concurrent runs, the run manifest, bad input and
kills during the commit; on the local engine, the real Dask cluster and real Spark."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from distsmote import SMOTE
from distsmote.cli import main
from distsmote.where import WhereError, parse_where

from _data import assert_same_rows, make_frame

ROOT = Path(__file__).resolve().parents[1]
DAYS = ("2026-11-26", "2026-11-27")


def _day_frame(day: str) -> pd.DataFrame:
    return make_frame({0: 240, 1: 30}, n_features=3, seed=DAYS.index(day) + 3)


@pytest.fixture()
def lake(tmp_path):
    """A Hive-partitioned Parquet input, two days, two files per day."""
    src = tmp_path / "landing"
    for day in DAYS:
        frame = _day_frame(day)
        d = src / f"dt={day}"
        d.mkdir(parents=True)
        frame.iloc[:100].to_parquet(d / "a.parquet", index=False)
        frame.iloc[100:].to_parquet(d / "b.parquet", index=False)
    return src


def _error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if not re.match(r"\d\d:\d\d:\d\d distsmote: ", line)]


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _job(src, dst, day, *extra):
    return ["resample", "--input", src, "--output", dst, "--label", "y", "--seed", "4", "--quiet",
            "--where", f"dt = '{day}'", "--partition-by", "dt", *extra]


def _expected(day: str) -> pd.DataFrame:
    return SMOTE(random_state=4).resample(_day_frame(day), label="y")


def _delta(path) -> pd.DataFrame:
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pandas()


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# -- --where ----------------------------------------------------------------------------


def test_where_grammar():
    conds = parse_where("dt = '2026-11-27' AND n >= 3 and `odd col` IN ('a', \"b\") AND ok = true")
    assert [(c.column, c.op, c.value) for c in conds] == [
        ("dt", "=", "2026-11-27"), ("n", ">=", 3), ("odd col", "in", ("a", "b")), ("ok", "=", True)]
    assert conds[0].sql() == "`dt` = '2026-11-27'" and conds[2].dnf() == ("odd col", "in", ["a", "b"])
    assert conds[1].test(3) and not conds[1].test(2) and conds[2].test("b") and not conds[0].test(None)
    assert parse_where("x = 'it''s'")[0].value == "it's"
    for bad, why in [("dt = ", "expected a value"), ("dt ~ 1", "cannot read"), ("dt = 1 OR dt = 2", "OR is not"),
                     ("= 1", "expected a column name"), ("dt IN (1, 2", re.escape("expected ',' or ')'"))]:
        with pytest.raises(WhereError, match=why):
            parse_where(bad)  # noqa


# -- partitioned outputs: a rerun replaces exactly its partition -------------------------


@pytest.mark.parametrize("fmt", ["parquet", "delta"])
def test_rerun_replaces_exactly_its_partition_local(lake, tmp_path, capsys, fmt):
    dst = tmp_path / "lake" / "train"
    for day in DAYS:
        code, _, err = _run(capsys, *_job(lake, dst, day, "--engine", "local", "--format", fmt))
        assert code == 0, err
    other = {k: v for k, v in _tree(dst).items() if f"dt={DAYS[0]}" in k}
    code, _, err = _run(capsys, *_job(lake, dst, DAYS[1], "--engine", "local", "--format", fmt))  # the retry
    assert code == 0, err
    assert {k: v for k, v in _tree(dst).items() if f"dt={DAYS[0]}" in k} == other  # untouched
    if fmt == "delta":
        from deltalake import DeltaTable

        table = DeltaTable(str(dst))
        got = _delta(dst)
        assert table.version() == 2  # one version per run
        history = table.history()
        assert [h["operation"] for h in history] == ["WRITE", "WRITE", "CREATE TABLE"]
        manifest = json.loads(history[0]["distsmote.manifest"])
        assert manifest["input"]["partition"] == {"dt": DAYS[1]}
        # Per partition, the copies of its two input files and the new rows' file: the
        # rerun replaced its own.
        assert len(table.file_uris()) == 6
    else:
        got = pd.read_parquet(dst)
        assert sorted(p.name for p in dst.iterdir()) == ["_distsmote_manifest.json", *(f"dt={d}" for d in DAYS)]
        assert (dst / f"dt={DAYS[1]}" / "_SUCCESS").exists()
    for day in DAYS:
        rows = got[got["dt"].astype(str) == day].drop(columns="dt").reset_index(drop=True)
        assert_same_rows(rows, _expected(day))


def test_delta_input_pinned_version_and_where_rows(lake, tmp_path, capsys):
    table = tmp_path / "delta"
    for day in DAYS:
        assert _run(capsys, *_job(lake, table, day, "--engine", "local", "--format", "delta"))[0] == 0
    assert _run(capsys, *_job(lake, table, DAYS[1], "--engine", "local", "--format", "delta",
                              "--sampler", "enn"))[0] == 0  # version 2 replaces day 2 by ENN's rows
    out = tmp_path / "out"
    code, _, err = _run(capsys, "resample", "--input", table, "--output", out, "--label", "y", "--engine", "local",
                        "--where", f"dt = '{DAYS[1]}' AND f0 > -100", "--version", "1", "--sampler", "enn",
                        "--quiet")
    assert code == 0, err
    from distsmote import EditedNearestNeighbours

    expected = EditedNearestNeighbours().resample(_expected(DAYS[1]), label="y")
    assert_same_rows(pd.read_parquet(out), expected)  # version 1: SMOTE's day-2 rows
    doc = json.loads((out / "_distsmote_manifest.json").read_text())
    assert doc["input"]["delta_version"] == 1 and doc["input"]["format"] == "delta"
    assert doc["input"]["files"][0]["bytes"] > 0


# -- the same job on the real clusters ---------------------------------------------------


def _check_split(train: pd.DataFrame, test: pd.DataFrame, day: str, seed: int = 4) -> None:
    """Disjoint, union = input, no synthetic row in test, exact per-class fractions,
    and the train side resampled exactly as resampling it alone would."""
    source = _day_frame(day)
    original = train[~train["syn"]].drop(columns="syn")
    assert_same_rows(pd.concat([original, test], ignore_index=True), source)  # a partition of the input
    assert test["y"].value_counts().to_dict() == {0: 48, 1: 6}  # round(0.2 * 240), round(0.2 * 30)
    assert "syn" not in test.columns  # the test split is never resampled
    expected = SMOTE(random_state=seed).resample(original.reset_index(drop=True), label="y", indicator="syn")
    assert_same_rows(train, expected)


def test_split_before_resampling_local(lake, tmp_path, capsys):
    dst = tmp_path / "out"
    argv = _job(lake, dst, DAYS[1], "--engine", "local", "--format", "delta", "--test-fraction", "0.2",
                "--indicator", "syn", "--split-seed", "11")
    for _ in range(2):  # a retry gives the same split and replaces the partition
        code, out, err = _run(capsys, *argv)
        assert code == 0, err
    train, test = _delta(dst / "train").drop(columns="dt"), _delta(dst / "test").drop(columns="dt")
    _check_split(train, test, DAYS[1])
    from deltalake import DeltaTable

    assert DeltaTable(str(dst / "test")).version() == 1 and len(DeltaTable(str(dst / "test")).file_uris()) == 1
    doc = json.loads((dst / "_distsmote_manifest.json").read_text())
    assert doc["split"] == {"test_fraction": 0.2, "stratify": True, "seed": 11}
    assert doc["splits"]["test"]["after"] == {"0": 48, "1": 6} and doc["splits"]["test"]["rows_generated"] == 0
    assert doc["splits"]["train"]["before"] == {"0": 192, "1": 24}
    assert "test split (not resampled): 54 rows" in out
    other = tmp_path / "other-seed"
    assert _run(capsys, *_job(lake, other, DAYS[1], "--engine", "local", "--test-fraction", "0.2",
                              "--split-seed", "12"))[0] == 0
    assert not pd.read_parquet(other / "test").equals(test)  # the split seed matters


def test_split_in_config_and_api(lake, tmp_path):
    from distsmote.config import load_config
    from distsmote.job import run_job

    conf = tmp_path / "job.yaml"
    conf.write_text(f"input: {lake}\noutput: {tmp_path / 'out'}\nlabel: y\nengine: local\nseed: 4\n"
                    f"where: \"dt = '{DAYS[0]}'\"\npartition_by: [dt]\nformat: parquet\n"
                    "test_fraction: 0.2\nstratify: true\nsplit_seed: 0\nindicator: syn\n")
    summary = run_job(load_config(conf), progress=False)
    assert summary.manifest["splits"]["test"]["rows"] == 54
    train = pd.read_parquet(tmp_path / "out" / "train" / f"dt={DAYS[0]}")
    test = pd.read_parquet(tmp_path / "out" / "test" / f"dt={DAYS[0]}")
    _check_split(train, test, DAYS[0])


def test_dask_cluster_and_spark_write_the_same_tables(lake, tmp_path, capsys, dask_cluster, spark):
    """The whole daily job (split, Delta partitions, a retry; Parquet partitions on Spark)
    on the real clusters: the same split and rows as the local engine, one copy after a
    retry.  (Dask's Parquet partitions differ from the local engine's only in where the
    part files are written, which the Delta runs cover.)"""
    argv = ["--test-fraction", "0.2", "--indicator", "syn"]
    local = tmp_path / "local"
    assert _run(capsys, *_job(lake, local, DAYS[1], "--engine", "local", "--format", "delta", *argv))[0] == 0
    want = {s: _delta(local / s) for s in ("train", "test")}
    for engine, extra in [("dask", ["--scheduler", dask_cluster.address]), ("spark", [])]:
        dst = tmp_path / f"delta-{engine}"
        for _ in range(2):  # the retry leaves one copy
            code, _, err = _run(capsys, *_job(lake, dst, DAYS[1], "--engine", engine, "--format", "delta",
                                              *argv, *extra))
            assert code == 0, f"{engine}: {err}"
        for side in ("train", "test"):
            got = _delta(dst / side)
            assert set(got["dt"].astype(str)) == {DAYS[1]}
            assert_same_rows(got, want[side])
        _check_split(want["train"].drop(columns="dt"), want["test"].drop(columns="dt"), DAYS[1])
        if engine == "spark":  # Parquet partitions: Spark's tasks, the Hadoop FileSystem's commit
            pq_dst = tmp_path / f"parquet-{engine}"
            code, _, err = _run(capsys, *_job(lake, pq_dst, DAYS[1], "--engine", engine, *extra))
            assert code == 0, f"{engine}: {err}"
            assert_same_rows(pd.read_parquet(pq_dst / f"dt={DAYS[1]}"), _expected(DAYS[1]))
        doc = json.loads((dst / "_distsmote_manifest.json").read_text())
        assert doc["engine"] == engine and doc["splits"]["train"]["after"] == {"0": 192, "1": 192}


def test_spark_reads_delta_and_hive_with_where(lake, tmp_path, capsys, spark):
    table = tmp_path / "delta"
    assert _run(capsys, *_job(lake, table, DAYS[0], "--engine", "local", "--format", "delta"))[0] == 0
    out = tmp_path / "out"
    code, _, err = _run(capsys, "resample", "--input", table, "--output", out, "--label", "y", "--engine", "spark",
                        "--where", f"dt = '{DAYS[0]}' AND f1 < 100", "--seed", "5", "--quiet")
    assert code == 0, err
    assert_same_rows(pd.read_parquet(out), SMOTE(random_state=5).resample(_expected(DAYS[0]), label="y"))


# -- concurrent runs ----------------------------------------------------------------------


def _cli(*argv, faults: str = "") -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), DISTSMOTE_FAULTS=faults)
    env.pop("DISTSMOTE_FAULTS_FILE", None)
    return subprocess.Popen([sys.executable, "-m", "distsmote.cli", *map(str, argv)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_concurrent_runs_on_one_partition_one_commits_the_other_fails(lake, tmp_path):
    dst = tmp_path / "delta"
    first = _job(lake, dst, DAYS[1], "--engine", "local", "--format", "delta")
    assert main([str(a) for a in first]) == 0  # the table exists at version 0
    slow = _cli(*first, faults="delta.commit=sleep:6")  # reads version 0, then waits before committing
    fast_argv = [*first[:first.index("--seed") + 1], "9", *first[first.index("--seed") + 2:]]
    import time

    time.sleep(3)
    fast = _cli(*fast_argv)
    assert fast.wait(timeout=120) == 0, fast.stderr.read()
    assert slow.wait(timeout=120) == 2
    err = _error_lines(slow.stderr.read())
    assert len(err) == 1 and "another run committed to Delta table" in err[0] and f"dt={DAYS[1]}" in err[0], err
    from deltalake import DeltaTable

    table = DeltaTable(str(dst))
    assert table.version() == 1  # the fast run's commit only
    expected = SMOTE(random_state=9).resample(_day_frame(DAYS[1]), label="y")
    assert_same_rows(_delta(dst).drop(columns="dt"), expected)
    on_disk = sorted(p.name for p in (dst / f"dt={DAYS[1]}").glob("*.parquet"))
    # Version 0's and the fast run's (each: the copies of the day's two input files and
    # the new rows); the loser removed its own files.
    assert len(on_disk) == 6


# -- kills during the commit ----------------------------------------------------------------


@pytest.mark.parametrize("fmt, point", [("delta", "delta.commit"), ("parquet", "commit.move"),
                                        ("parquet", "commit.mark")])
def test_kill_during_commit_keeps_previous_version_and_rerun_succeeds(lake, tmp_path, fmt, point):
    dst = tmp_path / "out"
    argv = _job(lake, dst, DAYS[1], "--engine", "local", "--format", fmt)
    assert main([str(a) for a in _job(lake, dst, DAYS[1], "--engine", "local", "--format", fmt, "--sampler", "enn")]) == 0
    before = _delta(dst) if fmt == "delta" else pd.read_parquet(dst)
    proc = _cli(*argv, faults=f"{point}=kill")
    assert proc.wait(timeout=120) == -9
    part = dst / f"dt={DAYS[1]}"
    if fmt == "delta":
        assert_same_rows(_delta(dst), before)  # the previous version, whole
    else:  # the old partition, marked complete, or no complete-looking partition at all
        assert not (part / "_SUCCESS").exists() or pd.read_parquet(part).shape == before.drop(columns="dt").shape
    assert main([str(a) for a in argv]) == 0
    assert not [p for p in dst.rglob(".*")]  # the rerun recovered: no staging or aside left
    got = _delta(dst) if fmt == "delta" else pd.read_parquet(dst)
    assert_same_rows(got.drop(columns="dt").reset_index(drop=True), _expected(DAYS[1]))
    if fmt == "delta":
        from deltalake import DeltaTable

        assert DeltaTable(str(dst)).version() == 1


# -- bad input: one line naming the culprit, nothing written --------------------------------


def _refused(capsys, tmp_path, dst, *argv) -> str:
    before = _tree(tmp_path)
    code, _, err = _run(capsys, *argv)
    assert code == 2, err
    lines = _error_lines(err)
    assert len(lines) == 1, err
    assert _tree(tmp_path) == before  # nothing written
    return lines[0]


def test_bad_input_is_one_line_with_nothing_written(lake, tmp_path, capsys):
    dst = tmp_path / "out"
    base = ["resample", "--input", lake, "--output", dst, "--label", "y", "--engine", "local", "--quiet"]
    msg = _refused(capsys, tmp_path, dst, *base, "--where", "dt = '2026-12-01'")
    assert "matches no partition" in msg and f"dt={DAYS[0]}" in msg  # a missing partition
    msg = _refused(capsys, tmp_path, dst, *base, "--where", "day = '2026-11-27'")
    assert "'day'" in msg and "does not have" in msg
    msg = _refused(capsys, tmp_path, dst, *base, "--where", f"dt = '{DAYS[0]}' AND f0 > 1000")
    assert msg == f"distsmote: error: --where \"dt = '{DAYS[0]}' AND f0 > 1000\" matches no row of input '{lake}'"
    msg = _refused(capsys, tmp_path, dst, *base, "--where", f"dt = '{DAYS[0]}' AND f0 > 'a'")
    assert "compares column 'f0' (double) with 'a'; write the number unquoted" in msg
    msg = _refused(capsys, tmp_path, dst, *base)
    assert "spans 2 values of partition column 'dt'" in msg
    msg = _refused(capsys, tmp_path, dst, *base, "--where", f"dt = '{DAYS[0]}'", "--partition-by", "f0")
    assert "--partition-by column 'f0' is not a partition column" in msg
    msg = _refused(capsys, tmp_path, dst, *base, "--where", f"dt = '{DAYS[0]}'", "--version", "3")
    assert "needs a Delta table" in msg
    # a file whose schema differs from its partition's other file
    drift = lake / f"dt={DAYS[0]}" / "c.parquet"
    _day_frame(DAYS[0]).astype({"f1": "str"}).to_parquet(drift, index=False)
    msg = _refused(capsys, tmp_path, dst, *base, "--where", f"dt = '{DAYS[0]}'")
    assert "column 'f1'" in msg and "c.parquet" in msg
    drift.unlink()


def test_delta_bad_version_and_output_schema(lake, tmp_path, capsys):
    table = tmp_path / "delta"
    assert _run(capsys, *_job(lake, table, DAYS[0], "--engine", "local", "--format", "delta"))[0] == 0
    msg = _refused(capsys, tmp_path, tmp_path / "o", "resample", "--input", table, "--output", tmp_path / "o",
                   "--label", "y", "--engine", "local", "--version", "5")
    assert "has no version 5; its latest version is 0" in msg
    # an output table whose schema differs: the indicator column is not in the table
    msg = _refused(capsys, tmp_path, table, *_job(lake, table, DAYS[1], "--engine", "local", "--format", "delta",
                                                  "--indicator", "syn"))
    assert "has column 'syn'" in msg and "existing Delta table" in msg
    # a partitioned Parquet dataset: a new partition must match the existing ones
    pq_dst = tmp_path / "pq"
    assert _run(capsys, *_job(lake, pq_dst, DAYS[0], "--engine", "local"))[0] == 0
    msg = _refused(capsys, tmp_path, pq_dst, *_job(lake, pq_dst, DAYS[1], "--engine", "local", "--indicator", "syn"))
    assert "has column 'syn'" in msg and "existing dataset" in msg
    # a Delta table is not overwritten as a Parquet dataset, nor the other way round
    msg = _refused(capsys, tmp_path, table, *_job(lake, table, DAYS[0], "--engine", "local"))
    assert "is a Delta table; pass --format delta" in msg
    msg = _refused(capsys, tmp_path, pq_dst, *_job(lake, pq_dst, DAYS[0], "--engine", "local", "--format", "delta"))
    assert "is not a Delta table" in msg


# -- manifest and inspect -------------------------------------------------------------------


def test_manifest_and_inspect(lake, tmp_path, capsys):
    dst = tmp_path / "out"
    code, _, err = _run(capsys, *_job(lake, dst, DAYS[1], "--engine", "local", "--format", "delta"))
    assert code == 0, err
    doc = json.loads((dst / "_distsmote_manifest.json").read_text())
    assert doc["engine"] == "local" and doc["seed"] == 4 and doc["sampler"]["class"] == "SMOTE"
    assert doc["sampler"]["params"]["random_state"] == 4
    assert [f["path"].rsplit("/", 2)[-2:] for f in doc["input"]["files"]] == [[f"dt={DAYS[1]}", "a.parquet"],
                                                                             [f"dt={DAYS[1]}", "b.parquet"]]
    assert all(f["bytes"] == os.path.getsize(f["path"]) for f in doc["input"]["files"])
    out = doc["splits"]["output"]
    assert out["before"] == {"0": 240, "1": 30} and out["after"] == {"0": 240, "1": 240}
    assert out["rows_generated"] == 210 and out["rows_removed"] == 0 and out["output"]["delta_version"] == 0
    assert doc["versions"]["distsmote"] and doc["versions"]["faiss-cpu"] and doc["versions"]["deltalake"]
    assert {"inspect input", "plan", "write", "commit"} <= set(doc["phases_seconds"])
    assert doc["knn"]["requested"] == "auto" and doc["knn"]["recall"] == "exact"  # 30 rows: a flat index
    code, text, _ = _run(capsys, "inspect", dst)
    assert code == 0
    assert re.search(r"^sampler\s+smote \(SMOTE\)$", text, re.M)
    assert re.search(r"^  1\s+30\s+240$", text, re.M) and "210 generated" in text and "Delta version 0" in text
    (dst / "_distsmote_manifest.json").unlink()  # the Delta commit's metadata has it too
    code, text, _ = _run(capsys, "inspect", dst, "--json")
    assert code == 0 and json.loads(text)["splits"]["output"]["after"] == {"0": 240, "1": 240}
    code, _, err = _run(capsys, "inspect", tmp_path / "nothing")
    assert code == 2 and "no run manifest" in err


def test_manifest_records_measured_recall_of_an_approximate_index(lake, tmp_path, capsys):
    dst = tmp_path / "out"
    code, _, err = _run(capsys, *_job(lake, dst, DAYS[1], "--engine", "local", "--knn", "hnsw"))
    assert code == 0, err
    knn = json.loads((dst / "_distsmote_manifest.json").read_text())["knn"]
    assert knn["requested"] == "hnsw" and set(knn["recall"]) == {"1"} and 0 < knn["recall"]["1"] <= 1


# -- engines: sessions and clients ----------------------------------------------------------


def test_dask_engine_client_is_explicit_or_current(dask_client):
    from distsmote.engines.dask import DaskEngine

    assert DaskEngine().client is dask_client  # the current client, as xgboost does
    sentinel = object()
    assert DaskEngine(client=sentinel).client is sentinel


def test_spark_engine_uses_the_active_session(spark):
    from distsmote.engines.spark import SparkEngine

    assert SparkEngine().spark is spark


def test_two_runs_creating_one_table_one_commits(tmp_path):
    """The first day of a new table: both runs saw no table; the second create fails."""
    import pyarrow as pa

    from distsmote.delta import ConcurrentRunError, DeltaWrite
    from distsmote.engines.files import make_directory, write_table

    data = pa.table({"x": [1.0, 2.0], "y": [0, 1]})
    path = str(tmp_path / "new")
    first, second = (DeltaWrite(path, {"dt": DAYS[0]}, {"dt": pa.string()}) for _ in range(2))
    make_directory(first.directory)  # as an engine's write_parts does before its tasks run
    parts = [write_table(data, w.directory, token, 0, "y") for w, token in ((first, "a"), (second, "b"))]
    assert first.commit([parts[0]], data.schema, {"m": "1"}) == 0
    with pytest.raises(ConcurrentRunError, match="another run committed to Delta table .* partition dt="):
        second.commit([parts[1]], data.schema, {"m": "2"})
    rows = _delta(path)
    assert len(rows) == 2 and parts[0].counts == {0: 1, 1: 1}
