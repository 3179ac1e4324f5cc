"""Write an evaluation as a directory: ``report.html``, ``*.png``, ``metrics.csv/json``.

``report.html`` is self-contained (figures embedded as base64 PNG).  The directory is
assembled next to its destination and renamed into place, so a failed run never
leaves a report that looks complete; an existing report is replaced only with
``overwrite=True``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import shutil
import uuid
from typing import Any

import numpy as np
import pandas as pd

from distsmote.evaluate.plots import all_figures

#: Metrics of the "best sampler" table (higher is better; fit time lower).
BEST_METRICS = ("f1", "recall", "precision", "roc_auc", "average_precision", "balanced_accuracy",
                "f1_macro", "fit_seconds")


def best_samplers(metrics: pd.DataFrame) -> pd.DataFrame:
    """The best sampler per model and metric (by mean over folds)."""
    rows = []
    for (model, metric), g in metrics[metrics["metric"].isin(BEST_METRICS)].groupby(["model", "metric"], sort=False):
        g = g.sort_values("mean", ascending=metric == "fit_seconds", kind="stable")
        top = g.iloc[0]
        rows.append({"model": model, "metric": metric, "best sampler": top["sampler"], "mean": top["mean"],
                     "baseline (none)": g.loc[g["sampler"] == "none", "mean"].max() if (g["sampler"] == "none").any() else np.nan})
    out = pd.DataFrame(rows)
    if len(out):
        order = {m: i for i, m in enumerate(BEST_METRICS)}
        out = out.sort_values(["model", "metric"], key=lambda s: s.map(order) if s.name == "metric" else s, kind="stable")
    return out.reset_index(drop=True)


def best_table(best: pd.DataFrame) -> pd.DataFrame:
    """Metrics down, models across: "sampler (value)" in each cell."""
    if not len(best):
        return best
    cell = best.assign(cell=[f"{s} ({v:.3f})" for s, v in zip(best["best sampler"], best["mean"])])
    wide = cell.pivot_table(index="metric", columns="model", values="cell", aggfunc="first", sort=False)
    return wide.reset_index().rename_axis(columns=None)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, classes="t")


def render_html(ev: Any, images: list[tuple[str, bytes]]) -> str:
    """The report page, with every figure embedded."""
    s = ev.settings
    best = best_samplers(ev.metrics)
    wide = ev.metrics.assign(value=[f"{m:.3f} ± {d:.3f}" for m, d in zip(ev.metrics["mean"], ev.metrics["std"])])
    wide = wide.pivot_table(index=["sampler", "model"], columns="metric", values="value", aggfunc="first", sort=False)
    figs = "\n".join(
        f'<figure id="{html.escape(name)}"{" class=half" if name.startswith("bars_") else ""}><img alt="{html.escape(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(data).decode()}"></figure>'
        for name, data in images
    )
    settings = ", ".join(f"{k} = {html.escape(str(v))}" for k, v in s.items() if k != "features")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>distsmote evaluate: {html.escape(str(s.get('label')))}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 1.5em; }} h2 {{ font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }}
.path {{ background: #eef5ff; border-left: 4px solid #3b7dd8; padding: .5em .8em; }}
table.t {{ border-collapse: collapse; font-size: 12px; }} table.t td, table.t th {{ padding: 2px 8px; border-bottom: 1px solid #eee; text-align: right; }}
figure {{ display: inline-block; margin: .3em; vertical-align: top; }} img {{ max-width: 100%; }}
figure.half img {{ max-width: 530px; }}
</style></head><body>
<h1>Which sampler for <code>{html.escape(str(s.get('label')))}</code>? {len(s.get('samplers', []))} samplers × {len(s.get('models', []))} models</h1>
<p class="path"><b>Path:</b> {html.escape(ev.path)}.</p>
<p><b>Protocol:</b> the test data is never resampled; each sampler is fitted on the train side only.
Table: {s.get('rows', 0):,} rows on the {html.escape(str(s.get('engine')))} engine; features: {html.escape(', '.join(s.get('features', [])))}.<br>
Settings: {settings}.</p>
<h2>Best sampler per model and metric</h2>
{_table(best_table(best))}
<h2>Class balance</h2>
{figs.split('</figure>', 1)[0]}</figure>
<h2>Figures</h2>
{figs.split('</figure>', 1)[1] if '</figure>' in figs else ''}
<h2>All metrics (mean ± spread over folds)</h2>
{wide.to_html(border=0, classes="t")}
<p>Generated by distsmote evaluate; metrics in metrics.csv and metrics.json next to this page.</p>
</body></html>
"""


def write_report(ev: Any, directory: str, overwrite: bool = True) -> str:
    """Write the report directory atomically; return the path of ``report.html``."""
    directory = os.path.abspath(directory)
    if os.path.exists(directory) and not overwrite:
        raise FileExistsError(f"Report directory {directory!r} exists; pass overwrite=True to replace it.")
    if os.path.exists(directory) and not os.path.isfile(os.path.join(directory, "report.html")) and os.listdir(directory):
        raise FileExistsError(
            f"Report directory {directory!r} exists and holds something other than a report; choose another."
        )
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{os.path.basename(directory)}.staging-{uuid.uuid4().hex[:8]}")
    os.makedirs(staging)
    try:
        images = [(name, _png(fig)) for name, fig in all_figures(ev)]
        for name, data in images:
            with open(os.path.join(staging, f"{name}.png"), "wb") as fh:
                fh.write(data)
        ev.metrics.to_csv(os.path.join(staging, "metrics.csv"), index=False)
        doc = {"path": ev.path, "settings": ev.settings,
               "metrics": ev.metrics.to_dict(orient="records"),
               "per_fold": ev.per_fold.to_dict(orient="records"),
               "class_counts": ev.counts.to_dict(orient="records"),
               "best": best_samplers(ev.metrics).to_dict(orient="records")}
        with open(os.path.join(staging, "metrics.json"), "w") as fh:
            json.dump(_json_safe(doc), fh, indent=1, default=str)
        with open(os.path.join(staging, "report.html"), "w", encoding="utf-8") as fh:
            fh.write(render_html(ev, images))
        old = None
        if os.path.exists(directory):
            old = staging + ".old"
            os.replace(directory, old)
        os.replace(staging, directory)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return os.path.join(directory, "report.html")
