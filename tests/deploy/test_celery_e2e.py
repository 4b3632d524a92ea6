"""The production topology for real: CeleryExecutor, local PostgreSQL and Redis, two workers.

One cluster (scripts/celery_local.py's LocalCluster: api-server, scheduler, dag-processor,
triggerer, a ``worker`` on the default and render queues and a ``worker-render`` on the render
queue) serves both tests of this module, against the local upstream serving two generated
ICON-EU runs in DWD's layout:

1. a full run completes and its mapped render tasks ran on both workers;
2. the render worker is SIGKILLed (with every process it started) while it renders: the
   scheduler notices the missing heartbeats, the task is retried on the other worker, and the
   run completes with every frame exactly once on disk, in the records and in the metrics;
3. ``airflow backfill create`` over a past day's two cycles produces two separate, correct runs,
   published beside the newer runs while ``latest`` stays on the newest.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import services

from framecast.catalog import format_run, get_model, needed_variables
from framecast.products import load_catalog
from framecast.records import read_records

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

# Two model runs safely in the past: the scheduler refuses to start runs whose logical date
# (run time + availability delay) lies in the future.
RUN1 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
RUN2 = RUN1 + timedelta(hours=6)
# The day before: filled by `airflow backfill create` (two cycles, 00 and 06 UTC).
BACKFILL_RUNS = (RUN1 - timedelta(days=1), RUN1 - timedelta(days=1) + timedelta(hours=6))
STEPS = list(range(6))
# Three mapped render tasks per run: `worker` (2 slots) can hold at most two of them at once, so
# the render worker always gets at least one.
CHUNK = 2
HEARTBEAT_TIMEOUT = 30  # seconds without task heartbeats before the scheduler gives up on it
RENDER_WORKER = "worker-render-1"
WORKER = "worker-1"


@pytest.fixture(scope="module")
def cluster(celery_local, tmp_path_factory):
    services.require_postgres()
    services.require_redis()
    work = tmp_path_factory.mktemp("celery")
    models = celery_local.write_models_file(
        work / "models.yaml", steps=STEPS, chunk_size=CHUNK, products=["t2m_mslp"],
        regions=["europe"], retries=2, retry_delay_seconds=1)
    variables = list(needed_variables(get_model("icon-eu", models)))
    errors: list[BaseException] = []

    def generate() -> None:  # overlaps with the cluster start-up
        try:
            for run in (RUN1, RUN2, *BACKFILL_RUNS):
                celery_local.generate_sample_run(work / "upstream", run, STEPS, variables)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    (work / "upstream").mkdir()
    gen = threading.Thread(target=generate, name="sample-runs")
    gen.start()
    with celery_local.local_upstream(work / "upstream") as url:
        c = celery_local.LocalCluster(work, url, models, env_overrides={
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
        })
        try:
            c.start()
            c.wait_for_dag(get_model("icon-eu", models).dag_id)
            gen.join()
            if errors:
                raise errors[0]
            c.spec = get_model("icon-eu", models)
            yield c
        finally:
            gen.join()
            c.stop()


def expected_frames(run: datetime) -> set[str]:
    product = load_catalog().product("t2m_mslp")
    return {"t2m_mslp/europe/" + product.format_filename(region="europe", model="icon-eu",
                                                         run=run, step=s) for s in STEPS}


def frames_dir(cluster, run: datetime):
    return cluster.volume_dirs["framecast-data"] / "frames" / "icon-eu" / format_run(run)


def frames_on_disk(cluster, run: datetime) -> set[str]:
    d = frames_dir(cluster, run)
    return {p.relative_to(d).as_posix() for p in d.glob("*/*/*.png")}


def metrics_rows(cluster, run: datetime) -> list[tuple]:
    import psycopg

    url = cluster.own_env()["FRAMECAST_METRICS_DB"].replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT product, region, step, try_number FROM framecast_frame_timings "
            "WHERE model = 'icon-eu' AND run = %s ORDER BY step", (run.isoformat(),)).fetchall()


def assert_each_frame_once(cluster, run: datetime) -> list:
    """Frames on disk, frame records and metrics rows: exactly the expected set, once each."""
    want = expected_frames(run)
    assert frames_on_disk(cluster, run) == want
    leftovers = [p for p in frames_dir(cluster, run).rglob("*") if p.name.startswith(".")]
    assert leftovers == []  # no temp files from an interrupted write
    records = read_records(frames_dir(cluster, run))
    assert sorted(r.step for r in records) == STEPS
    assert len({r.key for r in records}) == len(records) == len(want)
    rows = metrics_rows(cluster, run)
    assert [(p, reg, s) for p, reg, s, _ in rows] == [("t2m_mslp", "europe", s) for s in STEPS]
    return records


def test_full_run_renders_on_both_workers(cluster, celery_local):
    dag_id = cluster.spec.dag_id
    run_id = cluster.trigger(dag_id, celery_local.logical_date_for(RUN1), "e2e_full")
    assert cluster.wait_run(dag_id, run_id, timeout=600) == "success", cluster.logs_tail()

    tis = cluster.task_instances(dag_id, run_id)
    assert {t["state"] for t in tis} == {"success"}
    renders = [t for t in tis if t["task_id"] == "chunk.render"]
    assert [t["rendered_map_index"] for t in renders] == [
        "+000..+001", "+002..+003", "+004..+005"]
    assert {t["hostname"] for t in renders} == {WORKER, RENDER_WORKER}
    assert {(t["queue"], t["pool"]) for t in renders} == {
        (cluster.queue_names["render"], "framecast_render")}
    others = [t for t in tis if t["task_id"] != "chunk.render"]
    assert {t["queue"] for t in others} == {cluster.queue_names["default"]}
    assert {t["hostname"] for t in others} == {WORKER}  # the render worker takes only renders
    assert {t["pool"] for t in tis if t["task_id"] == "chunk.download"} == {"framecast_download"}

    assert_each_frame_once(cluster, RUN1)
    # least privilege, as in docker-compose: the workers that ran all of this had neither the
    # metadata database URL nor the Fernet key in their environment
    for instance in cluster.workers:
        env = cluster.proc_env[instance]  # the environment the worker process was started with
        assert not set(cluster.topology.env_not_on_workers) & set(env), instance
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"]  # what they do need
    published = cluster.volume_dirs["framecast-publish"] / "icon-eu" / format_run(RUN1)
    assert {p.relative_to(published).as_posix()
            for p in published.glob("*/*/*.png")} == expected_frames(RUN1)


def _wait_render_running_on(cluster, dag_id: str, run_id: str, host: str,
                            timeout: float = 600) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        cluster.check_alive()
        for t in cluster.task_instances(dag_id, run_id):
            if t["task_id"] == "chunk.render" and t["state"] == "running" and t["hostname"] == host:
                return t
        if cluster.run_state(dag_id, run_id) in ("success", "failed"):
            break
        time.sleep(0.3)
    raise AssertionError(f"no render task ran on {host}\n{cluster.logs_tail()}")


def test_killed_worker_mid_render_run_still_completes(cluster, celery_local):
    dag_id = cluster.spec.dag_id
    run_id = cluster.trigger(dag_id, celery_local.logical_date_for(RUN2), "e2e_kill")
    victim = _wait_render_running_on(cluster, dag_id, run_id, RENDER_WORKER)
    # chunks are mapped in step order (the label is rendered only when the task ends)
    victim_steps = STEPS[victim["map_index"] * CHUNK:(victim["map_index"] + 1) * CHUNK]
    first = victim_steps[0]
    # kill half-way through the chunk: its first frame is written, the next one is not
    first_frame = next(f for f in expected_frames(RUN2) if f.endswith(f"_{first:03d}.png"))
    end = time.monotonic() + 300
    while first_frame not in frames_on_disk(cluster, RUN2):
        assert time.monotonic() < end, cluster.logs_tail()
        time.sleep(0.2)
    tree = celery_local.process_tree(cluster.procs[RENDER_WORKER].pid)
    # the worker, its pool process (which supervises the task), the task process (own group)
    assert len(tree) >= 3
    assert len({p.pid for p in tree if os.getpgid(p.pid) != tree[0].pid}) >= 1
    killed = cluster.kill_worker(RENDER_WORKER)
    assert set(killed) >= {p.pid for p in tree}
    assert celery_local.still_running(tree) == []

    state = cluster.wait_run(dag_id, run_id, timeout=600, allow_dead=(RENDER_WORKER,))
    assert state == "success", cluster.logs_tail()

    tis = {(t["task_id"], t["map_index"]): t for t in cluster.task_instances(dag_id, run_id)}
    retried = tis[("chunk.render", victim["map_index"])]
    assert retried["state"] == "success"
    assert retried["rendered_map_index"] == (
        f"+{victim_steps[0]:03d}..+{victim_steps[-1]:03d}")
    assert retried["try_number"] == victim["try_number"] + 1
    assert retried["hostname"] == WORKER
    history = [h for h in cluster.task_history(dag_id, run_id)
               if (h["task_id"], h["map_index"]) == ("chunk.render", victim["map_index"])]
    assert [(h["try_number"], h["hostname"]) for h in history] == [
        (victim["try_number"], RENDER_WORKER)]
    assert history[0]["state"] in ("failed", "up_for_retry")

    records = assert_each_frame_once(cluster, RUN2)
    assert {r.try_number for r in records if r.step in victim_steps} == {
        retried["try_number"]}
    # One metrics row per frame after the retry, and the retried chunk's rows are the retry's
    # (a stale first-try row kept, or a second row added, fails here).
    rows = metrics_rows(cluster, RUN2)
    assert sorted(s for _, _, s, _ in rows) == STEPS
    assert {t for _, _, s, t in rows if s in victim_steps} == {retried["try_number"]}


def test_backfill_over_two_logical_dates_gives_two_separate_runs(cluster, celery_local):
    dag_id = cluster.spec.dag_id
    first, second = BACKFILL_RUNS
    # Backfill windows select runs by trigger time (run time + the model's 2 h delay).
    cluster.airflow("dags", "unpause", dag_id)
    cluster.airflow("backfill", "create", "--dag-id", dag_id,
                    "--from-date", first.isoformat(),
                    "--to-date", (second + timedelta(hours=5)).isoformat())
    end = time.monotonic() + 900
    runs: dict[datetime, tuple[str, str]] = {}
    while time.monotonic() < end:
        cluster.check_alive(allow_dead=(RENDER_WORKER,))
        rows = cluster.sql("SELECT run_id, logical_date, state FROM dag_run WHERE dag_id = %s "
                           "AND run_type = 'backfill'", dag_id)
        runs = {r[1].astimezone(UTC): (r[0], r[2]) for r in rows}
        if len(runs) == 2 and {st for _, st in runs.values()} <= {"success", "failed"}:
            break
        time.sleep(1)
    # Exactly the two cycles, with the model run time as logical date, both successful.
    assert sorted(runs) == [first, second], runs
    assert {st for _, st in runs.values()} == {"success"}, cluster.logs_tail()
    for run in (first, second):
        records = assert_each_frame_once(cluster, run)
        # Each run's frames come from its own model run: titles/valid times follow the run.
        assert {r.run for r in records} == {run.isoformat()}
        assert sorted(r.valid_time for r in records) == [
            (run + timedelta(hours=s)).isoformat() for s in STEPS]
    # Both older cycles are published beside the newer runs; `latest` stays on the newest one.
    site = cluster.volume_dirs["framecast-publish"] / "icon-eu"
    assert json.loads((site / "latest.json").read_text())["run_id"] == format_run(RUN2)
    listed = {r["run_id"] for r in json.loads((site / "runs.json").read_text())["runs"]}
    assert {format_run(r) for r in (RUN2, *BACKFILL_RUNS)} <= listed, listed
