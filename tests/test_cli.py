"""The distsmote command: config, overrides, one-line errors, all-or-nothing output."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from distsmote import SMOTE
from distsmote.cli import main
from distsmote.config import ConfigError, load_config

from _data import assert_same_rows, make_frame


@pytest.fixture()
def dataset(tmp_path):
    frame = make_frame({0: 400, 1: 40}, n_features=3, seed=1, dtype=np.float32)
    path = tmp_path / "in"
    path.mkdir()
    frame.iloc[:200].to_parquet(path / "a.parquet", index=False)
    frame.iloc[200:].to_parquet(path / "b.parquet", index=False)
    return frame, str(path)


def _error_lines(err: str) -> list[str]:
    """stderr minus the timestamped progress log lines."""
    return [line for line in err.strip().splitlines() if not re.match(r"\d\d:\d\d:\d\d distsmote: ", line)]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_local_run_writes_committed_dataset_and_summary(dataset, tmp_path, capsys):
    frame, src = dataset
    dst = tmp_path / "out"
    code, out, err = _run(capsys, "resample", "--input", src, "--output", str(dst), "--label", "y",
                          "--engine", "local", "--seed", "7", "--indicator", "syn")
    assert code == 0, err
    assert (dst / "_SUCCESS").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left
    result = pd.read_parquet(dst)
    expected = SMOTE(random_state=7).resample(frame, label="y", indicator="syn")
    assert_same_rows(result, expected)
    assert "400" in out and "SMOTE on local: wrote 800 rows" in out


def test_config_file_and_flag_override(dataset, tmp_path, capsys):
    frame, src = dataset
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"input: {src}\noutput: {tmp_path / 'ignored'}\nlabel: y\nengine: local\nseed: 3\n"
        "sampler:\n  name: smote\n  params:\n    sampling_strategy: 0.5\n    k_neighbors: 3\n"
    )
    dst = tmp_path / "out"
    code, out, err = _run(capsys, "resample", "--config", str(cfg), "--output", str(dst), "--seed", "4")
    assert code == 0, err
    result = pd.read_parquet(dst)
    assert result["y"].value_counts().to_dict() == {0: 400, 1: 200}
    expected = SMOTE(random_state=4, sampling_strategy=0.5, k_neighbors=3).resample(frame, label="y")
    assert_same_rows(result, expected)
    assert not (tmp_path / "ignored").exists()


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("labels: y\n", "unknown config key 'labels'"),
        ("dask:\n  schedular: x\n", "unknown config key 'dask.schedular'"),
        ("sampler:\n  name: smote\n  params:\n    k_neighbours: 3\n", "unknown parameter(s) ['k_neighbours']"),
        ("sampler:\n  name: smotex\n", "unknown sampler 'smotex'"),
        ("engine: ray\n", "engine"),
    ],
)
def test_config_errors_are_one_line_naming_the_key(dataset, tmp_path, capsys, yaml_text, message):
    _, src = dataset
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml_text)
    code, out, err = _run(capsys, "resample", "--config", str(cfg), "--input", src,
                          "--output", str(tmp_path / "out"), "--label", "y", "--engine", "local"
                          if "engine" not in yaml_text else "local")
    if "engine: ray" in yaml_text:  # the flag wins over the file; check the file alone
        with pytest.raises(ConfigError, match="engine"):
            load_config(cfg)
        return
    assert code == 2
    assert message in err and len(_error_lines(err)) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.assign(f1=f["f1"].where(f.index != 9, np.nan)), "'f1' (1 rows)"),
        (lambda f: f.assign(name="x"), "['name'] are not numeric"),
    ],
)
def test_bad_data_fails_before_writing(tmp_path, capsys, mutate, message):
    src = tmp_path / "in.parquet"
    mutate(make_frame({0: 100, 1: 20})).to_parquet(src, index=False)
    dst = tmp_path / "out"
    code, _, err = _run(capsys, "resample", "--input", str(src), "--output", str(dst), "--label", "y", "--engine", "local")
    assert code == 2 and message in err and len(_error_lines(err)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_missing_label_and_input(dataset, tmp_path, capsys):
    _, src = dataset
    code, _, err = _run(capsys, "resample", "--input", src, "--output", str(tmp_path / "o"), "--label", "target", "--engine", "local")
    assert code == 2 and "Label column 'target' not found" in err
    code, _, err = _run(capsys, "resample", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"), "--label", "y", "--engine", "local")
    assert code == 2 and "does not exist" in err
    code, _, err = _run(capsys, "resample", "--input", src, "--engine", "local")
    assert code == 2 and "missing output, label" in err


def test_existing_output_is_kept_unless_overwrite(dataset, tmp_path, capsys):
    _, src = dataset
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "keep.txt").write_text("x")
    code, _, err = _run(capsys, "resample", "--input", src, "--output", str(dst), "--label", "y", "--engine", "local")
    assert code == 2 and "already exists; pass --overwrite" in err
    assert (dst / "keep.txt").exists()
    code, _, err = _run(capsys, "resample", "--input", src, "--output", str(dst), "--label", "y", "--engine", "local", "--overwrite")
    assert code == 0, err
    assert not (dst / "keep.txt").exists() and (dst / "_SUCCESS").exists()


def test_failure_during_write_leaves_nothing(dataset, tmp_path, capsys, monkeypatch):
    """A write that dies half-way leaves no output and no staging directory."""
    from distsmote.engines.local import LocalEngine

    _, src = dataset
    real_write = LocalEngine.write_parts

    def write_then_die(self, frame, directory, **kwargs):
        real_write(self, frame, directory, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(LocalEngine, "write_parts", write_then_die)
    dst = tmp_path / "out"
    code, _, err = _run(capsys, "resample", "--input", src, "--output", str(dst), "--label", "y", "--engine", "local")
    assert code == 2 and "disk full" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_fsspec_urls(capsys):
    """Input and output may be fsspec URLs; the commit works on any filesystem."""
    import fsspec

    frame = make_frame({0: 100, 1: 15}, n_features=2)
    fs = fsspec.filesystem("memory")
    with fs.open("/lake/train.parquet", "wb") as fh:
        frame.to_parquet(fh, index=False)
    code, out, err = _run(capsys, "resample", "--input", "memory://lake/train.parquet",
                          "--output", "memory://lake/balanced", "--label", "y", "--engine", "local", "--seed", "1")
    assert code == 0, err
    assert fs.exists("/lake/balanced/_SUCCESS")
    assert not [p for p in fs.ls("/lake") if ".staging" in p["name"]]
    parts = sorted(fs.glob("/lake/balanced/part-*.parquet"))  # the input's copy, the new rows
    assert len(parts) == 2
    with fs.open(parts[0], "rb") as fh:
        assert fh.read() == fs.cat("/lake/train.parquet")
    frames = []
    for part in parts:
        with fs.open(part, "rb") as fh:
            frames.append(pd.read_parquet(fh))
    result = pd.concat(frames, ignore_index=True)
    assert_same_rows(result, SMOTE(random_state=1).resample(frame, label="y"))
    fs.rm("/lake", recursive=True)


@pytest.mark.parametrize("name, cls", [("smote-tomek", "SMOTETomek"), ("smote-enn", "SMOTEENN"), ("enn", "EditedNearestNeighbours")])
def test_cli_runs_every_sampler(dataset, tmp_path, capsys, name, cls):
    import distsmote

    frame, src = dataset
    dst = tmp_path / "out"
    code, out, err = _run(capsys, "resample", "--input", src, "--output", str(dst), "--label", "y",
                          "--engine", "local", "--seed", "5", "--sampler", name)
    assert code == 0, err
    sampler_cls = getattr(distsmote, cls)
    sampler = sampler_cls(random_state=5) if "random_state" in sampler_cls().get_params() else sampler_cls()
    assert_same_rows(pd.read_parquet(dst), sampler.resample(frame, label="y"))
    assert f"{cls} on local" in out


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5", "0", "1.5"])
def test_sampling_strategy_out_of_range_is_one_line(dataset, tmp_path, capsys, value):
    _, src = dataset
    code, _, err = _run(capsys, "resample", "--input", src, "--output", str(tmp_path / "o"), "--label", "y",
                        "--engine", "local", "--sampling-strategy", value)
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and "sampling_strategy must be a float in (0, 1]" in lines[0], err
    assert not (tmp_path / "o").exists()


def test_yaml_syntax_error_names_file_and_line(tmp_path, capsys):
    cfg = tmp_path / "job.yaml"
    cfg.write_text("input: a\nsampler:\n  name: smote\n params: {k_neighbors: 3}\n")
    code, _, err = _run(capsys, "resample", "--config", str(cfg))
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1, err
    assert f"config file {str(cfg)!r} line 4, column 2: YAML syntax error" in lines[0]


def test_credentials_are_redacted_in_errors_and_logs(tmp_path, capsys):
    import fsspec

    fs = fsspec.filesystem("memory")
    secret_in = "memory://AKIDKEY:s3cr3tvalue@lake/train.parquet?token=t0ps3cret"
    code, _, err = _run(capsys, "resample", "--input", secret_in, "--output", "memory://lake/o",
                        "--label", "y", "--engine", "local")
    assert code == 2 and "does not exist" in err
    assert "s3cr3tvalue" not in err and "t0ps3cret" not in err and "***" in err
    with fs.open("/lake/train.parquet", "wb") as fh:
        make_frame({0: 60, 1: 10}, n_features=2).to_parquet(fh, index=False)
    code, _, err = _run(capsys, "resample", "--input", "memory://lake/train.parquet",
                        "--output", "memory://AKIDKEY:s3cr3tvalue@lake/train.parquet/x", "--label", "y",
                        "--engine", "local")
    assert code == 2 and "is inside the input" in err and "s3cr3tvalue" not in err
    code, _, err = _run(capsys, "resample", "--input", "memory://lake/train.parquet",
                        "--output", "memory://lake/out?sig=s3cr3tvalue", "--label", "y", "--engine", "local")
    assert code == 0, err
    assert "writing memory://lake/out?sig=***" in err and "s3cr3tvalue" not in err
    fs.rm("/lake", recursive=True)


def test_help_shows_required_flags_and_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["resample", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "distsmote resample --input PATH --output PATH --label COLUMN" in out
    assert "required (each may instead come from --config" in out
    assert "--verbose, --debug" in out and "--no-workers-timeout SECONDS" in out
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    from distsmote import __version__

    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"distsmote {__version__}"


def test_no_workers_timeout_config_key(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text("dask:\n  no_workers_timeout: 12.5\n")
    assert load_config(cfg).dask.no_workers_timeout == 12.5
    assert load_config(None).dask.no_workers_timeout == 300
    assert load_config(cfg, {"dask.no_workers_timeout": 3}).dask.no_workers_timeout == 3
    cfg.write_text("dask:\n  no_workers_timeout: 0\n")
    with pytest.raises(ConfigError, match="no_workers_timeout"):
        load_config(cfg)


def test_continuous_label_is_refused_in_one_line(tmp_path, capsys):
    """A regression target is not resampled as a no-op: sklearn's 'Unknown label type'."""
    frame = make_frame({0: 60, 1: 20}, seed=3)
    frame["y"] = np.linspace(0.0, 1.0, len(frame))  # every row its own "class"
    src = tmp_path / "in.parquet"
    frame.to_parquet(src)
    code, _, err = _run(capsys, "resample", "--input", str(src), "--output", str(tmp_path / "out"),
                        "--label", "y", "--engine", "local")
    assert code == 2 and "Unknown label type: continuous" in err and "'y'" in err
    assert len(_error_lines(err)) == 1
    assert not (tmp_path / "out").exists()


