"""The experiment on tables above the in-memory limit: models train on the engine.

* Dask: dask-ml's ``LogisticRegression`` (after dask-ml's ``StandardScaler``) on the
  whole resampled train side.  dask-ml has no tree models, so ``dt`` and ``rf`` are
  scikit-learn models fitted on a bounded sample of the resampled train side
  (``tree_sample_rows``) and applied to the whole test side on the workers, block by
  block.  The report says so.
* Spark: Spark MLlib's ``LogisticRegression`` (after ``StandardScaler``),
  ``DecisionTreeClassifier`` and ``RandomForestClassifier`` on the whole train side.

No table reaches the driver: each resampled train side is persisted (cached) on the
engine while its models train, the test side is scored where it lies, and only small
aggregates come back (a confusion matrix and histograms of the minority-class
probability, :data:`~distsmote.evaluate.metrics.SCORE_BINS` bins), plus the bounded
samples of the 2-D view, drawn with the content-hash split.  This path scores binary
labels (the minority class against the other).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from distsmote._unique import unique_sorted
from distsmote.evaluate.encoding import Encoding, encode
from distsmote.evaluate.metrics import SCORE_BINS, curve_from_histogram, scores_from_histogram
from distsmote.evaluate.protocol import (
    KEEPS_ORIGINALS,
    SYNTHETIC,
    Evaluation,
    make_named_sampler,
    minority_class,
    pca_features,
    resample_train,
    summarise,
    view_from_samples,
)

log = logging.getLogger("distsmote")

#: Rows of the sample the Dask path fits tree models on.
TREE_SAMPLE_ROWS = 200_000


def bounded_sample(engine: Any, frame: Any, label: str, rows: int, n: int, seed: int) -> pd.DataFrame:
    """At most ``rows`` rows of a frame of ``n`` rows, chosen by content hash (deterministic)."""
    from distsmote.split import train_test_split

    if n <= rows:
        return engine.collect_small(frame, rows)
    _, sample = train_test_split(frame, label, rows / n, stratify=False, seed=seed)
    return engine.collect_small(sample, rows + 1)


def _confusion(flat: np.ndarray, classes: list, minority: Any) -> np.ndarray:
    """2 × 2 confusion matrix in ``classes`` order.

    ``flat``: counts of (true class is the minority, predicted minority) pairs in the
    order ``[(0, 0), (0, 1), (1, 0), (1, 1)]``.
    """
    cm_min = np.asarray(flat).reshape(2, 2)
    order = [1, 0] if classes.index(minority) == 0 else [0, 1]
    return cm_min[np.ix_(order, order)]


def _minority_proba(block: np.ndarray, estimator: Any) -> np.ndarray:
    """P(minority) of one block of rows (the estimator was fitted on minority = 1)."""
    if not len(block):
        return np.empty(0, dtype=np.float64)
    proba = estimator.predict_proba(block)
    return proba[:, list(estimator.classes_).index(1)] if 1 in estimator.classes_ else np.zeros(len(block))


class DaskBackend:
    """dask-ml on the Dask cluster."""

    name = "dask"

    def __init__(self, features: list[str], label: str, minority: Any, seed: int, tree_rows: int) -> None:
        from distributed import default_client

        self.client = default_client()
        self.features, self.label, self.minority, self.seed = features, label, minority, seed
        self.tree_rows = tree_rows

    def describe(self, models: list[str]) -> str:
        parts = ["dask-ml LogisticRegression (with dask-ml StandardScaler) on the whole train side"] if "lr" in models else []
        trees = [m for m in models if m != "lr"]
        if trees:
            parts.append(f"{'/'.join(trees)}: scikit-learn fitted on a {self.tree_rows:,}-row content-hash sample "
                         "of the resampled train side (dask-ml has no tree models), applied to the test side "
                         "block by block on the workers")
        return "; ".join(parts)

    def _arrays(self, frame: Any) -> tuple[Any, Any]:
        x = frame[self.features].to_dask_array(lengths=True).astype(np.float64)
        y = (frame[self.label] == self.minority).astype(np.int64).to_dask_array(lengths=True)
        return x, y

    def fit(self, model: str, frame: Any, n_rows: int, engine: Any) -> Any:
        if model == "lr":
            from dask_ml.linear_model import LogisticRegression
            from dask_ml.preprocessing import StandardScaler

            x, y = self._arrays(frame)
            scaler = StandardScaler().fit(x)
            lr = LogisticRegression(solver="lbfgs", max_iter=100).fit(scaler.transform(x), y)
            return ("lr", scaler, lr)
        import dask

        from distsmote.evaluate.models import make_model

        sample = bounded_sample(engine, frame[[*self.features, self.label]], self.label, self.tree_rows, n_rows, self.seed)
        est = make_model(model, self.seed).fit(sample[self.features].to_numpy(np.float64),
                                               (sample[self.label] == self.minority).to_numpy(np.int64))
        return ("tree", None, dask.delayed(est, pure=True, traverse=False))

    def score(self, fitted: Any, test: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import dask
        import dask.array as da

        kind, scaler, model = fitted
        x, y = self._arrays(test)
        if kind == "lr":
            p = model.predict_proba(scaler.transform(x))
            p = p[:, 1] if p.ndim == 2 else p
        else:  # the fitted tree is one key of the graph; each block is scored on a worker
            p = x.map_blocks(_minority_proba, model, drop_axis=1, dtype=np.float64)
        pred = (p > 0.5).astype(np.int64)
        cm = da.bincount(y * 2 + pred, minlength=4)
        bins = da.clip((p * SCORE_BINS).astype(np.int64), 0, SCORE_BINS - 1)
        hist = da.bincount(y * SCORE_BINS + bins, minlength=2 * SCORE_BINS)
        cm, hist = dask.compute(cm, hist)  # small: 4 and 2 × SCORE_BINS counts
        return np.asarray(cm), hist[SCORE_BINS:], hist[:SCORE_BINS]


class SparkBackend:
    """Spark MLlib on the Spark session."""

    name = "spark"

    def __init__(self, features: list[str], label: str, minority: Any, seed: int, tree_rows: int) -> None:
        self.features, self.label, self.minority, self.seed = features, label, minority, seed

    def describe(self, models: list[str]) -> str:
        names = {"lr": "LogisticRegression (with StandardScaler)", "dt": "DecisionTreeClassifier",
                 "rf": "RandomForestClassifier"}
        return "Spark MLlib " + ", ".join(names[m] for m in models) + " on the whole train side"

    def _prepare(self, frame: Any) -> Any:
        from pyspark.ml.feature import VectorAssembler
        from pyspark.sql import functions as F

        y = (F.col(f"`{self.label}`") == F.lit(self.minority)).cast("double").alias("__y")
        cols = [F.col(f"`{c}`").cast("double").alias(f"__f{i}") for i, c in enumerate(self.features)]
        flat = frame.select(*cols, y)
        return VectorAssembler(inputCols=[f"__f{i}" for i in range(len(self.features))],
                               outputCol="__x").transform(flat).select("__x", "__y")

    def fit(self, model: str, frame: Any, n_rows: int, engine: Any) -> Any:
        from pyspark.ml import Pipeline
        from pyspark.ml.classification import (
            DecisionTreeClassifier,
            LogisticRegression,
            RandomForestClassifier,
        )
        from pyspark.ml.feature import StandardScaler

        common = {"labelCol": "__y", "probabilityCol": "__p", "predictionCol": "__pred",
                  "rawPredictionCol": "__raw"}
        if model == "lr":
            stages = [StandardScaler(inputCol="__x", outputCol="__xs", withMean=True, withStd=True),
                      LogisticRegression(featuresCol="__xs", maxIter=100, **common)]
        elif model == "dt":
            stages = [DecisionTreeClassifier(featuresCol="__x", seed=self.seed, maxDepth=10, **common)]
        else:
            stages = [RandomForestClassifier(featuresCol="__x", seed=self.seed, numTrees=50, maxDepth=10, **common)]
        return Pipeline(stages=stages).fit(self._prepare(frame))

    def score(self, fitted: Any, test: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from pyspark.ml.functions import vector_to_array
        from pyspark.sql import functions as F

        out = fitted.transform(self._prepare(test))
        p = vector_to_array(F.col("__p"))[1]
        scored = out.select(F.col("__y").cast("int").alias("y"), F.col("__pred").cast("int").alias("pred"),
                            F.least(F.floor(p * SCORE_BINS), F.lit(SCORE_BINS - 1)).cast("int").alias("bin"))
        rows = scored.groupBy("y", "pred", "bin").count().collect()  # ≤ 4 × SCORE_BINS rows
        cm = np.zeros(4, dtype=np.int64)
        pos, neg = np.zeros(SCORE_BINS, np.int64), np.zeros(SCORE_BINS, np.int64)
        for r in rows:
            cm[r["y"] * 2 + r["pred"]] += r["count"]
            (pos if r["y"] == 1 else neg)[r["bin"]] += r["count"]
        return cm, pos, neg


def evaluate_distributed(engine: Any, frame: Any, enc: Encoding, counts: dict, samplers: list[str],
                         models: list[str], test_fraction: float, seed: int, sampler_params: dict,
                         view_rows: int, tree_rows: int = TREE_SAMPLE_ROWS) -> Evaluation:
    """The hold-out experiment with models trained on the engine (see the module docstring)."""
    from distsmote.split import _test_count, train_test_split

    label, features = enc.label, enc.features
    classes = sorted(counts, key=repr)
    if len(classes) != 2:
        raise ValueError(
            f"The table has {len(classes)} classes and more rows than the in-memory limit; the distributed "
            "path scores binary labels only. Raise the in-memory limit to evaluate it with scikit-learn."
        )
    minority = minority_class(counts)
    backends = {"dask": DaskBackend, "spark": SparkBackend}
    if engine.name not in backends:
        raise ValueError(f"No distributed models for the {engine.name} engine; use Dask or Spark.")
    backend = backends[engine.name](features, label, minority, seed, tree_rows)
    raw_train, raw_test = train_test_split(frame, label, test_fraction, seed=seed)
    raw_train = engine.persist(raw_train)
    test = engine.persist(encode(engine, raw_test, enc))
    before = {c: n - _test_count(test_fraction, n) for c, n in counts.items()}  # exact, by the split
    n_train = sum(before.values())
    original = enc.apply(bounded_sample(engine, raw_train, label, view_rows, n_train, seed))
    rows, count_rows, views, curves = [], [], {}, {}
    for s in samplers:
        t0 = time.perf_counter()
        res = engine.persist(resample_train(s, make_named_sampler(s, seed, sampler_params.get(s)), raw_train, enc, engine))
        # Counting runs the resampling (the frame is persisted); no sampler, no change.
        after = dict(before) if s == "none" else engine.label_stats(res, label, []).counts
        resample_seconds = time.perf_counter() - t0
        n_res = sum(after.values())
        for c in classes:
            count_rows.append({"sampler": s, "class": c, "before": before.get(c, 0), "after": after.get(c, 0)})
        views[s] = _view(engine, original, res, features, label, view_rows, n_res, seed, pca_features(enc),
                         removes=s not in KEEPS_ORIGINALS)
        for m in models:
            t0 = time.perf_counter()
            fitted = backend.fit(m, res, n_res, engine)
            fit_seconds = time.perf_counter() - t0
            cm_flat, pos, neg = backend.score(fitted, test)
            cm = _confusion(cm_flat, classes, minority)
            values = scores_from_histogram(cm, pos, neg, classes, minority)
            values.update(fit_seconds=fit_seconds, resample_seconds=resample_seconds)
            rows += [{"sampler": s, "model": m, "fold": 0, "metric": k, "value": v} for k, v in values.items()]
            curves[(s, m)] = curve_from_histogram(pos, neg)
            log.info("evaluated %s × %s on %s", s, m, engine.name)
        engine.release(res)
    engine.release(raw_train)
    engine.release(test)
    per_fold = pd.DataFrame(rows)
    n = sum(counts.values())
    path = (f"distributed on {engine.name}: {backend.describe(models)}; {n:,} rows, more than the in-memory "
            f"limit; hold-out, test fraction {test_fraction}; nothing collected but aggregates and "
            f"{view_rows:,}-row samples for the 2-D view")
    return Evaluation(summarise(per_fold), per_fold, pd.DataFrame(count_rows), curves, views, path)


def _view(engine: Any, original: pd.DataFrame, res: Any, features: list[str], label: str,
          rows: int, n_res: int, seed: int, pca: list[str], removes: bool = True) -> pd.DataFrame:
    """The 2-D view from bounded samples; removed rows found by an aggregation on the engine.

    ``removes=False`` (samplers that keep every original row) skips that aggregation.
    """
    from distsmote.evaluate.protocol import _row_keys

    sample = bounded_sample(engine, res, label, rows, n_res, seed)
    if not removes:
        return view_from_samples(original, sample, np.zeros(len(original), bool), pca, label, seed)
    keys = unique_sorted(_row_keys(original[features].to_numpy(np.float64)))

    def present(pdf: pd.DataFrame, payload: np.ndarray) -> np.ndarray:
        k = _row_keys(pdf[features].to_numpy(np.float64))
        return np.where(np.isin(k, payload), k, -1)

    keyed = engine.add_column(engine.drop(res, [SYNTHETIC]), "__key", present, engine.broadcast(keys))
    found = engine.aggregate(keyed, "__key", {features[0]: "max"})  # one row per found key
    kept = set(found["__key"].to_numpy(np.int64).tolist())
    removed = ~np.isin(_row_keys(original[features].to_numpy(np.float64)), list(kept))
    return view_from_samples(original, sample, removed, pca, label, seed)
