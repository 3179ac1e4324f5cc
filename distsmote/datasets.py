"""Generated tables to try distsmote on when no data can be downloaded.

:func:`make_churn` is a bank-churn-like customer table, modelled on the public "bank
customer churn" table used by the article that motivated distsmote: one row per
customer, ``Exited = 1`` for the customers who left (20 % by default).

Columns and how they depend on churn (non-churned vs churned customers):

=================  =======  ==========================================================
column             type     distribution
=================  =======  ==========================================================
CreditScore        int64    normal(652, 95) vs normal(645, 100), clipped to [350, 850]
Geography          str      France/Germany/Spain with p = .53/.21/.26 vs .40/.40/.20
Gender             str      Female with p = .43 vs .56, else Male
Age                int64    normal(37, 9.5) vs normal(45, 9.5), clipped to [18, 92]
Tenure             int64    binomial(10, .51) vs binomial(10, .47)
Balance            float64  0 with p = .38 vs .25, else normal(119 000, 30 000) vs
                            normal(121 000, 30 000), clipped at 0
NumOfProducts      int64    1/2/3/4 with p = .46/.53/.01/0 vs .69/.17/.11/.03
EstimatedSalary    float64  uniform(11, 199 990) vs uniform(11, 200 000)
Exited             int64    1 for exactly ``round(churn_rate * rows)`` rows
=================  =======  ==========================================================

The numbers are a plausible imitation, not a copy of any real data.  Rows are in random
order.  The same ``(rows, churn_rate, seed)`` always gives the same table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CHURN_LABEL", "CHURN_CATEGORICAL", "make_churn", "make_churn_dask"]

#: The label column of :func:`make_churn`.
CHURN_LABEL = "Exited"
#: Its categorical (string) columns.
CHURN_CATEGORICAL = ("Geography", "Gender")

_GEOGRAPHY = np.array(["France", "Germany", "Spain"], dtype=object)
_GENDER = np.array(["Female", "Male"], dtype=object)


def _pick(rng: np.random.Generator, churn: np.ndarray, options: np.ndarray, p_stay, p_churn) -> np.ndarray:
    out = np.empty(len(churn), dtype=options.dtype)
    for mask, p in ((~churn, p_stay), (churn, p_churn)):
        out[mask] = rng.choice(options, size=int(mask.sum()), p=p)
    return out


def _cond(churn: np.ndarray, stay: np.ndarray, left: np.ndarray) -> np.ndarray:
    return np.where(churn, left, stay)


def make_churn(rows: int = 10_000, churn_rate: float = 0.2, seed: Any = 0) -> pd.DataFrame:
    """A churn-like customer table (see the module docstring for the columns).

    Parameters
    ----------
    rows : int, default 10 000
        Number of customers.
    churn_rate : float, default 0.2
        Share of customers with ``Exited = 1`` (exactly ``round(churn_rate * rows)``).
    seed : int or sequence of ints, default 0
        Seed of :func:`numpy.random.default_rng`.

    Returns
    -------
    pandas.DataFrame
    """
    if rows < 1 or not 0 < churn_rate < 1:
        raise ValueError(f"make_churn needs rows >= 1 and 0 < churn_rate < 1. Got {rows}, {churn_rate}.")
    rng = np.random.default_rng(seed)
    churn = np.zeros(rows, dtype=bool)
    churn[: int(round(churn_rate * rows))] = True
    rng.shuffle(churn)
    n = rows
    credit = _cond(churn, rng.normal(652, 95, n), rng.normal(645, 100, n))
    age = _cond(churn, rng.normal(37, 9.5, n), rng.normal(45, 9.5, n))
    tenure = _cond(churn, rng.binomial(10, 0.51, n), rng.binomial(10, 0.47, n))
    zero = rng.random(n) < _cond(churn, np.full(n, 0.38), np.full(n, 0.25))
    balance = _cond(churn, rng.normal(119_000, 30_000, n), rng.normal(121_000, 30_000, n))
    balance = np.where(zero, 0.0, np.clip(balance, 0, None)).round(2)
    products = _pick(rng, churn, np.arange(1, 5), [0.46, 0.53, 0.01, 0.0], [0.69, 0.17, 0.11, 0.03])
    salary = _cond(churn, rng.uniform(11, 199_990, n), rng.uniform(11, 200_000, n)).round(2)
    return pd.DataFrame(
        {
            "CreditScore": np.clip(np.rint(credit), 350, 850).astype(np.int64),
            "Geography": _pick(rng, churn, _GEOGRAPHY, [0.53, 0.21, 0.26], [0.40, 0.40, 0.20]),
            "Gender": _pick(rng, churn, _GENDER, [0.43, 0.57], [0.56, 0.44]),
            "Age": np.clip(np.rint(age), 18, 92).astype(np.int64),
            "Tenure": tenure.astype(np.int64),
            "Balance": balance,
            "NumOfProducts": products.astype(np.int64),
            "EstimatedSalary": salary,
            CHURN_LABEL: churn.astype(np.int64),
        }
    )


def make_churn_dask(rows: int, npartitions: int, churn_rate: float = 0.2, seed: int = 0) -> Any:
    """A large churn-like table as a lazy Dask DataFrame, generated on the workers.

    Partition ``i`` is ``make_churn(its rows, churn_rate, seed=(seed, i))``, so nothing
    is generated on (or sent from) the client.
    """
    import dask
    import dask.dataframe as dd

    bounds = np.linspace(0, rows, npartitions + 1).astype(int)
    parts = [
        dask.delayed(make_churn, pure=True)(int(b - a), churn_rate, (seed, i))
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]
    return dd.from_delayed(parts, meta=make_churn(1).iloc[:0], verify_meta=False)
