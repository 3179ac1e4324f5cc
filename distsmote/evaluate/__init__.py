"""Compare samplers × models on a table: metrics, figures and an HTML report.

The names below are imported on first use, so that the command line (which only
needs :mod:`distsmote.evaluate.cli` to build its parser) does not import
scikit-learn on every run.
"""

from typing import Any

__all__ = ["DEFAULT_SAMPLERS", "Evaluation", "evaluate", "run_evaluation", "write_report"]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from distsmote.evaluate.report import write_report

        return write_report
    if name in __all__:
        from distsmote.evaluate import protocol

        return getattr(protocol, name)
    raise AttributeError(name)
