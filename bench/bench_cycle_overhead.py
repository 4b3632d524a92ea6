"""Benchmark: render throughput of a model DAG run through the real scheduler + LocalExecutor
against ``framecast render`` on the same frames, in one run on the same data.

1. A generated ICON-EU run (DWD layout, bz2) is served by the local upstream; the ICON-EU DAG
   (products x regions x steps below) is triggered on the embedded default
   (:mod:`framecast_airflow.localstack`: api-server, scheduler, dag-processor, triggerer,
   LocalExecutor, SQLite, one task slot per core), with a cold static-map cache.
2. ``framecast render`` then renders the same frames from the files that run downloaded, with
   as many worker processes as cores and the DAG's chunk size.

Printed: the DAG's render phase (first render task start to last render task end), the CLI's
wall time, their ratio (goal: at most 1.3), the whole DAG run (trigger to success), the number
of metadata-DB errors in all logs, and the load average before and after (the machine may be
shared). ``--baseline`` adds a DAG run with the render stack not preloaded and no static-map
cache (how task processes paid their set-up before). Usage::

    .venv/bin/python bench/bench_cycle_overhead.py               # 4 products x 2 regions x 12 steps
    .venv/bin/python bench/bench_cycle_overhead.py --steps 24 --baseline
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "plugins"))

import demo  # noqa: E402 - scripts/demo.py: the demo's catalog, sample data and run

from framecast.catalog import format_run  # noqa: E402
from framecast.upstream import UpstreamServer  # noqa: E402
from framecast_airflow import localstack  # noqa: E402
from framecast_airflow.localenv import LocalAirflow  # noqa: E402

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
PRODUCTS = ["t2m_mslp", "t2m_wind10", "precip_mslp", "precip_type"]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (printed with every measurement)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def count_frames(root: Path) -> int:
    """Charts under ``root/<model>/<run>/<product>/<region>/`` (not the timing report's)."""
    return len(list((root / "icon-eu" / format_run(RUN)).glob("[!_]*/*/*.png")))


def render_spans(airflow: LocalAirflow) -> list[tuple[datetime, datetime]]:
    """(start, end) of every finished render task of the DAG (``chunk.render`` instances)."""
    return [(datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"]))
            for t in airflow.task_states(demo.DAG_ID)
            if t["task_id"].rsplit(".", 1)[-1] == "render" and t["end_date"]]


def dag_run(ws: Path, steps: list[int], *, warm: bool) -> dict:
    """One DAG run from a fresh home, data root and publish folder; timings in seconds."""
    for sub in ("airflow", "data", "publish"):
        shutil.rmtree(ws / sub, ignore_errors=True)
    airflow = LocalAirflow(ws / "airflow", extra_env=demo.demo_env(var=ws))
    airflow.migrate({"framecast_download": 4})
    extra = {} if warm else {"FRAMECAST_PREWARM": "0", "FRAMECAST_STATIC_CACHE": ""}
    with UpstreamServer(ws / "upstream" / "icon-eu") as upstream:
        run = demo.run_demo(airflow, upstream.url, RUN, var=ws, env=extra)
    spans = render_spans(airflow)
    start, end = min(s for s, _ in spans), max(e for _, e in spans)
    frames = count_frames(ws / "data" / "frames")
    errors = localstack.db_errors(airflow.home)
    return {"state": run.state, "run_s": run.seconds, "render_s": (end - start).total_seconds(),
            "tasks": len(spans), "frames": frames, "db_errors": len(errors),
            "cpu": run.component_cpu}


def cli_run(ws: Path, steps: list[int], products: list[str], regions: list[str],
            chunk_size: int) -> dict:
    """``framecast render`` on the files the DAG run downloaded (same frames, same chunks)."""
    out = ws / "cli-out"
    shutil.rmtree(out, ignore_errors=True)
    data = ws / "data" / "raw" / "icon-eu" / format_run(RUN)
    cmd = [str(ROOT / ".venv" / "bin" / "framecast"), "render", "--data", str(data),
           "--out", str(out), "--model", "icon-eu", "--product", ",".join(products),
           "--region", ",".join(regions), "--steps", f"{steps[0]}-{steps[-1]}",
           "--chunk-size", str(chunk_size), "--workers", str(localstack.slots()),
           "--no-progress"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=dict(os.environ, FRAMECAST_STATIC_CACHE=""))
    took = time.perf_counter() - t0
    return {"render_s": took, "frames": count_frames(out)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=11, help="last forecast hour (default 11)")
    ap.add_argument("--products", default=",".join(PRODUCTS))
    ap.add_argument("--regions", default=",".join(demo.DEMO_REGIONS))
    ap.add_argument("--chunk-size", type=int, default=6, help="steps per chunk (default 6, as framecast render)")
    ap.add_argument("--baseline", action="store_true",
                    help="also run the DAG without preloading and without the static-map cache")
    ap.add_argument("--workspace", type=Path, default=ROOT / "var" / "bench-cycle")
    args = ap.parse_args(argv)

    ws = args.workspace.resolve()
    steps = list(range(args.steps + 1))
    products, regions = args.products.split(","), args.regions.split(",")
    demo.write_demo_catalog(ws / "demo" / "models.yaml", steps, products, regions,
                            args.chunk_size)
    os.environ.update(demo.demo_env(var=ws))
    demo.sample_data(RUN, steps, var=ws)
    n = len(products) * len(regions) * len(steps)
    print(f"{len(products)} products x {len(regions)} regions x {len(steps)} steps = {n} frames, "
          f"chunks of {args.chunk_size}, {localstack.slots()} task slots / CLI workers; "
          f"load average before: {load_average()}", flush=True)

    rows = []
    modes = [("DAG, LocalExecutor", True)] + ([("DAG, no preload/cache", False)]
                                              if args.baseline else [])
    for label, warm in modes:
        r = dag_run(ws, steps, warm=warm)
        print(f"{label}: run {r['state']} in {r['run_s']:.1f} s; render phase {r['render_s']:.1f} s "
              f"({r['tasks']} tasks, {r['frames']} frames); DB errors in logs: {r['db_errors']}; "
              f"load {load_average()}", flush=True)
        print("  Airflow components' own CPU during the run: " + ", ".join(
            f"{k} {v:.0f} s" for k, v in r["cpu"].items()), flush=True)
        rows.append((label, r))
    cli = cli_run(ws, steps, products, regions, args.chunk_size)
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
