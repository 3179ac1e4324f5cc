"""The run manifest: what a run read, did and wrote, as JSON written last.

Every run writes ``_distsmote_manifest.json`` next to its output (in the output
directory, where dataset readers ignore names starting with ``_``), and in the
partition directory it replaced when partitioned.  For a Delta table the same document
is also in the commit's metadata (key ``distsmote.manifest`` of ``DeltaTable.history()``).
It records:

* the input: its files with their sizes, or the Delta version; ``--where``;
* the resolved parameters, the seed, the sampler and the engine;
* the distsmote, FAISS, Dask, Spark, deltalake, pyarrow and pandas versions;
* the class counts before and after, per split, and the rows generated and removed;
* the files written, each with the input file it copies, if it is a copy;
* the kNN mode (``knn`` and, where a join ran, its mode);
* the wall-clock seconds of each phase.

``distsmote inspect OUTPUT`` prints it as a table (:func:`render`).
"""

from __future__ import annotations

import json
import posixpath
import time
from typing import Any

from distsmote.engines.files import merge_counts
from distsmote.paths import redact

NAME = "_distsmote_manifest.json"

_PACKAGES = ("distsmote", "faiss-cpu", "dask", "distributed", "pyspark", "deltalake", "pyarrow", "pandas", "numpy")


def versions() -> dict[str, str | None]:
    """Installed versions of the packages a run depends on (``None``: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "model_dump"):
        return _jsonable(value.model_dump())
    if hasattr(value, "__dataclass_fields__"):
        import dataclasses

        return _jsonable(dataclasses.asdict(value))
    return repr(value)


def _counts(d: dict) -> dict:
    return {str(k): int(v) for k, v in sorted(d.items(), key=lambda kv: repr(kv[0]))}


class Manifest:
    """Builds a run's manifest as the run goes (see the module docstring)."""

    def __init__(self, config: Any, source: Any, sampler: Any, engine: str) -> None:
        self.config, self.source, self.engine = config, source, engine
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def document(self, sampler: Any, written: dict, phases: dict, committed: dict) -> dict:
        """The manifest as it stands (phases and outputs recorded so far)."""
        config = self.config
        main = "train" if config.test_fraction is not None else ""
        splits: dict[str, Any] = {}
        before = dict(getattr(sampler, "class_counts_", {}))
        for name, parts in written.items():
            after = merge_counts(parts)
            entry: dict[str, Any] = {"after": _counts(after), "rows": int(sum(after.values()))}
            if name == main:
                entry["before"] = _counts(before)
                diff = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
                generated = _generated(sampler)
                if generated is None:
                    generated = sum(max(0, d) for d in diff.values())
                entry["rows_generated"] = int(generated)
                entry["rows_removed"] = int(generated + sum(before.values()) - sum(after.values()))
            else:
                entry["before"] = _counts(after)
                entry["rows_generated"] = entry["rows_removed"] = 0
            entry["files"] = [{"name": p.name, "bytes": p.size, "rows": p.rows,
                               **({"copy_of": redact(p.copy_of)} if p.copy_of else {})} for p in parts]
            if name in committed:
                entry["output"] = committed[name]
            splits[name or "output"] = entry
        params = sampler.get_params(deep=False)
        join = getattr(sampler, "join_info_", None)
        knn: dict[str, Any] = {"requested": _jsonable(params.get("knn", "auto"))}
        if join is not None:
            knn["join"] = _jsonable(join)
        knn["recall"] = _recall(sampler, knn["requested"], join is not None)
        return _jsonable({
            "distsmote_manifest": 1,
            "started": self.started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "engine": self.engine,
            "sampler": {"name": config.sampler.name, "class": type(sampler).__name__, "params": params},
            "seed": config.seed,
            "label": config.label,
            "indicator": config.indicator,
            "split": None if config.test_fraction is None else {
                "test_fraction": config.test_fraction, "stratify": config.stratify, "seed": config.split_seed,
            },
            "input": self.source.describe(),
            "output": {"path": config.output, "format": config.format, "partition_by": list(config.partition_by)},
            "splits": splits,
            "knn": knn,
            "versions": versions(),
            "phases_seconds": dict(phases),
        })


def _generated(sampler: Any) -> int | None:
    """Synthetic rows the sampler planned: its (or its SMOTE step's) ``sampling_strategy_``."""
    over = getattr(sampler, "smote_", sampler)
    if getattr(type(over), "_sampling_type", None) != "over-sampling":
        return 0
    targets = getattr(over, "sampling_strategy_", None)
    if not isinstance(targets, dict):
        return None
    return int(sum(int(v) for v in targets.values()))


