"""Where a task finds its run time, its model spec and its folders.

A DAG run's model run time is its logical date (scheduled and backfill runs have the cycle
time as logical date; see :func:`framecast.catalog.run_time_for`), or
``dag_run.conf["run_time"]`` when an operator re-processes a specific run by hand. Folders come from Airflow Variables so one
deployment can move them without touching code; environment variables are the fallback for the
demo and tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from framecast.catalog import (
    ModelSpec,
    get_model,
    latest_complete_run,
    parse_run,
    raw_run_dir,
    run_time_for,
)
from framecast.records import run_dir

VAR_DATA_ROOT = "framecast_data_root"
VAR_PUBLISH_ROOT = "framecast_publish_root"
VAR_METRICS_DB = "framecast_metrics_db"


def _variable(key: str, env: str, default: str) -> str:
    from airflow.sdk import Variable

    fallback = os.environ.get(env) or default
    return str(Variable.get(key, default=fallback))


def _airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))


def default_data_root() -> Path:
    """The data root when no Variable names one: ``$FRAMECAST_DATA_ROOT``, else
    ``$AIRFLOW_HOME/framecast`` (processes that are not tasks resolve it the same way)."""
    return Path(os.environ.get("FRAMECAST_DATA_ROOT") or _airflow_home() / "framecast")


@dataclass(frozen=True)
class RunContext:
    """Everything a task of one DAG run needs to find its data."""

    spec: ModelSpec
    run_time: datetime
    data_root: Path
    publish_root: Path

    @property
    def raw_dir(self) -> Path:
        return raw_run_dir(self.data_root / "raw", self.spec.name, self.run_time)

    @property
    def frames_root(self) -> Path:
        return self.data_root / "frames"

    @property
    def frames_dir(self) -> Path:
        return run_dir(self.frames_root, self.spec.name, self.run_time)


def run_time_from_context(spec: ModelSpec, context: Any) -> datetime:
    """The model run this DAG run processes (conf override, else from the logical date)."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if conf.get("run_time"):
        return parse_run(str(conf["run_time"]))
    logical = context.get("logical_date")
    if logical is not None:
        return run_time_for(spec, logical)
    # a run triggered without logical date: the newest run that should be complete by now
    return latest_complete_run(spec, getattr(dag_run, "run_after", None) or datetime.now(UTC))


def run_context(model: str, context: Any) -> RunContext:
    spec = get_model(model)
    data_root = Path(_variable(VAR_DATA_ROOT, "FRAMECAST_DATA_ROOT", str(default_data_root())))
    publish_root = Path(_variable(VAR_PUBLISH_ROOT, "FRAMECAST_PUBLISH_ROOT",
                                  str(data_root / "publish")))
    return RunContext(spec, run_time_from_context(spec, context), data_root, publish_root)


def metrics_db(data_root: Path) -> str:
    return _variable(VAR_METRICS_DB, "FRAMECAST_METRICS_DB",
                     f"sqlite:///{data_root / 'metrics.sqlite'}")
