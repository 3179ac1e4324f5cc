"""Smoke tests proving the real-cluster fixtures in conftest.py work.

Module-level functions are used on purpose: cloudpickle ships them *by reference*, so
these tests also prove that the remote Python processes (Dask worker, Spark executors)
can import this test module (PYTHONPATH set up by tests/_clusters.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


# ------------------------------------------------------------------------------ Dask


def _add_pid(pdf: pd.DataFrame) -> pd.DataFrame:
    return pdf.assign(pid=os.getpid())


def test_dask_cluster_computes(dask_cluster, dask_client):
    import dask.dataframe as dd

    assert dask_cluster.address.startswith("tcp://127.0.0.1:")
    assert dask_client.scheduler.address == dask_cluster.address
    workers = dask_client.scheduler_info(n_workers=-1)["workers"]
    assert len(workers) == dask_cluster.n_workers == 2
    assert all(w["host"] == "127.0.0.1" and w["nthreads"] == 1 for w in workers.values())
    pids = dask_client.run(os.getpid)
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()

    pdf = pd.DataFrame({"x": range(1000), "y": [1.5] * 1000})
    ddf = dd.from_pandas(pdf, npartitions=4).map_partitions(_add_pid)
    total, pids = dask_client.compute([ddf.x.sum(), ddf.pid.unique()], sync=True)
    assert int(total) == 499500
    assert os.getpid() not in set(pids)  # ran in the worker process, not in pytest


# ----------------------------------------------------------------------------- Spark


def test_spark_sql_sum(spark, spark_cluster):
    assert spark.sparkContext.master == spark_cluster.master_url
    assert spark.range(1000).selectExpr("sum(id) AS s").first()["s"] == 499500


def _double_on_executor(batches):
    for batch in batches:
        n = batch.num_rows
        yield pa.RecordBatch.from_arrays(
            [
                pc.multiply(batch.column("id"), pa.scalar(2, pa.int64())),
                pa.array([os.getpid()] * n, pa.int64()),
                pa.array([sys.executable] * n, pa.string()),
            ],
            names=["doubled", "pid", "python"],
        )


def test_spark_map_in_arrow_runs_python_on_executor(spark):
    schema = "doubled long, pid long, python string"
    df = spark.range(0, 100, numPartitions=4).mapInArrow(_double_on_executor, schema)
    table = df.toArrow()
    assert table.schema.field("doubled").type == pa.int64()
    assert table.schema.field("pid").type == pa.int64()
    assert sorted(table.column("doubled").to_pylist()) == [2 * i for i in range(100)]
    assert os.getpid() not in set(table.column("pid").to_pylist())
    assert set(table.column("python").to_pylist()) == {sys.executable}


def test_spark_submit_writes_parquet(spark, spark_cluster, tmp_path):
    # Also requests `spark`: proves a submitted app gets executors while the
    # session-wide app holds its share of the worker.
    script = tmp_path / "tiny_job.py"
    out = tmp_path / "out.parquet"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from pyspark.sql import SparkSession

            spark = SparkSession.builder.appName("distsmote-smoke-submit").getOrCreate()
            (spark.range(0, 100, numPartitions=2)
                  .selectExpr("id", "id * id AS sq")
                  .write.mode("overwrite").parquet(sys.argv[1]))
            spark.stop()
            """
        )
    )
    proc = subprocess.run(
        spark_cluster.submit_args(str(script), str(out)),
        env=spark_cluster.env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, (
        f"spark-submit exited {proc.returncode}\n--- stderr (tail) ---\n"
        + "\n".join(proc.stderr.splitlines()[-60:])
    )
    table = pq.read_table(out)
    assert table.num_rows == 100
    assert pc.sum(table.column("sq")).as_py() == sum(i * i for i in range(100))
