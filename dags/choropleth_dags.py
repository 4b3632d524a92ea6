"""One DAG per animation spec (YAML) in the choropleth animations folder.

Each run: ``prepare`` (check the source, fix the colour scale, rasterise the map once) ->
``render_segment`` mapped over frame chunks (stream rows from SQL, render, encode one segment)
-> ``finish`` (join segments losslessly in order, GIF, run summary) -> ``publish`` (atomic copy
into the spec's publish folder). The database is the spec's Airflow Connection, resolved in
each task so credentials never travel through XCom. All work is done by ``framecast``.

Folders (environment): FRAMECAST_ANIMATIONS_DIR (specs; default: the package's examples),
FRAMECAST_CHOROPLETH_WORK (per-run work dirs), FRAMECAST_CHOROPLETH_OUT (finished outputs);
both default to folders under FRAMECAST_DATA_ROOT, the storage every worker shares
(framecast.choropleth.workdirs). ``prepare`` sweeps work folders of abandoned runs.
"""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook, dag, get_current_context, task

from framecast.choropleth.spec import AnimationSpec, default_spec_dir, load_spec
from framecast.errors import FramecastError

log = logging.getLogger(__name__)

SPEC_DIR = Path(os.environ.get("FRAMECAST_ANIMATIONS_DIR") or default_spec_dir())


#: Upper bound of any one task's run time (a 100,000-frame run takes about 20 minutes).
TASK_TIMEOUT = timedelta(hours=4)


def _resolved(spec_path: str) -> AnimationSpec:
    """The spec with its connection resolved to a SQLAlchemy URL (inside a task only)."""
    from framecast.choropleth.source import url_from_connection

    spec = load_spec(spec_path)
    if spec.connection is None:
        return spec
    conn = BaseHook.get_connection(spec.connection)
    return spec.with_url(url_from_connection(
        conn.conn_type, host=conn.host, login=conn.login, password=conn.password,
        port=conn.port, schema=conn.schema, extra=conn.extra_dejson))


def _work_dir(spec: AnimationSpec) -> Path:
    from framecast.choropleth import workdirs

    return workdirs.run_work_dir(workdirs.work_root(), spec.name,
                                 get_current_context()["run_id"])


def build_dag(spec: AnimationSpec) -> Any:
    spec_path = str(spec.path)

    @dag(dag_id=f"choropleth_{spec.name}", schedule=spec.schedule,
         start_date=datetime(2024, 1, 1, tzinfo=UTC), catchup=False, max_active_runs=1,
         tags=["framecast", "choropleth"], doc_md=spec.description or None,
         # no task may hold a worker slot forever (a hung query, a stuck encoder)
         default_args={"execution_timeout": TASK_TIMEOUT})
    def choropleth() -> None:
        @task
        def prepare() -> dict[str, Any]:
            from framecast.choropleth import workdirs
            from framecast.choropleth.pipeline import prepare as _prepare

            s = _resolved(spec_path)
            work = _work_dir(s)
            out_dirs = (workdirs.out_root() / s.name,) + (
                (workdirs.publish_dir(s.publish_dir),) if s.publish_dir else ())
            for gone in workdirs.sweep(work.parent, keep=work, out_dirs=out_dirs):
                log.info("%s: removed stale %s", s.name, gone)
            return _prepare(s, work).to_json()

        @task
        def chunk_indices(plan: dict[str, Any]) -> list[int]:
            return list(range(len(plan["chunks"])))

        @task(map_index_template="segment {{ task.op_kwargs['index'] }}")
        def render_segment(plan: dict[str, Any], index: int) -> dict[str, Any]:
            from framecast.choropleth.pipeline import Plan
            from framecast.choropleth.pipeline import render_segment as _render

            return _render(_resolved(spec_path), Plan.from_json(plan), index).to_json()

        @task
        def finish(plan: dict[str, Any], segments: list[dict[str, Any]]) -> dict[str, Any]:
            from framecast.choropleth.pipeline import Plan
            from framecast.choropleth.pipeline import finish as _finish

            s = load_spec(spec_path)
            from framecast.choropleth import workdirs

            summary = _finish(s, Plan.from_json(plan), workdirs.out_root() / s.name)
            for w in summary["source"]["warnings"]:
                log.warning("%s: %s", s.name, w)
            shutil.rmtree(plan["work_dir"], ignore_errors=True)
            return summary

        @task
        def publish(summary: dict[str, Any]) -> list[str]:
            from framecast.choropleth.pipeline import publish_outputs

            s = load_spec(spec_path)
            if not s.publish_dir:
                return []
            from framecast.choropleth import workdirs

            return publish_outputs(summary, workdirs.publish_dir(s.publish_dir))

        plan = prepare()
        segments = render_segment.partial(plan=plan).expand(index=chunk_indices(plan))
        publish(finish(plan, segments))

    return choropleth()


def _load_all() -> dict[str, Any]:
    dags: dict[str, Any] = {}
    for path in sorted(SPEC_DIR.glob("*.yaml")):
        try:
            spec = load_spec(path)
        except FramecastError as exc:
            # One broken spec must not take the other animations' DAGs down with it.
            log.error("skipping animation spec %s: %s", path, exc)
            continue
        dags[f"choropleth_{spec.name}"] = build_dag(spec)
    return dags


globals().update(_load_all())
