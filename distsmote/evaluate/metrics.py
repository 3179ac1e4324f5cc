"""Scores of one fitted model on a test side, with scikit-learn's metric functions.

Binary tables are scored for the minority class (the positive class); multi-class
tables per class plus macro averages.  ROC-AUC is one-vs-rest (macro) for multi-class,
average precision the macro mean of each class against the rest.

The distributed path cannot bring per-row scores to the driver, so it scores from
small aggregates instead: a confusion matrix (exact) and per-class histograms of the
minority-class probability (:func:`scores_from_histogram`; ROC-AUC and average
precision to within the bin width).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

#: Histogram bins of the distributed path's score distributions.
SCORE_BINS = 4096


def _per_class(cm: np.ndarray, classes: Sequence[Any], minority: Any) -> dict[str, float]:
    """Precision, recall and F1 from a confusion matrix (rows: truth, columns: prediction)."""
    tp = np.diag(cm).astype(float)
    pred, true = cm.sum(axis=0).astype(float), cm.sum(axis=1).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(pred > 0, tp / pred, 0.0)
        recall = np.where(true > 0, tp / true, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    out: dict[str, float] = {}
    if len(classes) == 2:
        i = list(classes).index(minority)
        out.update(precision=precision[i], recall=recall[i], f1=f1[i])
    else:
        for i, c in enumerate(classes):
            out.update({f"precision[{c}]": precision[i], f"recall[{c}]": recall[i], f"f1[{c}]": f1[i]})
    out.update(precision_macro=precision.mean(), recall_macro=recall.mean(), f1_macro=f1.mean())
    with np.errstate(invalid="ignore"):
        out["balanced_accuracy"] = float(np.mean(recall[true > 0]))
    return {k: float(v) for k, v in out.items()}


def score(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any], minority: Any) -> dict[str, float]:
    """Every metric of one model on one test side.

    Parameters
    ----------
    y_true : array of shape (n,)
    proba : array of shape (n, n_classes)
        ``predict_proba`` with columns in ``classes`` order; the prediction is the
        class of highest probability (what the estimators' ``predict`` returns).
    classes : sequence
        The model's classes, sorted.
    minority : class
        The positive class of binary metrics.
    """
    classes = list(classes)
    y_true = np.asarray(y_true)
    pred = np.asarray(classes)[np.argmax(proba, axis=1)]
    p, r, f, _ = precision_recall_fscore_support(y_true, pred, labels=classes, zero_division=0)
    out: dict[str, float] = {}
    if len(classes) == 2:
        i = classes.index(minority)
        positive = y_true == minority
        out.update(precision=p[i], recall=r[i], f1=f[i])
        out.update(precision_macro=p.mean(), recall_macro=r.mean(), f1_macro=f.mean())
        out["balanced_accuracy"] = balanced_accuracy_score(y_true, pred)
        out["roc_auc"] = roc_auc_score(positive, proba[:, i])
        out["average_precision"] = average_precision_score(positive, proba[:, i])
    else:
        for i, c in enumerate(classes):
            out.update({f"precision[{c}]": p[i], f"recall[{c}]": r[i], f"f1[{c}]": f[i]})
        out.update(precision_macro=p.mean(), recall_macro=r.mean(), f1_macro=f.mean())
        out["balanced_accuracy"] = balanced_accuracy_score(y_true, pred)
        out["roc_auc"] = roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
        out["average_precision"] = float(
            np.mean([average_precision_score(y_true == c, proba[:, i]) for i, c in enumerate(classes)])
        )
    return {k: float(v) for k, v in out.items()}


def curve_from_histogram(pos: np.ndarray, neg: np.ndarray) -> dict[str, np.ndarray]:
    """ROC and precision-recall points from score histograms (bins in ascending score)."""
    tp = np.concatenate([[0], np.cumsum(pos[::-1])]).astype(float)  # thresholds from the top
    fp = np.concatenate([[0], np.cumsum(neg[::-1])]).astype(float)
    P, N = max(tp[-1], 1.0), max(fp[-1], 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
    return {"fpr": fp / N, "tpr": tp / P, "recall": tp / P, "precision": precision}


def scores_from_histogram(
    cm: np.ndarray, pos: np.ndarray, neg: np.ndarray, classes: Sequence[Any], minority: Any
) -> dict[str, float]:
    """The binary metrics of the distributed path from small aggregates.

    Parameters
    ----------
    cm : array (2, 2)
        Confusion matrix, rows the true class, columns the prediction, in ``classes`` order.
    pos, neg : arrays (SCORE_BINS,)
        Histograms of the minority-class probability of minority and of other rows.
    """
    out = _per_class(cm, classes, minority)
    c = curve_from_histogram(pos, neg)
    out["roc_auc"] = float(np.trapezoid(c["tpr"], c["fpr"]))
    # Average precision: sum over thresholds of (R_n - R_{n-1}) * P_n, as sklearn defines it.
    out["average_precision"] = float(np.sum(np.diff(c["recall"]) * c["precision"][1:]))
    return out
