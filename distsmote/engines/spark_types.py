"""Spark's column types as the engine protocol sees them: numpy dtypes, kinds, Arrow."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import types as T

_NUMERIC = {
    T.ByteType: np.int8,
    T.ShortType: np.int16,
    T.IntegerType: np.int32,
    T.LongType: np.int64,
    T.FloatType: np.float32,
    T.DoubleType: np.float64,
}

_FROM_NUMPY = {
    "int8": T.ByteType,
    "int16": T.ShortType,
    "int32": T.IntegerType,
    "int64": T.LongType,
    "float32": T.FloatType,
    "float64": T.DoubleType,
    "bool": T.BooleanType,
}


def numpy_dtypes(schema: T.StructType) -> dict[str, np.dtype | None]:
    """Each column's numpy dtype if it is numeric, else ``None``."""
    out = {}
    for f in schema.fields:
        kind = _NUMERIC.get(type(f.dataType))
        out[f.name] = np.dtype(kind) if kind is not None else None
    return out


def column_kinds(schema: T.StructType) -> dict[str, str]:
    """Each column's logical kind (:func:`distsmote.columns.pandas_kind`'s names)."""
    out = {}
    for f in schema.fields:
        t = f.dataType
        if type(t) in _NUMERIC:
            out[f.name] = "numeric"
        elif isinstance(t, T.BooleanType):
            out[f.name] = "bool"
        elif isinstance(t, (T.StringType, T.VarcharType, T.CharType)):
            out[f.name] = "string"
        elif isinstance(t, T.DateType):
            out[f.name] = "date"
        elif isinstance(t, (T.TimestampType, T.TimestampNTZType)):
            out[f.name] = "timestamp"
        else:
            out[f.name] = f"other: {t.simpleString()}"
    return out


def schema_from_meta(meta: pd.DataFrame) -> T.StructType:
    """Spark schema of an empty pandas frame (numeric and bool columns; else string)."""
    fields = []
    for name, dtype in meta.dtypes.items():
        kind = _FROM_NUMPY.get(str(dtype), T.StringType)
        fields.append(T.StructField(str(name), kind(), True))
    return T.StructType(fields)


def to_table(pdf: pd.DataFrame, arrow_schema: pa.Schema) -> pa.Table:
    """``pdf`` as an Arrow table cast exactly to the declared schema (int32 is not int64)."""
    table = pa.Table.from_pandas(pdf[arrow_schema.names], preserve_index=False)
    return table.cast(arrow_schema, safe=False)


def to_batches(pdf: pd.DataFrame, arrow_schema: pa.Schema) -> list[pa.RecordBatch]:
    """Arrow batches of ``pdf`` cast exactly to the declared schema (int32 is not int64)."""
    return to_table(pdf, arrow_schema).to_batches()
