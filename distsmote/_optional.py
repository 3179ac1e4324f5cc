"""Optional dependencies, imported on first use with an error that says how to install them."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, purpose: str, extra: str) -> ModuleType:
    """Import ``module``, or raise an ImportError naming the distsmote extra to install.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"deltalake"``.
    purpose : str
        What needs it, as the start of a sentence: ``"Delta Lake tables need the
        deltalake package"``.
    extra : str
        The distsmote extra that installs it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # depends on the environment
        raise ImportError(f"{purpose}. Install it with `pip install 'distsmote[{extra}]'`.") from exc
