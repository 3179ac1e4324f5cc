"""spark-submit entry point: resample a Parquet dataset with distsmote on Spark.

Usage::

    spark-submit --master spark://host:7077 jobs/spark_resample.py \\
        --input s3a://bucket/train --output s3a://bucket/train_balanced --label is_fraud \\
        [--config conf/spark.yaml] [--seed 42] [--sampler smote] ...

The executors need distsmote installed in their Python (PYSPARK_PYTHON), or shipped with
``--archives`` as a packed environment.
The input may be a Parquet dataset or a Delta table; the daily lake job adds
e.g. ``--where "dt = '2026-11-27'" --partition-by dt --format delta --test-fraction 0.2``
(see the README's "Daily job on a data lake" and ``jobs/airflow_dag.py``).  All
``distsmote resample`` flags are accepted;
the engine is always Spark and the master is spark-submit's.

Exit status: 0 on success, 2 on an error (one line), 130 on Ctrl-C, 143 on SIGTERM.
The output is committed atomically; a killed run leaves nothing marked complete and
the next run cleans up after it (see the README's "Failed and killed runs").
"""

import sys

from distsmote.cli import main

if __name__ == "__main__":
    sys.exit(main(["resample", "--engine", "spark", *sys.argv[1:]]))
