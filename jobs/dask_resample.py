"""Dask cluster script: resample a Parquet dataset with distsmote on a Dask cluster.

Usage::

    python jobs/dask_resample.py --scheduler tcp://scheduler:8786 \\
        --input s3://bucket/train --output s3://bucket/train_balanced --label is_fraud \\
        [--config conf/dask.yaml] [--seed 42] ...

Without ``--scheduler`` (or ``dask.scheduler`` in the config) an embedded local cluster
is started.  The workers need distsmote installed.
The input may be a Parquet dataset or a Delta table; the daily lake job adds
e.g. ``--where "dt = '2026-11-27'" --partition-by dt --format delta --test-fraction 0.2``
(see the README's "Daily job on a data lake" and ``jobs/airflow_dag.py``).  All
``distsmote resample`` flags are accepted; the engine is always Dask.

Exit status: 0 on success, 2 on an error (one line), 130 on Ctrl-C, 143 on SIGTERM.
With no worker connected for ``--no-workers-timeout`` seconds (``dask.no_workers_timeout``,
default 300) the job fails instead of waiting forever.
"""

import sys

from distsmote.cli import main

if __name__ == "__main__":
    sys.exit(main(["resample", "--engine", "dask", *sys.argv[1:]]))
