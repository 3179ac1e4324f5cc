"""Airflow DAG ``distsmote_daily_lake``: rebalance one day's partition of a lake table.

Every day, for the partition ``dt = <data_interval_start as YYYY-MM-DD>``:

1. ``choose_engine`` picks the engine (``DISTSMOTE_ENGINE``: ``dask`` or ``spark``);
2. ``resample_dask`` runs ``jobs/dask_resample.py`` (a Dask scheduler, or an embedded
   local cluster) in the interpreter that has distsmote, or ``resample_spark`` submits
   ``jobs/spark_resample.py`` through ``SparkSubmitOperator``
   (apache-airflow-providers-apache-spark, connection ``DISTSMOTE_SPARK_CONN``);
3. both read ``--where "dt = '<day>'"``, split train/test before resampling, and write
   the ``dt=<day>`` partition of the output tables, replacing it on a retry or rerun.

Tasks are retried (``DISTSMOTE_RETRIES``, default 2); a rerun of a day leaves one copy
of its partition (a Delta overwrite of that partition, or an atomic Parquet partition
replace).  The job exits 2 with one line on bad input, which the task raises.

Configuration (environment variables of the scheduler and workers):

=========================  ==========================================================
``DISTSMOTE_INPUT``        the input table (Hive-partitioned Parquet or Delta, by dt)
``DISTSMOTE_OUTPUT``       the output root (``train`` and ``test`` tables under it)
``DISTSMOTE_LABEL``        the class column
``DISTSMOTE_FORMAT``       ``delta`` (default) or ``parquet``
``DISTSMOTE_ENGINE``       ``dask`` (default) or ``spark``
``DISTSMOTE_TEST_FRACTION`` default ``0.2``; ``0`` or empty: no split
``DISTSMOTE_ARGS``         more ``distsmote resample`` flags (e.g. ``--config job.yaml``)
``DISTSMOTE_PYTHON``       the interpreter with distsmote for the Dask task (default: this one)
``DISTSMOTE_JOBS_DIR``     where ``dask_resample.py``/``spark_resample.py`` are (default: here)
``DISTSMOTE_SPARK_CONN``   Airflow connection of the Spark master (default ``spark_default``)
=========================  ==========================================================

Airflow is not a dependency of distsmote: install it in the scheduler's environment
(``apache-airflow`` 3 and ``apache-airflow-providers-apache-spark``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import datetime, timedelta

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, task

DAG_ID = "distsmote_daily_lake"
JOBS_DIR = os.environ.get("DISTSMOTE_JOBS_DIR", os.path.dirname(os.path.abspath(__file__)))
PARTITION = "{{ data_interval_start | ds }}"


def job_args(day: str) -> list[str]:
    """``distsmote resample`` flags for one day's partition."""
    args = [
        "--input", os.environ.get("DISTSMOTE_INPUT", "lake/landing"),
        "--output", os.environ.get("DISTSMOTE_OUTPUT", "lake/balanced"),
        "--label", os.environ.get("DISTSMOTE_LABEL", "label"),
        "--format", os.environ.get("DISTSMOTE_FORMAT", "delta"),
        "--where", f"dt = '{day}'",
        "--partition-by", "dt",
        "--quiet",
    ]
    fraction = os.environ.get("DISTSMOTE_TEST_FRACTION", "0.2")
    if fraction and float(fraction) > 0:
        args += ["--test-fraction", fraction]
    return args + shlex.split(os.environ.get("DISTSMOTE_ARGS", ""))


with DAG(
    dag_id=DAG_ID,
    description="Split one day's partition, rebalance its train split with distsmote, write both",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": int(os.environ.get("DISTSMOTE_RETRIES", "2")),
        "retry_delay": timedelta(minutes=int(os.environ.get("DISTSMOTE_RETRY_MINUTES", "5"))),
    },
    tags=["distsmote"],
) as dag:

    @task.branch
    def choose_engine() -> str:
        """The task of the configured engine."""
        engine = os.environ.get("DISTSMOTE_ENGINE", "dask")
        if engine not in ("dask", "spark"):
            raise ValueError(f"DISTSMOTE_ENGINE must be dask or spark, got {engine!r}")
        return f"resample_{engine}"

    @task
    def resample_dask(data_interval_start=None) -> str:
        """Run the Dask job script for this run's day; its one-line error fails the task."""
        day = data_interval_start.strftime("%Y-%m-%d")
        python = os.environ.get("DISTSMOTE_PYTHON", sys.executable)
        cmd = [python, os.path.join(JOBS_DIR, "dask_resample.py"), *job_args(day)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        print(proc.stdout)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            lines = [line for line in proc.stderr.splitlines() if line.startswith("distsmote:")]
            raise RuntimeError(lines[-1] if lines else f"dask_resample.py exited with {proc.returncode}")
        return day

    resample_spark = SparkSubmitOperator(
        task_id="resample_spark",
        application=os.path.join(JOBS_DIR, "spark_resample.py"),
        application_args=job_args(PARTITION),
        conn_id=os.environ.get("DISTSMOTE_SPARK_CONN", "spark_default"),
        name="distsmote-{{ ds }}",
    )

    choose_engine() >> [resample_dask(), resample_spark]
