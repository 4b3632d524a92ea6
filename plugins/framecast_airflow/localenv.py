"""A self-contained local Airflow: one AIRFLOW_HOME folder, SQLite metadata DB, CLI in a subprocess.

Used by the demo and the end-to-end tests. Every Airflow command runs in a child process with
an environment built here, so the calling process never imports Airflow with somebody else's
settings, and two homes (two tests) never share a database. Nothing in here is needed in a
real deployment, where the Airflow installation provides the same settings.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def connection_json(base_url: str) -> str:
    """An http-type connection (as JSON for ``AIRFLOW_CONN_*``) pointing at ``base_url``."""
    return json.dumps({"conn_type": "http", "extra": {"base_url": base_url}})


def conn_env_name(conn_id: str) -> str:
    return "AIRFLOW_CONN_" + conn_id.upper()


@dataclass
class LocalAirflow:
    """An Airflow home under ``home`` running this repository's DAGs and plugins."""

    home: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    dags_folder: Path = REPO / "dags"
    plugins_folder: Path = REPO / "plugins"

    @property
    def db_path(self) -> Path:
        return self.home.resolve() / "airflow.db"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "AIRFLOW_HOME": str(self.home.resolve()),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "MPLBACKEND": "Agg",
        })
        env.update(self.extra_env)
        return env

    def airflow(self, *args: str, timeout: float = 900,
                check: bool = True) -> subprocess.CompletedProcess:
        """Run ``airflow <args>``; CalledProcessError carries its output when ``check``."""
        exe = Path(sys.executable).with_name("airflow")
        proc = subprocess.run([str(exe), *args], env=self.env(), capture_output=True,
                              text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, proc.stdout,
                                                proc.stderr)
        return proc

    def migrate(self, pools: dict[str, int] | None = None) -> None:
        """Create the metadata DB (idempotent) and the pools the DAGs use."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        for name, slots in (pools or {}).items():
            self.airflow("pools", "set", name, str(slots), "framecast downloads")

    def clone_db_from(self, other: LocalAirflow) -> None:
        """Start from a copy of ``other``'s migrated database (much faster than migrating)."""
        self.home.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(other.db_path, self.db_path)

    def dags_test(self, dag_id: str, logical_date: str, conf: dict | None = None,
                  timeout: float = 900) -> subprocess.CompletedProcess:
        """Run one DAG run to completion in-process (``airflow dags test``); never raises."""
        args = ["dags", "test", dag_id, logical_date]
        if conf:
            args += ["--conf", json.dumps(conf)]
        return self.airflow(*args, timeout=timeout, check=False)

    def task_states(self, dag_id: str) -> list[dict]:
        """Every task instance of ``dag_id``: run, task, map index, label, state, try, pool,
        times."""
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT ti.run_id, ti.task_id, ti.map_index, ti.rendered_map_index, ti.state, "
                "ti.try_number, ti.pool, ti.start_date, ti.end_date, dr.logical_date "
                "FROM task_instance ti JOIN dag_run dr "
                "ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id WHERE ti.dag_id = ? "
                "ORDER BY dr.logical_date, ti.task_id, ti.map_index", (dag_id,)).fetchall()
        return [dict(r) for r in rows]

    def run_states(self, dag_id: str) -> list[dict]:
        with sqlite3.connect(self.db_path) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT run_id, logical_date, state, run_type FROM dag_run "
                              "WHERE dag_id = ? ORDER BY logical_date", (dag_id,)).fetchall()
        return [dict(r) for r in rows]
