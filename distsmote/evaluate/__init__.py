"""Compare samplers × models on a table: metrics, figures and an HTML report."""

from distsmote.evaluate.protocol import DEFAULT_SAMPLERS, Evaluation, evaluate, run_evaluation

__all__ = ["DEFAULT_SAMPLERS", "Evaluation", "evaluate", "run_evaluation", "write_report"]


def __getattr__(name: str):
    if name == "write_report":
        from distsmote.evaluate.report import write_report

        return write_report
    raise AttributeError(name)
