"""Job configuration: a validated schema for YAML files, with CLI overrides.

A config file has the shape of :class:`JobConfig`; unknown keys are refused with the
list of valid ones.  Command-line flags override the file.
"""

from __future__ import annotations

from numbers import Real
from pathlib import Path
from typing import Any, Literal

import math

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: CLI/config sampler names → public class names in :mod:`distsmote`.
SAMPLER_NAMES = {
    "smote": "SMOTE",
    "adasyn": "ADASYN",
    "borderline-1": "BorderlineSMOTE",
    "borderline-2": "BorderlineSMOTE",
    "tomek-links": "TomekLinks",
    "enn": "EditedNearestNeighbours",
    "smote-tomek": "SMOTETomek",
    "smote-enn": "SMOTEENN",
    "smotenc": "SMOTENC",
    "smoten": "SMOTEN",
}


class ConfigError(ValueError):
    """The job configuration is invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SamplerConfig(_Strict):
    """Which sampler to run and its parameters (imbalanced-learn's names)."""

    name: str = "smote"
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> "SamplerConfig":
        if self.name not in SAMPLER_NAMES:
            raise ValueError(
                f"unknown sampler {self.name!r}; choose one of {sorted(SAMPLER_NAMES)}"
            )
        strategy = self.params.get("sampling_strategy")
        if isinstance(strategy, Real) and not isinstance(strategy, bool):
            if not math.isfinite(strategy) or not 0 < strategy <= 1:
                raise ValueError(
                    f"params.sampling_strategy must be a float in (0, 1] (minority / majority after "
                    f"resampling) or one of 'auto', 'minority', 'not minority', 'not majority', "
                    f"'all'; got {strategy!r}"
                )
        return self


class DaskConfig(_Strict):
    """Dask settings: a scheduler address, or an embedded local cluster."""

    scheduler: str | None = None
    n_workers: int | None = Field(default=None, ge=1)
    threads_per_worker: int = Field(default=1, ge=1)
    memory_limit: str = "auto"
    #: Fail the job when no worker has been connected for this many seconds.
    no_workers_timeout: float = Field(default=300.0, gt=0, allow_inf_nan=False)


class SparkConfig(_Strict):
    """Spark settings: the master (``None`` keeps spark-submit's or ``local[*]``) and conf."""

    master: str | None = None
    app_name: str = "distsmote"
    conf: dict[str, str] = Field(default_factory=dict)
    #: Keep the driver JVM's classes in an archive in distsmote's cache, so that the next
    #: session this machine starts outside spark-submit starts faster (written once, about
    #: 180 MB; see :mod:`distsmote.engines.spark_archive`).
    class_archive: bool = True


class JobConfig(_Strict):
    """A whole resampling job."""

    input: str | None = None
    output: str | None = None
    label: str | None = None
    engine: Literal["local", "dask", "spark"] = "dask"
    seed: int | None = Field(default=None, ge=0)
    indicator: str | None = None
    #: Column roles (see :mod:`distsmote.columns`): categorical features (SMOTENC,
    #: SMOTEN; default: string, category and boolean columns), passthrough columns,
    #: partition columns (passthrough; synthetic rows copy the seed's value) and an id
    #: column (passthrough; fresh ids on synthetic rows).
    categorical: list[str] | None = None
    passthrough: list[str] | None = None
    partition_columns: list[str] | None = None
    id_column: str | None = None
    overwrite: bool = False
    #: Input format: ``auto`` (a Delta table if it has a ``_delta_log``), ``parquet``, ``delta``.
    input_format: Literal["auto", "parquet", "delta"] = "auto"
    #: Output format: a Parquet dataset or a Delta Lake table.
    format: Literal["parquet", "delta"] = "parquet"
    #: Partitions (and rows) to read, e.g. ``"dt = '2026-11-27'"`` (see distsmote.where).
    where: str | None = None
    #: Delta input: the table version to read (default: the latest).
    version: int | None = Field(default=None, ge=0)
    #: Output partition columns: input partition columns, one value each in the selection.
    partition_by: list[str] = Field(default_factory=list)
    #: Hold out this fraction of the rows as OUTPUT/test before resampling OUTPUT/train.
    test_fraction: float | None = Field(default=None, gt=0, lt=1, allow_inf_nan=False)
    #: Stratify the train/test split by the label (per-class fractions exact to one row).
    stratify: bool = True
    #: Seed of the train/test split (independent of the resampling seed).
    split_seed: int = Field(default=0, ge=0)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    dask: DaskConfig = Field(default_factory=DaskConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)

    def require_paths(self) -> "JobConfig":
        """Check the fields a run cannot do without."""
        missing = [k for k in ("input", "output", "label") if getattr(self, k) in (None, "")]
        if missing:
            flags = ", ".join(f"--{k}" for k in missing)
            raise ConfigError(f"missing {', '.join(missing)}: pass {flags} or set them in --config")
        return self


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "config"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown config key {where!r}")
        else:
            msg = e["msg"].removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def build_config(data: dict[str, Any]) -> JobConfig:
    """Validate a config mapping, raising :class:`ConfigError` naming the bad keys."""
    try:
        return JobConfig.model_validate(data)
    except ValidationError as err:
        unknown_top = any(e["type"] == "extra_forbidden" and len(e["loc"]) == 1 for e in err.errors())
        hint = f" (top-level keys: {sorted(JobConfig.model_fields)})" if unknown_top else ""
        raise ConfigError(f"{_describe(err)}{hint}") from None


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> JobConfig:
    """Read a YAML config (optional) and apply overrides (dotted keys, ``None`` = unset)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(_yaml_error(str(path), exc)) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
        data = loaded
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key {p!r} must be a mapping")
        node[leaf] = value
    return build_config(data)


def _yaml_error(path: str, exc: yaml.YAMLError) -> str:
    """``config file 'job.yaml' line 3, column 7: <what is wrong>``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context else problem
    return f"config file {path!r}{where}: YAML syntax error: {detail}"


def make_sampler(config: SamplerConfig, seed: int | None) -> Any:
    """Instantiate the configured sampler, refusing unknown parameters by name."""
    import distsmote

    cls_name = SAMPLER_NAMES[config.name]
    cls = getattr(distsmote, cls_name, None)
    if cls is None:
        raise ConfigError(f"sampler {config.name!r} is not available in this version")
    valid = set(cls().get_params(deep=False))
    params = dict(config.params)
    if "k_neighbors" in params and "k_neighbors" not in valid and "n_neighbors" in valid:
        params["n_neighbors"] = params.pop("k_neighbors")  # --k-neighbors for ADASYN
    if config.name.startswith("borderline-"):
        kind = params.setdefault("kind", config.name)
        if kind != config.name:
            raise ConfigError(f"sampler {config.name!r} cannot take kind={kind!r}; drop the kind parameter")
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {unknown} for sampler {config.name!r}; valid: {sorted(valid)}"
        )
    if seed is not None and "random_state" in valid:
        params["random_state"] = seed
    return cls(**params)