def write_manifest(store: Any, output: str, doc: dict, targets: list[str]) -> None:
    """Write the manifest next to the output, and in each partition directory ``targets``."""
    text = json.dumps(doc, indent=2, sort_keys=False)
    places = {posixpath.join(output.rstrip("/"), NAME)}
    places |= {posixpath.join(t.rstrip("/"), NAME) for t in targets}
    for path in sorted(places):
        store.write_text(path, text)


def read_manifest(path: str) -> dict:
    """The manifest of an output: its ``_distsmote_manifest.json``, or a Delta table's
    latest commit metadata.

    Raises
    ------
    FileNotFoundError
        Neither is there.
    """
    import fsspec


    fs, root = fsspec.core.url_to_fs(path)
    target = root if root.endswith(".json") else posixpath.join(root.rstrip("/"), NAME)
    if fs.exists(target):
        return json.loads(fs.cat_file(target).decode())
    from distsmote.inputs import is_delta

    if is_delta(path):
        from distsmote.delta import MANIFEST_KEY, history

        for entry in history(path):
            if isinstance(entry.get(MANIFEST_KEY), dict):
                return entry[MANIFEST_KEY]
    raise FileNotFoundError(f"no run manifest at {redact(path)!r} (no {NAME}, no Delta commit with one); "
                            "pass the OUTPUT of a distsmote run")


def render(doc: dict) -> str:
    """The manifest as a human-readable table."""
    lines = []

    def row(key: str, value: Any) -> None:
        lines.append(f"{key:<22} {value}")

    inp = doc.get("input", {})
    sampler = doc.get("sampler", {})
    row("engine", doc.get("engine"))
    row("sampler", f"{sampler.get('name')} ({sampler.get('class')})")
    params = {k: v for k, v in (sampler.get("params") or {}).items() if v is not None}
    row("parameters", ", ".join(f"{k}={v}" for k, v in params.items()))
    row("seed", doc.get("seed"))
    row("label", doc.get("label"))
    where = f"  where {inp['where']}" if inp.get("where") else ""
    version = f"  (Delta version {inp['delta_version']})" if "delta_version" in inp else ""
    files = f"  {len(inp['files'])} files, {inp.get('bytes', 0):,} bytes" if "files" in inp else ""
    row("input", f"{inp.get('path')} [{inp.get('format')}]{version}{files}{where}")
    out = doc.get("output", {})
    part = f"  partitioned by {', '.join(out['partition_by'])}" if out.get("partition_by") else ""
    row("output", f"{out.get('path')} [{out.get('format')}]{part}")
    if doc.get("split"):
        s = doc["split"]
        row("split", f"test_fraction={s['test_fraction']} stratify={s['stratify']} seed={s['seed']}")
    knn = doc.get("knn", {})
    mode = knn.get("join", {}).get("mode") if isinstance(knn.get("join"), dict) else None
    row("kNN", f"{knn.get('requested')}" + (f" (join: {mode})" if mode else "") + f"; recall: {knn.get('recall')}")
    row("versions", ", ".join(f"{k} {v}" for k, v in (doc.get("versions") or {}).items() if v))
    row("phases (s)", ", ".join(f"{k} {v:.2f}" for k, v in (doc.get("phases_seconds") or {}).items()))
    row("finished", doc.get("finished"))
    for name, split in (doc.get("splits") or {}).items():
        lines.append("")
        dv = split.get("output", {}).get("delta_version")
        head = f"{name}: {split.get('rows', 0):,} rows written, {split.get('rows_generated', 0):,} generated, " \
               f"{split.get('rows_removed', 0):,} removed" + (f", Delta version {dv}" if dv is not None else "")
        lines.append(head)
        classes = sorted(set(split.get("before", {})) | set(split.get("after", {})))
        width = max([len(c) for c in classes] + [5])
        lines.append(f"  {'class':<{width}}  {'before':>12}  {'after':>12}")
        for c in classes:
            lines.append(f"  {c:<{width}}  {split['before'].get(c, 0):>12,}  {split['after'].get(c, 0):>12,}")
    return "\n".join(lines)


def _recall(sampler: Any, requested: Any, joined: bool) -> Any:
    """The kNN recall to record: ``"exact"``, ``{class: recall@k}`` measured on a sample
    of each approximate per-class index, or ``"not measured"`` (a kNN join's)."""
    if requested == "exact":
        return "exact"
    over = getattr(sampler, "smote_", sampler)  # a combined sampler's oversampler
    joined = joined or hasattr(sampler, "smote_")
    if getattr(over, "generated_from_join_", False):  # above driver_budget
        return {"oversampling": "kNN join, not measured", **({"join": "not measured"} if joined else {})}
    measured = {str(c): round(float(r), 4) for c, r in (getattr(over, "knn_recall_", None) or {}).items()}
    if measured and not joined:
        return measured
    if not measured and not joined:
        return "exact"  # every index was exact (small classes under knn='auto')
    return {"oversampling": measured or "exact", "join": "not measured"}
