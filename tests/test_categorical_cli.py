"""The command line and config with column roles: SMOTENC/SMOTEN, passthrough,
partition and id columns, Parquet to Parquet with every type kept; the churn demo."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distsmote import SMOTENC
from distsmote.cli import main
from distsmote.demo import make_churn_frame


def _write(frame: pd.DataFrame, path) -> None:
    path.mkdir()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(table.schema.get_field_index("SignupDate"), "SignupDate",
                             table.column("SignupDate").cast(pa.date32()))
    pq.write_table(table.slice(0, 900), path / "a.parquet")
    pq.write_table(table.slice(900), path / "b.parquet")


@pytest.fixture()
def churn_dir(tmp_path):
    frame = make_churn_frame(2_000, seed=3)
    frame["Seen"] = pd.Timestamp("2025-01-01") + pd.to_timedelta(np.arange(len(frame)), unit="s")
    _write(frame, tmp_path / "in")
    return frame, tmp_path / "in"


def _errors(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if not re.match(r"\d\d:\d\d:\d\d distsmote: ", line)]


def test_smotenc_flags_parquet_to_parquet_keep_every_type(churn_dir, tmp_path, capsys):
    frame, src = churn_dir
    dst = tmp_path / "out"
    code = main(["resample", "--input", str(src), "--output", str(dst), "--label", "Exited",
                 "--engine", "local", "--seed", "4", "--sampler", "smotenc",
                 "--categorical", "Geography,Gender,HasCrCard,Branch,NumOfProducts",
                 "--passthrough", "Seen", "--partition-columns", "SignupDate",
                 "--id-column", "CustomerId", "--indicator", "syn"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "SMOTENC on local" in out
    schema_in = pq.read_schema(src / "a.parquet")
    result = pq.read_table(dst)
    for field in schema_in:
        assert result.schema.field(field.name).type == field.type, field.name
    df = result.to_pandas()
    new = df[df["syn"]]
    assert len(new) == (frame["Exited"] == 0).sum() - (frame["Exited"] == 1).sum()
    assert new["Seen"].isna().all() and new["SignupDate"].notna().all()
    assert df["CustomerId"].is_unique
    # NumOfProducts was declared categorical: synthetic rows hold existing values only.
    assert set(new["NumOfProducts"]) <= set(frame.loc[frame["Exited"] == 1, "NumOfProducts"])
    # The API gives the same rows as the command.
    api = SMOTENC(categorical_features=["Geography", "Gender", "HasCrCard", "Branch", "NumOfProducts"],
                  random_state=4).resample(
        pd.read_parquet(src), label="Exited", indicator="syn", passthrough=["Seen"],
        partition_columns=["SignupDate"], id_column="CustomerId")
    key = ["CustomerId"]
    a = df.sort_values(key).reset_index(drop=True)
    b = api.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[["CustomerId", "Age", "Branch"]], b[["CustomerId", "Age", "Branch"]])


def test_config_keys_for_column_roles(churn_dir, tmp_path, capsys):
    frame, src = churn_dir
    cfg = tmp_path / "job.yaml"
    cfg.write_text(
        f"input: {src}\noutput: {tmp_path / 'out'}\nlabel: Exited\nengine: local\nseed: 1\n"
        "passthrough: [Seen, CreditScore]\npartition_columns: [SignupDate]\nid_column: CustomerId\n"
        "categorical: [Geography, Gender, HasCrCard, Branch]\n"
        "sampler:\n  name: smotenc\n  params:\n    k_neighbors: 3\n"
    )
    code = main(["resample", "--config", str(cfg)])
    _, err = capsys.readouterr()
    assert code == 0, err
    df = pd.read_parquet(tmp_path / "out")
    new = df.iloc[len(frame):]
    assert new["CreditScore"].isna().all()  # passthrough: null on synthetic rows


def test_undeclared_timestamp_is_one_line_naming_the_flag(churn_dir, tmp_path, capsys):
    _, src = churn_dir
    code = main(["resample", "--input", str(src), "--output", str(tmp_path / "out"), "--label", "Exited",
                 "--engine", "local", "--sampler", "smotenc", "--id-column", "CustomerId",
                 "--partition-columns", "SignupDate"])
    _, err = capsys.readouterr()
    assert code == 2
    lines = _errors(err)
    assert len(lines) == 1 and "'Seen'" in lines[0] and "--passthrough Seen" in lines[0]
    assert not (tmp_path / "out").exists()


def test_smote_with_a_string_column_names_smotenc_and_passthrough(churn_dir, tmp_path, capsys):
    _, src = churn_dir
    code = main(["resample", "--input", str(src), "--output", str(tmp_path / "out"), "--label", "Exited",
                 "--engine", "local", "--passthrough", "Seen,SignupDate,CustomerId"])
    _, err = capsys.readouterr()
    assert code == 2
    line = _errors(err)[0]
    assert "SMOTENC" in line and "--passthrough Geography" in line


def test_smoten_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random(n) < 0.2).astype(np.int64)
    frame = pd.DataFrame({"colour": rng.choice(["r", "g", "b"], n).astype(object),
                          "size": rng.choice(["S", "M", "L"], n).astype(object), "y": y})
    src = tmp_path / "in"
    src.mkdir()
    frame.to_parquet(src / "a.parquet", index=False)
    code = main(["resample", "--input", str(src), "--output", str(tmp_path / "out"), "--label", "y",
                 "--engine", "local", "--sampler", "smoten", "--seed", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    df = pd.read_parquet(tmp_path / "out")
    assert df["y"].value_counts().to_dict() == {0: (y == 0).sum(), 1: (y == 0).sum()}


def test_churn_demo_runs_smotenc(tmp_path, capsys):
    code = main(["demo", "--table", "churn", "--workdir", str(tmp_path / "demo"), "--rows", "3000",
                 "--engine", "local", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "SMOTENC on local" in out
    df = pd.read_parquet(tmp_path / "demo" / "output")
    assert df["CustomerId"].is_unique and df["SignupDate"].notna().all()
