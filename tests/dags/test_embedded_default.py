"""The demo's path on the embedded default, for real: api-server, scheduler, dag-processor and
triggerer with the LocalExecutor on SQLite (plugins/framecast_airflow/localstack.py), the run
triggered and watched through the REST API exactly as ``make demo`` does (scripts/demo.py).

Checked against the metadata DB and the files, not against the launcher's own report: the run
succeeds and every chart is a decodable PNG; render tasks ran one at a time in the
``framecast_render`` pool, each with one render process per core (seen in ``/proc`` while they
ran, never more); and while they ran, REST calls that read and write the run (bursts of
concurrent note edits, as several UI users make) all answered, with no "database is locked" /
"Database error" / OperationalError in any component or task log.

The writes guard ``deploy/airflow/framecast_sqlite_api.py``: without it, an audit-log commit on
the api-server's event loop waits for SQLite's lock held by a request whose own commit needs
that loop, and the write fails after the 60 s busy timeout. Checked by hand: with the guard's
install line removed from ``airflow_local_settings.py`` this test failed (a note edit during
the run: HTTP 500 "Database error").
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from PIL import Image

from framecast.catalog import format_run
from framecast.upstream import UpstreamServer

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
PRODUCTS = ["t2m_mslp", "precip_mslp"]
REGIONS = ["europe", "germany"]
STEPS = [0, 1, 2, 3, 4, 5]


@pytest.mark.slow
def test_demo_run_on_the_real_scheduler_uses_both_slots_without_db_errors(tmp_path):
    import demo

    from framecast_airflow import localstack
    from framecast_airflow.localenv import LocalAirflow

    demo.write_demo_catalog(tmp_path / "demo" / "models.yaml", STEPS, PRODUCTS, REGIONS,
                            chunk_size=2)
    upstream_root = demo.sample_data(RUN, STEPS, var=tmp_path)
    airflow = LocalAirflow(tmp_path / "airflow", extra_env=demo.demo_env(var=tmp_path))
    airflow.migrate({"framecast_download": 4})

    calls: list[str] = []
    listeners: list[tuple[str, str, int]] = []
    slowest: list[float] = [0.0]
    notes: list[str] = []
    loop_stalls: list[float] = []

    def during_run(stack: localstack.RunningStack) -> None:
        """What operators' UIs do meanwhile: list the run and its task instances, and edit the
        run's note, four users at once (each edit is a write plus an audit-log write)."""
        components.update(p.pid for p in stack.procs.values())
        t0 = time.monotonic()
        (run,) = stack.api("GET", f"/dags/{demo.DAG_ID}/dagRuns", timeout=300)["dag_runs"]
        path = f"/dags/{demo.DAG_ID}/dagRuns/{run['dag_run_id']}"
        if not calls:
            loop_stalls.append(_edit_while_locked(stack, airflow.db_path, path))
        tis = stack.api("GET", f"{path}/taskInstances?limit=100", timeout=300)["task_instances"]
        # The first edit alone: concurrent first notes of a run race to insert the same row
        # (a unique-key error on any database); later edits update it.
        stack.api("PATCH", f"{path}?update_mask=note", {"note": f"seen {len(calls)}"},
                  timeout=300)
        texts = [f"checked {len(calls)}.{i}" for i in range(4)]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(
                lambda t: stack.api("PATCH", f"{path}?update_mask=note", {"note": t},
                                    timeout=300), texts))
        assert sorted(a["note"] for a in answers) == sorted(texts)
        notes.extend(texts)
        slowest[0] = max(slowest[0], time.monotonic() - t0)
        running = sum(t["state"] == "running" and t["task_id"] == "chunk.render" for t in tis)
        calls.append(f"{running} render tasks running")
        listeners.extend(stack.listening())

    workers_seen: list[int] = []
    components: set[int] = set()  # the stack's processes, filled in at the first poll
    done = threading.Event()

    def count_render_workers() -> None:
        """Render worker processes (started by a render task of this stack) alive, sampled.

        Found by name and ancestry, not by environment: Airflow retitles task processes
        (setproctitle), which overwrites what /proc/PID/environ shows."""
        while not done.wait(0.1):
            workers_seen.append(sum(_descends_from(p, components)
                                    for p in _render_workers()))

    sampler = threading.Thread(target=count_render_workers, daemon=True)
    sampler.start()
    try:
        with UpstreamServer(upstream_root) as upstream:
            state = demo.run_demo(airflow, upstream.url, RUN, var=tmp_path,
                                  on_poll=during_run).state
    finally:
        done.set()
        sampler.join(5)

    print(f"slowest round of REST calls during the run: {slowest[0]:.1f} s "
          f"({len(notes)} note edits); slowest read while a write waited for the lock: "
          f"{loop_stalls}; listening: {sorted(set(listeners))}")
    assert localstack.db_errors(airflow.home) == []
    assert slowest[0] < localstack.SQLITE_BUSY_TIMEOUT  # no call waited out a lock
    # While a note edit waited for the lock, the api-server kept answering: its event loop
    # was free (without the guard it stalls for the whole hold, here 5 s; the margin is for
    # a loaded machine).
    assert loop_stalls and loop_stalls[0] < 2.5, loop_stalls
    # the embedded default listens on loopback only (the api-server; no log servers)
    assert listeners and {c for c, _, _ in listeners} == {"api-server"}, listeners
    assert all(localstack.is_loopback(a) for _, a, _ in listeners), listeners
    assert state == "success", (airflow.home / "scheduler.log").read_text()[-3000:]
    assert any(c.startswith("1 ") for c in calls), calls  # calls made while rendering

    base = tmp_path / "data" / "frames" / "icon-eu" / format_run(RUN)
    frames = sorted(f for p in PRODUCTS for f in (base / p).rglob("*.png"))
    assert len(frames) == len(PRODUCTS) * len(REGIONS) * len(STEPS)
    for f in frames:
        with Image.open(f) as im:
            im.load()
            assert im.size == (1000, 800)

    renders = [t for t in airflow.task_states(demo.DAG_ID) if t["task_id"] == "chunk.render"]
    assert len(renders) == len(STEPS) // 2  # one render task per chunk of 2 steps
    assert all(t["state"] == "success" for t in renders)
    spans = [(datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"]))
             for t in renders]
    overlap = max(sum(s <= start < e for s, e in spans) for start, _ in spans)
    assert overlap == 1  # the render pool's one slot: one chunk at a time ...
    assert {t["pool"] for t in renders} == {localstack.RENDER_POOL}
    # ... on every core: as many render processes as slots at once, never more
    assert max(workers_seen) == localstack.slots() == 2, workers_seen


def test_audit_log_guard_only_in_a_sqlite_api_server():
    """The off-loop audit log is wired into the routes of a SQLite api-server (installed by
    ``airflow_local_settings`` before any route module captures ``action_logging``) and
    nowhere else: a PostgreSQL deployment and the other components keep Airflow's own."""
    import subprocess

    code = ("import sys; sys.argv = ['airflow', sys.argv[1]]; import airflow; "
            "from airflow.api_fastapi.core_api.routes.public import dag_run; "
            "import airflow.api_fastapi.logging.decorators as d; "
            "print(getattr(d.action_logging, 'framecast_off_loop', False))")
    deploy = str(ROOT / "deploy" / "airflow")
    seen = {}
    for component, conn in (("api-server", "sqlite:////tmp/x.db"),
                            ("api-server", "postgresql+psycopg2://u:p@127.0.0.1/x"),
                            ("scheduler", "sqlite:////tmp/x.db")):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(PYTHONPATH=deploy, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=conn,
                   FRAMECAST_PREWARM="0")
        out = subprocess.run([sys.executable, "-c", code, component], env=env,
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        seen[(component, conn.split(":")[0])] = out.stdout.strip().splitlines()[-1]
    assert seen == {("api-server", "sqlite"): "True", ("api-server", "postgresql+psycopg2"): "False",
                    ("scheduler", "sqlite"): "False"}


def _render_workers() -> list[int]:
    """Processes named like a render task's worker (``/proc/PID/comm``, as ps shows)."""
    from pathlib import Path

    from framecast.render.runner import WORKER_NAME

    out = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == WORKER_NAME:
                out.append(int(comm.parent.name))
        except OSError:
            continue
    return out


def _descends_from(pid: int, roots: set[int]) -> bool:
    """Whether ``pid`` is a descendant of one of ``roots`` (walking /proc/PID/stat parents)."""
    from framecast_airflow.localstack import parent_pid

    while pid > 1:
        pid = parent_pid(pid)
        if pid in roots:
            return True
    return False


def _edit_while_locked(stack, db_path, path: str, hold: float = 5.0) -> float:
    """Hold SQLite's write lock from outside for ``hold`` seconds, edit the run's note meanwhile,
    and return the slowest answer of a cheap read (the version) during the hold.

    Deterministic form of the failure seen in runs: the audit-log commit of a write request
    waits for the lock; on the event loop it blocks every other request of the api-server,
    including the task call that holds the lock and needs the loop to commit (a deadlock
    until the busy timeout). The edit itself must succeed once the lock is released."""
    import sqlite3
    import threading

    locked, release = threading.Event(), threading.Event()

    def holder() -> None:
        db = sqlite3.connect(db_path, timeout=60, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")  # the write lock, as a writer in another process holds it
        locked.set()
        release.wait(hold)
        db.execute("COMMIT")
        db.close()

    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(holder)
        locked.wait(30)
        edit = pool.submit(stack.api, "PATCH", f"{path}?update_mask=note",
                           {"note": "edited while locked"}, 120)
        time.sleep(0.3)  # the edit is now waiting for the lock
        worst = 0.0
        end = time.monotonic() + hold - 0.8
        while time.monotonic() < end:
            t = time.monotonic()
            stack.api("GET", "/version", timeout=120)
            worst = max(worst, time.monotonic() - t)
        release.set()
        held.result()
        assert edit.result()["note"] == "edited while locked"
    return worst


def test_db_errors_are_read_from_component_and_task_logs(tmp_path):
    """What the demo, this module and the cycle benchmark (both executors) count as metadata-DB
    failures: matching lines of the component logs and of every task log, and of any log
    files the caller names (a Celery cluster keeps its logs elsewhere)."""
    from framecast_airflow import localstack

    home = tmp_path / "airflow"
    task_logs = home / "logs" / "dag_id=d" / "run_id=r" / "task_id=t"
    task_logs.mkdir(parents=True)
    (home / "scheduler.log").write_text("started\nsqlite3.OperationalError: database is locked\n")
    (task_logs / "attempt=1.log").write_text('{"event": "Database error"}\n{"event": "done"}\n')
    (home / "worker-1.log").write_text("psycopg2.OperationalError: server closed\n")
    assert [e.split(":")[0] for e in localstack.db_errors(home)] == [
        "scheduler.log", "attempt=1.log"]  # worker-1.log is no component of the embedded default
    assert localstack.log_db_errors([home / "worker-1.log", home / "missing.log"]) == [
        "worker-1.log: psycopg2.OperationalError: server closed"]
