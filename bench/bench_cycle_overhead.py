"""Benchmark: a model DAG run's render throughput (LocalExecutor, CeleryExecutor) vs framecast render.

The DAG runs through the real scheduler; ``framecast render`` renders the same frames after.

1. A generated ICON-EU run (DWD layout, bz2) is served by the local upstream; the ICON-EU DAG
   (products x regions x steps below, the same catalog file for every executor) is triggered
   with a cold static-map cache on

   - ``local``: the embedded default (:mod:`framecast_airflow.localstack`: api-server,
     scheduler, dag-processor, triggerer, LocalExecutor, SQLite, one task slot per core; one
     render task at a time on every core);
   - ``celery``: the production topology on this machine (scripts/celery_local.py's
     ``LocalCluster``: the same four components, a ``worker`` and a ``worker-render`` Celery
     worker, fresh PostgreSQL databases, Redis). Its Celery slots are sized to the cores in
     total (the topology's default, 2 + 1 slots with a ``framecast_render`` pool of 4, runs up
     to three one-core render tasks at once), the ``framecast_render`` pool to the cores (as
     docs/deployment.md says), one render process per task; the output says what it set.

2. ``framecast render`` then renders the same frames from the files a DAG run downloaded, once,
   with as many worker processes as cores and the DAG's chunk size.

Printed per executor: the run state, the DAG's render phase (first render task start to last
render task end), tasks, frames, the metadata-DB errors in all component and task logs, the
whole run (trigger to success) and the Airflow components' own CPU; then the CLI's wall time,
each ratio render phase / CLI (goal: at most 1.3), and the load average before and after (the
machine may be shared). ``--baseline`` adds a LocalExecutor run with the render stack not
preloaded and no static-map cache (how task processes paid their set-up before). SIGTERM
unwinds like Ctrl-C: every component stops and the Celery run's databases are dropped. Usage::

    .venv/bin/python bench/bench_cycle_overhead.py               # 4 products x 2 regions x 12 steps
    .venv/bin/python bench/bench_cycle_overhead.py --executor celery
    .venv/bin/python bench/bench_cycle_overhead.py --steps 24 --executor local --baseline
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "plugins"))

import celery_local  # noqa: E402 - scripts/celery_local.py: the production topology, locally
import demo  # noqa: E402 - scripts/demo.py: the demo's catalog, sample data and run

from framecast.catalog import format_run  # noqa: E402
from framecast.upstream import UpstreamServer  # noqa: E402
from framecast_airflow import localstack  # noqa: E402
from framecast_airflow.localenv import LocalAirflow  # noqa: E402

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
PRODUCTS = ["t2m_mslp", "t2m_wind10", "precip_mslp", "precip_type"]
#: Seconds the Celery run may take from the trigger (the LocalExecutor's wait allows an hour).
CELERY_RUN_TIMEOUT = 3600


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (printed with every measurement)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def stop_on_sigterm() -> None:
    """A stopped benchmark (SIGTERM, e.g. from ``timeout``) unwinds like Ctrl-C, so the stack or
    cluster it started is stopped (and its databases dropped) instead of left running; a
    second TERM is ignored so that it cannot cut that clean-up short."""
    def stop(*_: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop)


def count_frames(root: Path) -> int:
    """Charts under ``root/<model>/<run>/<product>/<region>/`` (not the timing report's)."""
    return len(list((root / "icon-eu" / format_run(RUN)).glob("[!_]*/*/*.png")))


def as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def spans_of(tis: Iterable[dict]) -> list[tuple[datetime, datetime]]:
    """(start, end) of every finished render task (``chunk.render``) among ``tis`` (SQLite
    gives ISO strings, PostgreSQL datetimes)."""
    return [(as_datetime(t["start_date"]), as_datetime(t["end_date"])) for t in tis
            if t["task_id"].rsplit(".", 1)[-1] == "render" and t["end_date"]]


def render_spans(airflow: LocalAirflow) -> list[tuple[datetime, datetime]]:
    """(start, end) of every finished render task of the DAG (``chunk.render`` instances)."""
    return spans_of(airflow.task_states(demo.DAG_ID))


def render_phase(spans: list[tuple[datetime, datetime]]) -> float:
    """Seconds from the first render task's start to the last one's end (NaN without any:
    the run failed before rendering)."""
    if not spans:
        return float("nan")
    return (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds()


def sample_data(steps: list[int], ws: Path) -> None:
    """The demo's sample run (:func:`demo.sample_data`), generated in a child process: ecCodes
    loaded here would crash this process at exit once psycopg (the Celery run's PostgreSQL)
    is loaded too."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(demo.sample_data, RUN, steps, ws).result()


def local_run(ws: Path, *, warm: bool) -> dict:
    """One DAG run on the embedded default from a fresh home, data root and publish folder;
    timings in seconds."""
    for sub in ("airflow", "data", "publish"):
        shutil.rmtree(ws / sub, ignore_errors=True)
    airflow = LocalAirflow(ws / "airflow", extra_env=demo.demo_env(var=ws))
    airflow.migrate({"framecast_download": 4})
    extra = {} if warm else {"FRAMECAST_PREWARM": "0", "FRAMECAST_STATIC_CACHE": ""}
    with UpstreamServer(ws / "upstream" / "icon-eu") as upstream:
        run = demo.run_demo(airflow, upstream.url, RUN, var=ws, env=extra)
    spans = render_spans(airflow)
    return {"state": run.state, "run_s": run.seconds, "render_s": render_phase(spans),
            "tasks": len(spans), "frames": count_frames(ws / "data" / "frames"),
            "db_errors": len(localstack.db_errors(airflow.home)), "cpu": run.component_cpu,
            "raw": ws / "data" / "raw"}


def celery_sizing(cores: int) -> tuple[dict[str, int], int]:
    """Celery slots per worker component (``cores`` in total, both workers at least one) and
    ``framecast_render`` pool slots (the render workers' cores: every core of this machine)."""
    render = max(1, cores // 2)
    return {"worker": max(1, cores - render), "worker-render": render}, cores


def celery_run(ws: Path) -> dict:
    """One DAG run on the CeleryExecutor (:class:`celery_local.LocalCluster`, sized to the
    cores by :func:`celery_sizing`) from a fresh work folder, on the same catalog, sample data
    and logical date as :func:`local_run`; stops the cluster and drops its databases after."""
    work = ws / "celery"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cores = localstack.slots()
    concurrency, render_slots = celery_sizing(cores)
    topology = celery_local.load_topology()
    default = next(f for f in dataclasses.fields(celery_local.LocalCluster)
                   if f.name == "worker_concurrency").default_factory()
    pools = topology.pools()
    shipped = pools[localstack.RENDER_POOL]["slots"]
    pools[localstack.RENDER_POOL]["slots"] = render_slots
    pools_file = work / "pools.json"
    pools_file.write_text(json.dumps(pools, indent=2))
    render_workers = [c.name for c in topology.components.values()
                      if c.is_worker and "render" in c.queues]
    before = min(shipped, sum(default.get(w, 1) for w in render_workers))
    sizing = (f"Celery slots {' + '.join(f'{w} {n}' for w, n in concurrency.items())} = "
              f"{sum(concurrency.values())} cores, framecast_render pool {render_slots}, 1 render "
              f"process per task; set for this benchmark, the topology's "
              f"{' + '.join(str(default.get(w, 1)) for w in concurrency)} slots with the "
              f"shipped pool of {shipped} would run {before} render tasks on {cores} cores")
    with celery_local.local_upstream(ws / "upstream" / "icon-eu") as url:
        cluster = celery_local.LocalCluster(
            work, url, ws / "demo" / "models.yaml", worker_concurrency=concurrency,
            topology=dataclasses.replace(topology, pools_file=pools_file))
        print(f"starting the Celery topology: database {cluster.airflow_db}, api-server "
              f"{cluster.api_url}, workers {', '.join(cluster.workers)}", flush=True)
        with cluster:
            cluster.wait_for_dag(demo.DAG_ID)
            run_id = cluster.trigger(demo.DAG_ID, RUN, f"bench__{format_run(RUN)}")
            print(f"triggered {demo.DAG_ID} run {run_id} on the CeleryExecutor ...", flush=True)
            state = cluster.wait_run(demo.DAG_ID, run_id, timeout=CELERY_RUN_TIMEOUT)
            cpu = localstack.own_cpu_seconds(cluster.procs)
            tis = cluster.task_instances(demo.DAG_ID, run_id)
            [(queued, ended)] = cluster.sql(
                "SELECT queued_at, end_date FROM dag_run WHERE dag_id = %s AND run_id = %s",
                demo.DAG_ID, run_id)
            errors = localstack.log_db_errors(
                [*sorted(cluster.logs_dir.glob("*.log")),
                 *sorted(cluster.volume_dirs["airflow-logs"].rglob("*.log"))])
            if state != "success":
                print(cluster.logs_tail(), file=sys.stderr)
    data = cluster.volume_dirs["framecast-data"]
    spans = spans_of(tis)
    hosts = sorted({t["hostname"] for t in tis
                    if t["task_id"].rsplit(".", 1)[-1] == "render" and t["hostname"]})
    return {"state": state, "run_s": (ended - queued).total_seconds(),
            "render_s": render_phase(spans), "tasks": len(spans),
            "frames": count_frames(data / "frames"), "db_errors": len(errors), "cpu": cpu,
            "raw": data / "raw", "sizing": sizing, "hosts": hosts}


def cli_run(ws: Path, raw: Path, steps: list[int], products: list[str], regions: list[str],
            chunk_size: int) -> dict:
    """``framecast render`` on the files a DAG run downloaded under ``raw`` (same frames, same
    chunks)."""
    out = ws / "cli-out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [str(Path(sys.executable).with_name("framecast")), "render",
           "--data", str(raw / "icon-eu" / format_run(RUN)),
           "--out", str(out), "--model", "icon-eu", "--product", ",".join(products),
           "--region", ",".join(regions), "--steps", f"{steps[0]}-{steps[-1]}",
           "--chunk-size", str(chunk_size), "--workers", str(localstack.slots()),
           "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=dict(os.environ, FRAMECAST_STATIC_CACHE=""))
    took = time.perf_counter() - t0
    return {"render_s": took, "frames": count_frames(out)}


def report(label: str, r: dict) -> None:
    """The same lines for every executor: run, render phase, tasks, frames, DB errors, CPU."""
    sizing = f" [{r['sizing']}]" if r.get("sizing") else ""
    print(f"{label}{sizing}: run {r['state']} in {r['run_s']:.1f} s; render phase "
          f"{r['render_s']:.1f} s ({r['tasks']} tasks, {r['frames']} frames); DB errors in "
          f"logs: {r['db_errors']}; load {load_average()}", flush=True)
    if r.get("hosts"):
        print(f"  render tasks ran on: {', '.join(r['hosts'])}", flush=True)
    print("  Airflow components' own CPU during the run: " + ", ".join(
        f"{k} {v:.0f} s" for k, v in r["cpu"].items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    stop_on_sigterm()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=11, help="last forecast hour (default 11)")
    ap.add_argument("--products", default=",".join(PRODUCTS))
    ap.add_argument("--regions", default=",".join(demo.DEMO_REGIONS))
    ap.add_argument("--chunk-size", type=int, default=6, help="steps per chunk (default 6, as framecast render)")
    ap.add_argument("--executor", choices=("local", "celery", "both"), default="both",
                    help="the embedded default (LocalExecutor), the Celery topology on the local "
                         "PostgreSQL and Redis, or both, one after the other (default)")
    ap.add_argument("--baseline", action="store_true",
                    help="also run the DAG on the LocalExecutor without preloading and without "
                         "the static-map cache")
    ap.add_argument("--workspace", type=Path, default=ROOT / "var" / "bench-cycle")
    args = ap.parse_args(argv)

    ws = args.workspace.resolve()
    steps = list(range(args.steps + 1))
    products, regions = args.products.split(","), args.regions.split(",")
    demo.write_demo_catalog(ws / "demo" / "models.yaml", steps, products, regions,
                            args.chunk_size)
    os.environ.update(demo.demo_env(var=ws))
    sample_data(steps, ws)
    n = len(products) * len(regions) * len(steps)
    print(f"{len(products)} products x {len(regions)} regions x {len(steps)} steps = {n} frames, "
          f"chunks of {args.chunk_size}, {localstack.slots()} task slots / CLI workers; "
          f"load average before: {load_average()}", flush=True)

    modes = []
    if args.executor in ("local", "both"):
        modes.append(("DAG, LocalExecutor", lambda: local_run(ws, warm=True)))
        if args.baseline:
            modes.append(("DAG, no preload/cache", lambda: local_run(ws, warm=False)))
    if args.executor in ("celery", "both"):
        modes.append(("DAG, CeleryExecutor", lambda: celery_run(ws)))
    rows = []
    for label, run in modes:
        r = run()
        report(label, r)
        rows.append((label, r))
    cli = cli_run(ws, rows[0][1]["raw"], steps, products, regions, args.chunk_size)
    print(f"framecast render: {cli['render_s']:.1f} s ({cli['frames']} frames); load {load_average()}",
          flush=True)
    for label, r in rows:
        print(f"ratio {label} render phase / framecast render: "
              f"{r['render_s'] / cli['render_s']:.2f} (goal <= 1.3)")
    ok = all(r["state"] == "success" and r["frames"] == n and r["db_errors"] == 0
             for _, r in rows) and cli["frames"] == n
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
