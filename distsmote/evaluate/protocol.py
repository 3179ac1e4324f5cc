"""The experiment: split, resample the train side only, fit models, score the test side.

The raw table is split (so every sampler, encoded or not, sees the same rows), then
each side is encoded (:mod:`distsmote.evaluate.encoding`).  Hold-out uses
:func:`distsmote.split.train_test_split`; k-fold uses the same content hash (the rows of each class ranked by hash, dealt round-robin to ``cv`` folds), so both
are stratified, deterministic and independent of row order.  The sampler is fitted
inside each fold on the train side only, as an imbalanced-learn ``Pipeline`` does; the
test side keeps the true class distribution.  Every sampler and model sees the same
folds and seed.

Tables of at most ``in_memory_limit`` rows are evaluated in memory with scikit-learn;
larger ones on their engine (:mod:`distsmote.evaluate.distributed`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from distsmote.engines import engine_for
from distsmote.evaluate.defaults import DEFAULT_SAMPLERS, IN_MEMORY_LIMIT
from distsmote.evaluate.encoding import SYNTHETIC, NOMINAL_SAMPLERS, Encoding, encode, plan_encoding
from distsmote.evaluate.metrics import score
from distsmote.evaluate.models import check_models, make_model

log = logging.getLogger("distsmote")

#: Samplers that keep every original row (only add rows): nothing to show as removed.
KEEPS_ORIGINALS = frozenset({"none", "smote", "adasyn", "borderline-1", "borderline-2", "smotenc"})
#: Rows per sampler in the 2-D view.
VIEW_ROWS = 2_000


@dataclass
class Evaluation:
    """Everything an evaluation measured (the report is drawn from it).

    Attributes
    ----------
    metrics : pandas.DataFrame
        ``sampler, model, metric, mean, std, folds``: mean and spread over folds.
    per_fold : pandas.DataFrame
        ``sampler, model, fold, metric, value``.
    counts : pandas.DataFrame
        ``sampler, class, before, after``: class counts of the (first) train side.
    curves : dict
        ``{(sampler, model): {"fpr", "tpr", "recall", "precision"}}`` for the minority
        class against the rest (test sides of all folds pooled).
    views : dict
        ``{sampler: DataFrame(pc1, pc2, class, kind)}``, kind ``original``,
        ``synthetic`` or ``removed``: a bounded sample projected on the first two
        principal components of the original train rows.
    path : str
        Which path ran (in memory or distributed, and on what).
    settings : dict
        The parameters of the run.
    """

    metrics: pd.DataFrame
    per_fold: pd.DataFrame
    counts: pd.DataFrame
    curves: dict
    views: dict
    path: str
    settings: dict = field(default_factory=dict)


def check_samplers(samplers: Any) -> list[str]:
    """Validate sampler names (``none`` plus distsmote's; a comma-separated string works)."""
    from distsmote.config import SAMPLER_NAMES

    if isinstance(samplers, str):
        samplers = [s.strip() for s in samplers.split(",") if s.strip()]
    samplers = list(samplers)
    known = {"none", *SAMPLER_NAMES}
    unknown = [s for s in samplers if s not in known]
    if unknown or not samplers:
        raise ValueError(
            f"Unknown sampler {unknown[0] if unknown else ''!r}; choose among {sorted(known)}."
        )
    if len(set(samplers)) != len(samplers):
        raise ValueError(f"A sampler is named twice in {samplers}.")
    return samplers


def make_named_sampler(name: str, seed: int, params: dict | None = None) -> Any:
    """The distsmote sampler for ``name`` (``None`` for ``none``)."""
    from distsmote.config import SamplerConfig, make_sampler

    if name == "none":
        return None
    return make_sampler(SamplerConfig(name=name, params=dict(params or {})), seed)


def resample_train(name: str, sampler: Any, train: Any, enc: Encoding, engine: Any) -> Any:
    """The resampled, encoded train side with a boolean ``SYNTHETIC`` column.

    ``train`` is the raw train side.  Numeric-only samplers resample its encoding;
    samplers in :data:`NOMINAL_SAMPLERS` (SMOTENC) resample the raw rows, categorical
    columns included, and their output is encoded afterwards.
    """
    if sampler is None:
        return engine.with_constant(encode(engine, train, enc), SYNTHETIC, False)
    if name in NOMINAL_SAMPLERS:
        out = sampler.resample(train, label=enc.label, indicator=SYNTHETIC)
        return encode(engine, out, enc)
    return sampler.resample(encode(engine, train, enc), label=enc.label, indicator=SYNTHETIC)


def minority_class(counts: dict) -> Any:
    """The class with the fewest rows (the first in sorted order on a tie)."""
    return min(sorted(counts, key=repr), key=lambda c: counts[c])


def fold_ids(pdf: pd.DataFrame, label: str, k: int, seed: int) -> np.ndarray:
    """Stratified fold of each row: per class, rows ranked by content hash, dealt to k folds."""
    from distsmote.split import _row_hash

    payload = {"seed": int(seed), "columns": sorted(map(str, pdf.columns))}
    h = _row_hash(pdf, payload)
    codes = pd.factorize(pdf[label], sort=True)[0]
    order = np.lexsort((h, codes))
    folds = np.empty(len(pdf), dtype=np.int64)
    start = np.searchsorted(codes[order], np.arange(codes.max() + 1))
    rank = np.arange(len(pdf)) - start[codes[order]]
    folds[order] = rank % k
    return folds


def _splits(pdf: pd.DataFrame, label: str, cv: int | None, test_fraction: float, seed: int):
    if not cv:
        from distsmote.split import train_test_split

        yield train_test_split(pdf, label, test_fraction, seed=seed)
        return
    folds = fold_ids(pdf, label, cv, seed)
    for f in range(cv):
        yield pdf[folds != f].reset_index(drop=True), pdf[folds == f].reset_index(drop=True)


def _row_keys(x: np.ndarray) -> np.ndarray:
    from distsmote.neighbors.keys import content_keys

    return content_keys(x, np.zeros(len(x), dtype=np.int32))


def pca_features(enc: Encoding) -> list[str]:
    """The 2-D view's features: the numeric ones (one-hot columns would dominate), if two or more."""
    return list(enc.numeric) if len(enc.numeric) >= 2 else enc.features


def view(original: pd.DataFrame, resampled: pd.DataFrame, features: list[str], label: str,
         rows: int, seed: int, pca: list[str] | None = None) -> pd.DataFrame:
    """A bounded 2-D PCA view of a resampled train side held in memory.

    Up to ``rows`` original train rows (PCA is fitted on them) and up to ``rows`` rows
    of the output; the sampled original rows absent from the output are "removed".
    """
    rng = np.random.default_rng(seed)
    orig = original.iloc[np.sort(rng.choice(len(original), min(rows, len(original)), replace=False))]
    out = resampled.iloc[np.sort(rng.choice(len(resampled), min(rows, len(resampled)), replace=False))]
    kept = np.isin(_row_keys(orig[features].to_numpy(np.float64)),
                   _row_keys(resampled[features].to_numpy(np.float64)))
    return view_from_samples(orig, out, ~kept, pca or features, label, seed)


def view_from_samples(orig: pd.DataFrame, out: pd.DataFrame, removed: np.ndarray, features: list[str],
                      label: str, seed: int) -> pd.DataFrame:
    """Project a sample of original rows and one of the output on the originals' first two PCs.

    PCA is fitted on the standardised original sample; ``removed`` marks the original
    rows the sampler removed.  Columns: ``pc1, pc2, class, kind`` (``original``,
    ``synthetic`` or ``removed``).
    """
    from sklearn.decomposition import PCA

    x0 = orig[features].to_numpy(np.float64)
    mean, std = x0.mean(axis=0), x0.std(axis=0)
    std[std == 0] = 1.0
    pca = PCA(n_components=2, random_state=seed).fit((x0 - mean) / std)
    parts = []
    for frame, kind in ((out, None), (orig[np.asarray(removed, bool)], "removed")):
        if not len(frame):
            continue
        xy = pca.transform((frame[features].to_numpy(np.float64) - mean) / std)
        kinds = (np.where(frame[SYNTHETIC].to_numpy(bool), "synthetic", "original")
                 if kind is None else np.full(len(frame), kind))
        parts.append(pd.DataFrame({"pc1": xy[:, 0], "pc2": xy[:, 1],
                                   "class": frame[label].to_numpy(), "kind": kinds}))
    return pd.concat(parts, ignore_index=True)


def _curve(y: np.ndarray, p: np.ndarray, minority: Any) -> dict:
    from sklearn.metrics import precision_recall_curve, roc_curve

    positive = y == minority
    fpr, tpr, _ = roc_curve(positive, p)
    precision, recall, _ = precision_recall_curve(positive, p)
    return {"fpr": fpr, "tpr": tpr, "recall": recall, "precision": precision}


def summarise(per_fold: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread (sample standard deviation; 0 for one fold) over folds."""
    g = per_fold.groupby(["sampler", "model", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                folds="count").reset_index()
    return out


def evaluate_in_memory(pdf: pd.DataFrame, enc: Encoding, samplers: list[str], models: list[str],
                       test_fraction: float, cv: int | None, seed: int,
                       sampler_params: dict, view_rows: int) -> Evaluation:
    """The experiment on a pandas table with scikit-learn models."""
    from distsmote.engines.local import LocalEngine

    engine = LocalEngine()
    label, features = enc.label, enc.features
    counts_all = pdf[label].value_counts().to_dict()
    minority = minority_class(counts_all)
    if cv and min(counts_all.values()) < cv:
        raise ValueError(f"The smallest class has {min(counts_all.values())} rows, fewer than cv={cv} folds.")
    rows, counts, views = [], [], {}
    pooled: dict = {}
    for fold, (raw_train, raw_test) in enumerate(_splits(pdf, label, cv, test_fraction, seed)):
        train, test = enc.apply(raw_train), enc.apply(raw_test)
        x_test = test[features].to_numpy(np.float64)
        y_test = test[label].to_numpy()
        for s in samplers:
            t0 = time.perf_counter()
            res = resample_train(s, make_named_sampler(s, seed, sampler_params.get(s)), raw_train, enc, engine)
            resample_seconds = time.perf_counter() - t0
            if fold == 0:
                after = res[label].value_counts().to_dict()
                before = train[label].value_counts().to_dict()
                for c in sorted(set(before) | set(after), key=repr):
                    counts.append({"sampler": s, "class": c, "before": before.get(c, 0), "after": after.get(c, 0)})
                views[s] = view(train, res, features, label, view_rows, seed, pca_features(enc))
            x_res = res[features].to_numpy(np.float64)
            y_res = res[label].to_numpy()
            for m in models:
                model = make_model(m, seed)
                t0 = time.perf_counter()
                model.fit(x_res, y_res)
                fit_seconds = time.perf_counter() - t0
                proba = model.predict_proba(x_test)
                classes = list(model.classes_)
                values = score(y_test, proba, classes, minority)
                values.update(fit_seconds=fit_seconds, resample_seconds=resample_seconds)
                rows += [{"sampler": s, "model": m, "fold": fold, "metric": k, "value": v}
                         for k, v in values.items()]
                ys, ps = pooled.setdefault((s, m), ([], []))
                ys.append(y_test)
                ps.append(proba[:, classes.index(minority)])
            log.info("evaluated %s (fold %d)", s, fold)
    per_fold = pd.DataFrame(rows)
    curves = {k: _curve(np.concatenate(y), np.concatenate(p), minority) for k, (y, p) in pooled.items()}
    n = len(pdf)
    path = (f"in memory: scikit-learn models on {n:,} rows (at most the in-memory limit); "
            f"{'stratified ' + str(cv) + '-fold cross-validation' if cv else f'hold-out, test fraction {test_fraction}'}")
    return Evaluation(summarise(per_fold), per_fold, pd.DataFrame(counts), curves, views, path)


def run_evaluation(
    frame: Any,
    label: str,
    samplers: Any = DEFAULT_SAMPLERS,
    models: Any = ("lr", "dt", "rf"),
    *,
    test_fraction: float = 0.2,
    cv: int | None = None,
    seed: int = 0,
    in_memory_limit: int = IN_MEMORY_LIMIT,
    sampler_params: dict | None = None,
    view_rows: int = VIEW_ROWS,
    tree_sample_rows: int | None = None,
) -> Evaluation:
    """Run the experiment on a pandas, Dask or Spark table; see :func:`evaluate`."""
    samplers, models = check_samplers(samplers), check_models(models)
    if cv is not None and (isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2):
        raise ValueError(f"cv must be an integer of at least 2 folds (or None for hold-out). Got {cv!r}.")
    if not 0 < float(test_fraction) < 1:
        raise ValueError(f"test_fraction must be strictly between 0 and 1. Got {test_fraction!r}.")
    engine = engine_for(frame)
    enc = plan_encoding(engine, frame, label)
    stats = engine.label_stats(frame, label, [])
    if stats.null_labels:
        raise ValueError(f"Label column {label!r} has {stats.null_labels} missing values; drop or fill them.")
    if len(stats.counts) < 2:
        raise ValueError(f"Label column {label!r} has a single class; there is nothing to compare.")
    n_rows = sum(stats.counts.values())
    settings = {"label": label, "samplers": samplers, "models": models, "test_fraction": float(test_fraction),
                "cv": cv, "seed": int(seed), "in_memory_limit": int(in_memory_limit), "rows": int(n_rows),
                "engine": engine.name, "features": enc.features, "view_features": pca_features(enc)}
    params = dict(sampler_params or {})
    if n_rows <= in_memory_limit:
        pdf = engine.collect_small(frame, in_memory_limit)  # bounded by the limit
        result = evaluate_in_memory(pdf.reset_index(drop=True), enc, samplers, models,
                                    float(test_fraction), cv, int(seed), params, view_rows)
    else:
        from distsmote.evaluate.distributed import evaluate_distributed

        if cv:
            raise ValueError(
                f"The table has {n_rows:,} rows, more than the in-memory limit ({in_memory_limit:,}); "
                "k-fold runs in memory only. Use hold-out (no cv) or raise the limit."
            )
        result = evaluate_distributed(engine, frame, enc, stats.counts, samplers, models,
                                      float(test_fraction), int(seed), params, view_rows,
                                      **({} if tree_sample_rows is None else {"tree_rows": tree_sample_rows}))
    result.settings = settings
    return result


def evaluate(frame: Any, label: str, samplers: Any = DEFAULT_SAMPLERS, models: Any = ("lr", "dt", "rf"),
             *, report: str | None = None, **kwargs: Any) -> pd.DataFrame:
    """Compare samplers × models on a table, as the motivating article did.

    Parameters
    ----------
    frame : pandas, Dask or Spark DataFrame
    label : str
        The class column.  Every other column is a feature; non-numeric columns are
        one-hot encoded.
    samplers : sequence of str or comma-separated str
        ``none`` (no resampling) and distsmote's sampler names.
    models : sequence of str or comma-separated str
        ``lr``, ``dt``, ``rf``.
    report : str, optional
        Directory for ``report.html``, the figures and ``metrics.csv``/``metrics.json``.
    **kwargs
        ``test_fraction`` (0.2), ``cv`` (None: hold-out; else the number of folds),
        ``seed`` (0), ``in_memory_limit`` (1 000 000 rows), ``sampler_params``
        (``{sampler: {param: value}}``), ``view_rows`` (2 000), ``tree_sample_rows``
        (Dask's tree models above the limit fit on a sample this large; 200 000).

    Returns
    -------
    pandas.DataFrame
        ``sampler, model, metric, mean, std, folds``.
    """
    result = run_evaluation(frame, label, samplers, models, **kwargs)
    if report is not None:
        from distsmote.evaluate.report import write_report

        write_report(result, report)
    return result.metrics
