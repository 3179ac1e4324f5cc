"""jobs/airflow_dag.py under a real Airflow 3: DagBag import, and the Dask path run end to
end with ``dag.test()`` twice for one logical date (one copy of the partition is left).

Airflow pins its own packages (and installs pyspark-client, which clashes with pyspark),
so it lives in its own virtualenv: ``DISTSMOTE_AIRFLOW_PYTHON`` names its interpreter, or
else the test creates ``.venv-airflow`` beside the repository on first use, with the
``airflow`` extra's packages (a few minutes, once).  The DAG's Dask task runs the job
script in the test's own interpreter, which has distsmote.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from _data import make_frame

ROOT = Path(__file__).resolve().parents[1]
DAY = "2026-11-27"

_SCRIPT = """
import sys
from datetime import datetime, timezone
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag("distsmote_daily_lake")
assert dag.default_args["retries"] >= 1 and sorted(dag.task_ids) == ["choose_engine", "resample_dask", "resample_spark"]
for _ in range(int(sys.argv[2])):
    run = dag.test(logical_date=datetime(2026, 11, 27, tzinfo=timezone.utc))
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    print("RUN", run.state, sorted(states.items()))
"""


def _airflow_requirements() -> list[str]:
    """The ``airflow`` extra of pyproject.toml (the one list of Airflow's packages)."""
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]["optional-dependencies"]["airflow"]


def _airflow_python() -> str:
    """The Airflow virtualenv's interpreter: ``DISTSMOTE_AIRFLOW_PYTHON``, else
    ``.venv-airflow`` beside the repository, created here on first use."""
    named = os.environ.get("DISTSMOTE_AIRFLOW_PYTHON")
    if named:
        assert Path(named).exists(), f"DISTSMOTE_AIRFLOW_PYTHON={named} does not exist"
        return named
    venv = ROOT / ".venv-airflow"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "airflow").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300)
        proc = subprocess.run([str(python), "-m", "pip", "install", "-q", *_airflow_requirements()],
                              capture_output=True, text=True, timeout=1500)
        assert proc.returncode == 0, f"installing Airflow into {venv} failed:\n{proc.stderr[-3000:]}"
    return str(python)


def test_daily_dag_dask_path_twice_leaves_one_partition(tmp_path):
    python = _airflow_python()
    src = tmp_path / "landing"
    for i, day in enumerate(("2026-11-26", DAY)):
        (src / f"dt={day}").mkdir(parents=True)
        make_frame({0: 240, 1: 30}, n_features=3, seed=i).to_parquet(src / f"dt={day}" / "a.parquet", index=False)
    home, dags, out = tmp_path / "airflow", tmp_path / "airflow" / "dags", tmp_path / "balanced"
    dags.mkdir(parents=True)
    shutil.copy(ROOT / "jobs" / "airflow_dag.py", dags / "airflow_dag.py")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DISTSMOTE_FAULTS"))}
    env.update(
        AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        DISTSMOTE_INPUT=str(src), DISTSMOTE_OUTPUT=str(out), DISTSMOTE_LABEL="y", DISTSMOTE_ENGINE="dask",
        DISTSMOTE_PYTHON=sys.executable, DISTSMOTE_JOBS_DIR=str(ROOT / "jobs"),
        DISTSMOTE_ARGS="--n-workers 1 --seed 3", PYTHONPATH=str(ROOT),
    )
    airflow = str(Path(python).with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    proc = subprocess.run([python, "-c", _SCRIPT, str(dags / "airflow_dag.py"), "2"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    runs = [line for line in proc.stdout.splitlines() if line.startswith("RUN")]
    want = "RUN success [('choose_engine', 'success'), ('resample_dask', 'success'), ('resample_spark', 'skipped')]"
    assert runs == [want, want], proc.stdout[-3000:]

    from deltalake import DeltaTable

    for side, counts in (("train", {0: 192, 1: 192}), ("test", {0: 48, 1: 6})):
        table = DeltaTable(str(out / side))
        assert table.version() == 1  # one version per run
        rows = table.to_pandas()
        assert set(rows["dt"]) == {DAY}  # data_interval_start's day, and only it
        assert rows["y"].value_counts().to_dict() == counts  # one copy after two runs
    assert not (out / "train" / "dt=2026-11-26").exists()
    doc = pd.read_json(out / "_distsmote_manifest.json", typ="series")
    assert doc["input"]["partition"] == {"dt": DAY} and doc["engine"] == "dask"
