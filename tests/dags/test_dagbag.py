"""The DAG files parse without errors and every DAG is well-formed (own Airflow process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = r"""
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(DAGS)
out = {"errors": {k: str(v)[-400:] for k, v in bag.import_errors.items()}, "dags": {}}
out["all"] = {
    dag.dag_id: {"tags": sorted(dag.tags),
                 "tasks": {t.task_id: [t.owner, t.retries,
                                       t.execution_timeout and t.execution_timeout.total_seconds()]
                           for t in dag.tasks}}
    for dag in bag.dags.values()
}
for dag in bag.dags.values():
    if not dag.dag_id.startswith("framecast_"):
        continue
    render = dag.get_task("chunk.render")
    download = dag.get_task("chunk.download")
    wait = dag.get_task("chunk.wait")
    increment = dag.get_task("chunk.publish")
    out["dags"][dag.dag_id] = {
        "tags": sorted(dag.tags),
        "max_active_runs": dag.max_active_runs,
        "catchup": dag.catchup,
        "cron": dag.timetable.expression,
        "interval_h": dag.timetable.interval.total_seconds() / 3600,
        "tasks": {t.task_id: {"owner": t.owner, "retries": t.retries} for t in dag.tasks},
        "pool": download.pool,
        "render_template": render.map_index_template,
        "mapped_group": type(render.task_group).__name__,
        "wait_template": wait.map_index_template,
        "render_priority": render.priority_weight,
        "download_priority": download.priority_weight,
        "increments_at_once": increment.max_active_tis_per_dagrun,
        "final_trigger_rule": getattr(dag.get_task("publish").trigger_rule, "value", None),
        "sensor_deferrable": wait.deferrable,
    }
from datetime import datetime, timezone
from airflow.serialization.definitions.dag import SerializedDAG
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import TimeRestriction
core = DagSerialization.from_dict(DagSerialization.to_dict(bag.dags["framecast_icon_eu"]))
restriction = TimeRestriction(datetime(2026, 11, 23, tzinfo=timezone.utc), None, catchup=True)
info, infos = None, []
for _ in range(3):
    info = core.timetable.next_dagrun_info(
        last_automated_data_interval=info.data_interval if info else None,
        restriction=restriction)
    infos.append([info.logical_date.isoformat(), info.run_after.isoformat()])
out["icon_eu_schedule"] = infos
print("RESULT" + json.dumps(out))
"""


def _probe(tmp_path: Path) -> dict:
    sys.path.insert(0, str(ROOT / "plugins"))
    from framecast_airflow.localenv import LocalAirflow

    env = LocalAirflow(tmp_path / "home").env()
    code = PROBE.replace("DAGS", repr(str(ROOT / "dags")))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def test_one_wellformed_dag_per_model(tmp_path):
    result = _probe(tmp_path)
    assert result["errors"] == {}
    for dag_id, d in result["all"].items():  # every DAG in dags/ parses, has tags and retries
        assert d["tags"], dag_id
        for task_id, (owner, retries, timeout) in d["tasks"].items():
            assert owner, (dag_id, task_id)
            # no task can hold a worker slot forever
            assert timeout and 0 < timeout <= 24 * 3600, (dag_id, task_id, timeout)
            assert retries is not None and retries >= 0, (dag_id, task_id)
    dags = result["dags"]
    assert set(dags) == {"framecast_icon_eu", "framecast_icon", "framecast_gfs"}
    for dag_id, d in dags.items():
        assert "framecast" in d["tags"] and len(d["tags"]) >= 3, dag_id
        assert d["max_active_runs"] == 2 and d["catchup"] is False
        for task_id, t in d["tasks"].items():
            assert t["owner"] == "framecast", (dag_id, task_id)
            expected = 0 if task_id == "chunk.wait" else 2
            assert t["retries"] == expected, (dag_id, task_id)
        assert d["pool"] == "framecast_download"
        assert d["render_template"] == "{{ chunk_label }}"
        assert d["render_priority"] > d["download_priority"]
        assert d["wait_template"] == "{{ chunk_label }}"
        assert d["mapped_group"] == "MappedTaskGroup"  # one wait->download->render->publish per chunk
        assert d["increments_at_once"] == 1  # increments of a run never race
        assert d["final_trigger_rule"] == "all_done"  # a missing chunk still publishes the rest
        assert d["sensor_deferrable"] is True
        assert d["interval_h"] in (2.0, 3.5)
    assert dags["framecast_icon_eu"]["cron"] == "0 2,8,14,20 * * *"
    assert dags["framecast_gfs"]["cron"] == "30 3,9,15,21 * * *"
    # what the scheduler and a backfill create: logical date = model run, started 2 h later (as
    # the first steps arrive)
    assert result["icon_eu_schedule"] == [
        ["2026-11-23T00:00:00+00:00", "2026-11-23T02:00:00+00:00"],
        ["2026-11-23T06:00:00+00:00", "2026-11-23T08:00:00+00:00"],
        ["2026-11-23T12:00:00+00:00", "2026-11-23T14:00:00+00:00"],
    ]
