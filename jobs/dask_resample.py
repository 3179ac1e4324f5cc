"""Dask cluster script: resample a Parquet dataset with distsmote on a Dask cluster.

Usage::

    python jobs/dask_resample.py --scheduler tcp://scheduler:8786 \\
        --input s3://bucket/train --output s3://bucket/train_balanced --label is_fraud \\
        [--config conf/dask.yaml] [--seed 42] ...

Without ``--scheduler`` (or ``dask.scheduler`` in the config) an embedded local cluster
is started.  The workers need distsmote installed.  All ``distsmote resample`` flags are
accepted; the engine is always Dask.
"""

import sys

from distsmote.cli import main

if __name__ == "__main__":
    sys.exit(main(["resample", "--engine", "dask", *sys.argv[1:]]))
