"""The report's figures, drawn with matplotlib's Agg backend (no display needed).

Each function takes an :class:`~distsmote.evaluate.protocol.Evaluation` and returns a
list of ``(name, figure)`` pairs; :mod:`distsmote.evaluate.report` saves them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: The metrics drawn as grouped bar charts (when present).
BAR_METRICS = ("precision", "recall", "f1", "roc_auc", "average_precision", "balanced_accuracy",
               "f1_macro", "fit_seconds")
_TITLES = {
    "precision": "Precision (minority class)", "recall": "Recall (minority class)",
    "f1": "F1 (minority class)", "roc_auc": "ROC-AUC", "average_precision": "Average precision (PR-AUC)",
    "balanced_accuracy": "Balanced accuracy", "f1_macro": "F1 (macro)", "fit_seconds": "Model fit time (s)",
    "precision_macro": "Precision (macro)", "recall_macro": "Recall (macro)",
}


def _plt():
    from distsmote._optional import require

    matplotlib = require("matplotlib", "The evaluate report draws its figures with matplotlib", "evaluate")

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def class_balance(ev: Any) -> list:
    """Class counts of the train side before and after each sampler."""
    plt = _plt()
    counts = ev.counts
    samplers = list(dict.fromkeys(counts["sampler"]))
    classes = sorted(set(counts["class"]), key=repr)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * (len(samplers) + 1), 3.6))
    width = 0.8 / len(classes)
    x = np.arange(len(samplers) + 1)
    first = counts[counts["sampler"] == samplers[0]].set_index("class")
    for i, c in enumerate(classes):
        heights = [first.loc[c, "before"]] + [
            int(counts[(counts["sampler"] == s) & (counts["class"] == c)]["after"].sum()) for s in samplers
        ]
        ax.bar(x + (i - (len(classes) - 1) / 2) * width, heights, width, label=f"class {c}")
    ax.set_xticks(x, ["train split\n(before)"] + [f"after\n{s}" for s in samplers])
    ax.set_ylabel("rows")
    ax.set_title("Class balance of the train split, before and after each sampler")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return [("class_balance", fig)]


def metric_bars(ev: Any) -> list:
    """The article's grouped bar charts: one per metric, samplers × models, ± spread."""
    plt = _plt()
    m = ev.metrics
    samplers = list(dict.fromkeys(m["sampler"]))
    models = list(dict.fromkeys(m["model"]))
    present = set(m["metric"])
    names = [k for k in BAR_METRICS if k in present]
    names += sorted(k for k in present if k.startswith(("f1[", "recall[")))
    out = []
    for metric in names:
        fig, ax = plt.subplots(figsize=(1.5 + 1.1 * len(samplers), 3.4))
        width = 0.8 / len(models)
        x = np.arange(len(samplers))
        for i, model in enumerate(models):
            rows = m[(m["metric"] == metric) & (m["model"] == model)].set_index("sampler").reindex(samplers)
            ax.bar(x + (i - (len(models) - 1) / 2) * width, rows["mean"], width,
                   yerr=rows["std"] if rows["std"].fillna(0).any() else None, capsize=2, label=model)
        ax.set_xticks(x, samplers, fontsize=8)
        ax.set_title(_TITLES.get(metric, metric))
        if metric != "fit_seconds":
            ax.set_ylim(0, 1)
        ax.legend(title="model", fontsize=8, title_fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        out.append((f"bars_{metric.replace('[', '_').replace(']', '')}", fig))
    return out


def curves(ev: Any) -> list:
    """ROC and precision-recall curves per model, one line per sampler."""
    plt = _plt()
    samplers = list(dict.fromkeys(s for s, _ in ev.curves))
    models = list(dict.fromkeys(m for _, m in ev.curves))
    out = []
    for model in models:
        fig, (roc, pr) = plt.subplots(1, 2, figsize=(9, 3.8))
        for s in samplers:
            c = ev.curves.get((s, model))
            if c is None:
                continue
            roc.plot(c["fpr"], c["tpr"], label=s, lw=1.2)
            pr.plot(c["recall"], c["precision"], label=s, lw=1.2)
        roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        roc.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC: {model}")
        pr.set(xlabel="recall", ylabel="precision", title=f"Precision-recall: {model}", ylim=(0, 1.02))
        roc.legend(fontsize=8)
        pr.legend(fontsize=8)
        fig.tight_layout()
        out.append((f"curves_{model}", fig))
    return out


def views(ev: Any) -> list:
    """2-D PCA views of each sampler's train side: originals, synthetic and removed rows."""
    plt = _plt()
    samplers = list(ev.views)
    cols = min(3, len(samplers))
    rows = -(-len(samplers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    classes = sorted({c for v in ev.views.values() for c in v["class"]}, key=repr)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, s in zip(axes.flat, samplers):
        v = ev.views[s]
        for i, c in enumerate(classes):
            col = colours[i % len(colours)]
            for kind, marker, alpha, size in (("original", "o", 0.35, 6), ("synthetic", "^", 0.6, 8),
                                              ("removed", "x", 0.55, 10)):
                pts = v[(v["class"] == c) & (v["kind"] == kind)]
                if len(pts):
                    ax.scatter(pts["pc1"], pts["pc2"], s=size, marker=marker, alpha=alpha, color=col,
                               label=f"{kind} {c}", linewidths=0.8 if marker == "x" else 0)
        ax.set_title(s)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=6, markerscale=1.5, loc="best")
    for ax in list(axes.flat)[len(samplers):]:
        ax.axis("off")
    used = ev.settings.get("view_features") or []
    what = "numeric features" if used and len(used) < len(ev.settings.get("features", used)) else "features"
    fig.suptitle(f"PCA of the original train rows' {what}: originals (●), synthetic rows (▲), removed rows (×)")
    fig.tight_layout()
    return [("pca_views", fig)]


def all_figures(ev: Any) -> list:
    """Every figure of the report, in report order."""
    return [*class_balance(ev), *metric_bars(ev), *curves(ev), *views(ev)]
