"""spark-submit entry point: resample a Parquet dataset with distsmote on Spark.

Usage::

    spark-submit --master spark://host:7077 jobs/spark_resample.py \\
        --input s3a://bucket/train --output s3a://bucket/train_balanced --label is_fraud \\
        [--config conf/spark.yaml] [--seed 42] [--sampler smote] ...

The executors need distsmote installed in their Python (PYSPARK_PYTHON), or shipped with
``--archives`` as a packed environment.  All ``distsmote resample`` flags are accepted;
the engine is always Spark and the master is spark-submit's.
"""

import sys

from distsmote.cli import main

if __name__ == "__main__":
    sys.exit(main(["resample", "--engine", "spark", *sys.argv[1:]]))
