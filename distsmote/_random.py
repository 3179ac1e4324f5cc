"""Counter-based random streams.

Every random number distsmote draws is a pure function of ``(seed, stream, row, child)``,
computed with the SplitMix64 finaliser.  No generator state is carried between tasks,
so the numbers do not depend on partitioning, task order, engine or retries.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_TWO53 = 2.0**-53


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser over a ``uint64`` array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=np.uint64) + _GOLDEN
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)


def stream_key(seed: int, *names: object) -> np.uint64:
    """Derive a 64-bit key for a named stream, e.g. ``stream_key(seed, "gap", class_pos)``."""
    text = repr((int(seed),) + tuple(names)).encode()
    return np.uint64(int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little"))


def draw_bits(key: np.uint64, rows: np.ndarray, children: np.ndarray | int = 0) -> np.ndarray:
    """64 random bits for each ``(row, child)`` pair of the stream ``key``."""
    rows = np.asarray(rows, dtype=np.uint64)
    children = np.asarray(children, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return mix64(mix64(rows ^ key) + children * _GOLDEN)


def draw_uniform(key: np.uint64, rows: np.ndarray, children: np.ndarray | int = 0) -> np.ndarray:
    """Uniform floats in ``[0, 1)`` with 53 random bits each."""
    return (draw_bits(key, rows, children) >> np.uint64(11)).astype(np.float64) * _TWO53


def resolve_seed(random_state: int | np.random.Generator | None) -> int:
    """Turn ``random_state`` into one 63-bit integer seed, drawn once per fit when None."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer. Got {random_state}.")
        return int(random_state)
    raise ValueError(
        "random_state must be an int, a numpy Generator/RandomState or None. "
        f"Got {type(random_state).__name__}."
    )