def test_driver_budget_flag_runs_the_join_path(dataset, tmp_path, capsys):
    frame, src = dataset
    dst = tmp_path / "out"
    code, out, err = _run(capsys, "resample", "--input", src, "--output", str(dst), "--label", "y",
                          "--engine", "local", "--seed", "7", "--knn", "exact", "--driver-budget", "1KiB")
    assert code == 0, err
    assert "generating from the distributed kNN join" in err
    assert json.loads((dst / "_distsmote_manifest.json").read_text())["knn"]["recall"] == "exact"
    code, out, err = _run(capsys, "resample", "--input", src, "--output", str(tmp_path / "auto"), "--label", "y",
                          "--engine", "local", "--driver-budget", "1KiB")
    assert code == 0, err
    recall = json.loads((tmp_path / "auto" / "_distsmote_manifest.json").read_text())["knn"]["recall"]
    assert recall == {"oversampling": "kNN join, not measured"}
    expected = SMOTE(random_state=7, knn="exact").resample(frame, label="y")  # the broadcast path
    assert_same_rows(pd.read_parquet(dst), expected)
    code, out, err = _run(capsys, "resample", "--input", src, "--output", str(tmp_path / "bad"), "--label", "y",
                          "--engine", "local", "--driver-budget", "lots")
    assert code != 0 and "driver_budget must be a positive number of bytes" in err
    assert not (tmp_path / "bad").exists()
