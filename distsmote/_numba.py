"""Compiled kernels' decorator: ``numba.njit`` with a cache where one can be written."""

from __future__ import annotations

from collections.abc import Callable

from numba import njit


def compiled(**options) -> Callable:
    """``numba.njit`` with its on-disk cache where one can be written: beside the
    module, else in the user's cache directory.  Where neither is writable (a
    read-only install run by a user without a home directory) numba refuses to cache
    at all, and the kernels are compiled once per process instead (about a second)."""

    def wrap(fn: Callable) -> Callable:
        try:
            return njit(cache=True, **options)(fn)
        except RuntimeError:
            return njit(**options)(fn)

    return wrap
