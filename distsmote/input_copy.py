"""Copying the input's files into the output instead of rewriting their rows.

An over-sampler's output is its input's rows, unchanged, plus new rows.  When the input
is a listed Parquet dataset read whole (no ``--where`` condition on its rows, no test
split) and every file has exactly the schema the output is written with (column order,
types and nullability; metadata aside), a job copies each input file byte for byte into
the output, one task per file on the engine's workers, and writes only the new rows.
The input is then read once (the class statistics, which also bring back the rows to
oversample) instead of twice, and its rows are neither decoded nor encoded again.

The copies are part files like any other: written under a hidden name and renamed when
complete, numbered before the new rows' files (so the output lists the input's rows
first, as imbalanced-learn returns them), and committed with them, all or nothing.  The
input is only read.  Anything else (a Delta input, whose files may carry deletion
vectors or mapped column names; files whose schemas differ; an indicator column) is
written row by row, as before.
"""

from __future__ import annotations

import logging

import pyarrow as pa

from distsmote.config import JobConfig
from distsmote.inputs import Source

log = logging.getLogger("distsmote")


def may_copy(config: JobConfig, source: Source) -> bool:
    """Whether the input's files could go into the output as they are, if the sampler
    leaves its rows unchanged (ask it for its new rows only)."""
    return (
        config.test_fraction is None
        and source.format == "parquet"
        and source.files is not None
        and source.file_schema is not None
        and not source.widened
        and not source.row_filter
    )


def files_to_copy(source: Source, schema: pa.Schema) -> list[str] | None:
    """The input files to copy into an output written with ``schema`` (``None``: their
    schema differs, so the input's rows are written row by row)."""
    mine = source.file_schema
    if mine is None or not mine.remove_metadata().equals(schema.remove_metadata()):
        log.info("the input's rows are rewritten, not copied: its files' schema differs from the output's")
        return None
    return list(source.files or [])


def describe(files: list[str], source: Source) -> str:
    """A log line about the copies."""
    size = sum(source.sizes) if source.sizes else 0
    return (f"copying the input's {len(files)} file(s) ({size / 2**30:.2f} GiB) into the output "
            "as they are; writing the new rows")


__all__ = ["describe", "files_to_copy", "may_copy"]
