"""Benchmark: a streaming ICON-EU cycle against waiting for the whole run, same data, one run.

Both shapes run the ICON-EU DAG of the shipped DAG file on the embedded default
(:mod:`framecast_airflow.localstack`: api-server, scheduler, dag-processor, triggerer, the
LocalExecutor on SQLite, one task slot per core), each from a fresh Airflow home, data root
and publish folder; the static-map cache is the one a site has after its first cycle
(``--static-maps warm``, built before the runs and not timed) or empty (``cold``). The local
upstream serves one generated run in DWD's layout (``.grib2.bz2``) and releases its files on the ICON-EU arrival table of
``config/arrival.yaml`` sped up by ``--speedup`` (step 0 when the DAG run is triggered).

* **streaming**: every chunk of ``chunk_size`` steps waits for its own files, then is
  downloaded, rendered and published while later steps are still upstream.
* **wait for everything** (``--wait-shape gate``, the default): the same DAG and chunks, but
  nothing is upstream until the run's last file is: every chunk waits for the whole run, then
  all of them download, render and publish on every slot, as the DAG that waited for the last
  step did (its renders ran in parallel too). A DAG that waits for the last file does nothing
  before it, so the benchmark does not sit through the arrival span: the whole run is released
  when the DAG run starts, and the streaming schedule is shifted to end at that instant (the
  release times latency is counted from). ``--wait-shape one-chunk`` runs the DAG with one chunk
  holding every step instead (the factory allows it; then one task renders the whole run).

Printed per shape: from the last upstream file's release to the run's manifest ``complete`` on
the publish folder (goal <= 90 s for streaming), the median over chunks of a chunk's last file
released -> its charts published (the latency records; goal <= 60 s), the mean arrival interval
per step against the render time per step (time a render task was running / steps: steps should arrive at least
as fast as they render), metadata-DB errors, listening sockets (loopback only) and the load
average before and after (the machine may be shared). Usage::

    .venv/bin/python bench/bench_cycle.py      # shipped set: 33 products x 2 regions x 93 steps
    .venv/bin/python bench/bench_cycle.py --products t2m_mslp,precip_mslp --regions europe \\
        --last-step 11 --chunk-size 4 --speedup 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for _dir in ("bench", "scripts", "plugins"):
    sys.path.insert(0, str(ROOT / _dir))

import demo  # noqa: E402 - scripts/demo.py: the demo's catalog, sample data and run
from bench_cycle_overhead import (  # noqa: E402 - the DAG-run benchmark's helpers
    RUN,
    as_datetime,
    count_frames,
    load_average,
    spans_of,
    stop_on_sigterm,
)

from framecast.arrival import load_arrival  # noqa: E402
from framecast.catalog import (  # noqa: E402
    DEFAULT_MODELS_FILE,
    format_run,
    get_model,
    needed_variables,
    run_files,
)
from framecast.metrics.latency import read_latency  # noqa: E402
from framecast.records import run_dir  # noqa: E402
from framecast.upstream import UpstreamServer  # noqa: E402
from framecast_airflow import localstack  # noqa: E402
from framecast_airflow.localenv import LocalAirflow  # noqa: E402

SHAPES = ("streaming", "wait for everything")
WARM_MAPS = "static-maps-warm"
#: Seconds from now at which the run is first scheduled, i.e. not before the DAG run starts.
NOT_YET_S = 10**7


class ManifestWatch(threading.Thread):
    """Reads the run's manifest on the publish folder as a client would, noting when it first
    says ``complete`` (or ``incomplete``)."""

    def __init__(self, manifest: Path) -> None:
        super().__init__(daemon=True)
        self.manifest = manifest
        self.done = threading.Event()
        self.final_at: float | None = None
        self.status = ""

    def run(self) -> None:
        last = None
        while not self.done.is_set() and self.final_at is None:
            try:
                st = self.manifest.stat()
                # parsed only when it changed: a whole run's manifest is megabytes of JSON,
                # and this thread must not take CPU from the run it measures
                if (st.st_mtime_ns, st.st_size, st.st_ino) != last:
                    last = (st.st_mtime_ns, st.st_size, st.st_ino)
                    status = json.loads(self.manifest.read_bytes()).get("status", "")
                    if status in ("complete", "incomplete"):
                        self.final_at, self.status = time.time(), status
            except (FileNotFoundError, json.JSONDecodeError):
                last = None
            time.sleep(0.1)


@dataclass
class Release:
    """When the benchmark makes the run's files visible, and when they nominally arrive."""

    upstream: UpstreamServer
    models: Path
    speedup: float
    gate: bool
    nominal: dict[str, float] | None = None  # url path -> nominal release instant

    def start(self, _stack=None) -> None:
        """At the first poll of the DAG run (just after its trigger): release the run."""
        if self.nominal is not None:
            return
        now = time.time()
        schedule = self.upstream.replay_run("icon-eu", format_run(RUN), speedup=self.speedup,
                                            start=now, models_file=self.models)
        if self.gate:  # all at once, now; nominally the last file arrives now
            shift = now - max(schedule.values())
            self.upstream.release({k: now for k in schedule})
            schedule = {k: v + shift for k, v in schedule.items()}
        self.nominal = schedule


def step_releases(models: Path, nominal: dict[str, float]) -> dict[int, float]:
    """Per step: when its last file was (nominally) released."""
    spec = get_model("icon-eu", models)
    out: dict[int, float] = {}
    for f in run_files(spec, RUN, needed_variables(spec)):
        at = max(v for k, v in nominal.items() if k.endswith(f.url_path))
        out[f.step] = max(out.get(f.step, 0.0), at)
    return out


def _warm_map(pair: tuple[str, str]) -> None:
    from framecast.products import load_catalog
    from framecast.render.frame import CONTOUR_FACTOR, MapFrame

    catalog = load_catalog()
    frame = MapFrame(catalog.product(pair[0]), catalog.region(pair[1]))
    for factor in (1, CONTOUR_FACTOR):
        frame._grid_points(factor)


def warm_static_maps(folder: Path, products: list[str], regions: list[str]) -> float:
    """The static-map cache a site has after its first cycle (map layers and pixel positions
    of every product/region), built into ``folder`` before the runs and not timed; seconds."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    before = os.environ.get("FRAMECAST_STATIC_CACHE")
    os.environ["FRAMECAST_STATIC_CACHE"] = str(folder)  # the forked workers write there
    t0 = time.perf_counter()
    try:
        with ProcessPoolExecutor(localstack.slots(), mp_context=mp.get_context("fork")) as pool:
            list(pool.map(_warm_map, [(p, r) for p in products for r in regions]))
    finally:
        if before is None:
            os.environ.pop("FRAMECAST_STATIC_CACHE", None)
        else:
            os.environ["FRAMECAST_STATIC_CACHE"] = before
    return time.perf_counter() - t0


def shape_dir(ws: Path, shape: str) -> Path:
    """Where one shape's Airflow home, data root and publish folder live: kept after the run,
    so its task logs can be read when it went wrong."""
    return ws / "runs" / shape.replace(" ", "-")


def shape_run(ws: Path, args, steps: list[int], shape: str) -> dict:
    """One DAG run of ``shape`` from a fresh home, data root and publish folder (and the
    static-map cache of ``--static-maps``); the upstream (``ws/upstream``) is shared."""
    upstream_dir = ws / "upstream" / "icon-eu"
    ws = shape_dir(ws, shape)
    shutil.rmtree(ws, ignore_errors=True)
    ws.mkdir(parents=True)
    if args.static_maps == "warm":
        shutil.copytree(ws.parent.parent / WARM_MAPS, ws / "data" / "cache" / "static-maps")
    gate = shape != "streaming"
    chunk = len(steps) if gate and args.wait_shape == "one-chunk" else args.chunk_size
    models = ws / "demo" / "models.yaml"
    span = (load_arrival("icon-eu").offset(steps[-1])
            - load_arrival("icon-eu").offset(steps[0])).total_seconds() / args.speedup
    demo.write_demo_catalog(models, steps, args.products, args.regions, chunk, sensor={
        "mode": "last_step", "poke_interval": args.poke_interval, "timeout": span + 1800})
    if any(p.endswith("_anomaly") for p in args.products):
        demo.sample_climatology(ws)
    airflow = LocalAirflow(ws / "airflow", extra_env=demo.demo_env(var=ws))
    airflow.migrate({"framecast_download": 4})
    watch = ManifestWatch(ws / "publish" / "icon-eu" / format_run(RUN) / "manifest.json")
    listening: set[tuple[str, str, int]] = set()
    sessions: set[int] = set()
    load_before = load_average()
    with UpstreamServer(upstream_dir) as upstream:
        release = Release(upstream, models, args.speedup, gate)
        upstream.replay_run("icon-eu", format_run(RUN), speedup=1.0, start=time.time() + NOT_YET_S,
                            models_file=models)  # nothing upstream before the trigger

        def on_poll(stack: localstack.RunningStack) -> None:
            release.start()
            listening.update(stack.listening())
            sessions.update(stack.sessions())

        watch.start()
        try:
            run = demo.run_demo(airflow, upstream.url, RUN, var=ws, on_poll=on_poll)
        finally:
            watch.done.set()
            watch.join(timeout=5)
    left = localstack.processes_of(airflow.home, sessions=sessions)
    if release.nominal is None:
        raise SystemExit(f"{shape}: the DAG run ended before the benchmark released the run")
    released = step_releases(models, release.nominal)
    last = max(released.values())
    rows = read_latency(run_dir(ws / "data" / "frames", "icon-eu", RUN))
    chunks: dict[str, tuple[list[int], float]] = {}
    for r in rows:
        chunks.setdefault(r.chunk, ([], r.published_at))[0].append(r.step)
    chunk_latency = [published - max(released[s] for s in st)
                     for st, published in chunks.values()]
    tis = airflow.task_states(demo.DAG_ID)
    render_busy_s = busy_seconds(spans_of(tis))
    return {
        "home": str(ws), "tasks": task_timing(tis), "not_done": not_done(tis),
        "component_cpu": run.component_cpu,
        "state": run.state, "run_s": run.seconds, "status": watch.status,
        "last_to_complete_s": None if watch.final_at is None else watch.final_at - last,
        "chunk_median_s": statistics.median(chunk_latency) if chunk_latency else None,
        "chunk_max_s": max(chunk_latency) if chunk_latency else None,
        "chunks": len(chunks), "frames": count_frames(ws / "data" / "frames"),
        "render_s_per_step": render_busy_s / len(steps),
        "arrival_s_per_step": span / max(1, len(steps) - 1),
        "arrival_by_spacing": arrival_by_spacing(steps, args.speedup),
        "db_errors": len(localstack.db_errors(airflow.home)),
        "exposed": sorted(x for x in listening if not localstack.is_loopback(x[1])),
        "listening": sorted(listening), "left": left,
        "load_before": load_before, "load_after": load_average(),
    }


def task_timing(tis: list[dict]) -> dict[str, dict[str, float]]:
    """Per task (chunk.wait, chunk.download, ..., publish): mean seconds a finished instance
    waited from the end of the chunk's previous task to its start (slots, pools, scheduler;
    NaN for tasks without one), and mean seconds it ran. Where the time of a chunk went."""
    ends: dict[tuple[int, str], datetime] = {}
    for t in tis:
        if t["end_date"]:
            ends[(t["map_index"], t["task_id"])] = as_datetime(t["end_date"])
    before = {"chunk.download": "chunk.wait", "chunk.render": "chunk.download",
              "chunk.publish": "chunk.render"}
    out: dict[str, dict[str, list[float]]] = {}
    for t in tis:
        if not (t["start_date"] and t["end_date"]) or t["state"] != "success":
            continue
        kind = t["task_id"]
        row = out.setdefault(kind, {"waited": [], "ran": []})
        start, end = as_datetime(t["start_date"]), as_datetime(t["end_date"])
        row["ran"].append((end - start).total_seconds())
        ready = ends.get((t["map_index"], before.get(kind, "")))
        if ready is not None:
            row["waited"].append((start - ready).total_seconds())
    return {k: {"n": len(v["ran"]), "ran": statistics.mean(v["ran"]),
                "waited": statistics.mean(v["waited"]) if v["waited"] else float("nan")}
            for k, v in sorted(out.items())}


def not_done(tis: list[dict]) -> list[str]:
    """Task instances that did not succeed (``task[label]: state``): why a run is incomplete."""
    return [f"{t['task_id']}[{t['rendered_map_index'] or t['map_index']}]: {t['state']}"
            for t in tis if t["state"] != "success"]


def arrival_by_spacing(steps: list[int], speedup: float) -> dict[int, float]:
    """Mean release interval between consecutive steps, by their spacing in hours (ICON-EU:
    hourly steps to +78 arrive faster than the 3-hourly ones after)."""
    table = load_arrival("icon-eu")
    gaps: dict[int, list[float]] = {}
    for a, b in zip(steps, steps[1:], strict=False):
        gaps.setdefault(b - a, []).append(
            (table.offset(b) - table.offset(a)).total_seconds() / speedup)
    return {h: statistics.mean(v) for h, v in sorted(gaps.items())}


def busy_seconds(spans: list) -> float:
    """Wall time during which at least one of ``spans`` ((start, end) datetimes) was running:
    render tasks use every core (one at a time) or one core each (several at once), so the
    union, not the sum, is the time the machine spent rendering."""
    total, end_seen = 0.0, None
    for start, end in sorted(spans):
        if end_seen is None or start > end_seen:
            total += (end - start).total_seconds()
            end_seen = end
        elif end > end_seen:
            total += (end - end_seen).total_seconds()
            end_seen = end
    return total


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def main(argv: list[str] | None = None) -> int:
    demo._stop_on_signals()  # SIGTERM/SIGHUP stop the components like Ctrl-C
    shipped = get_model("icon-eu", DEFAULT_MODELS_FILE)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", default=",".join(shipped.products),
                    help="comma-separated (default: the shipped ICON-EU product set)")
    ap.add_argument("--regions", default=",".join(shipped.regions))
    ap.add_argument("--last-step", type=int, default=shipped.steps[-1],
                    help=f"keep the shipped steps up to this hour (default {shipped.steps[-1]})")
    ap.add_argument("--chunk-size", type=int, default=shipped.chunk_size,
                    help=f"steps per chunk (default {shipped.chunk_size}, as shipped)")
    ap.add_argument("--speedup", type=float, default=3.0,
                    help="arrival table divided by this (default 3: ICON-EU's hourly steps "
                         "every 11.5 s, about what a step of the shipped set takes to download "
                         "and render on 2 cores; the output says whether steps arrived at least "
                         "as fast as they rendered)")
    ap.add_argument("--poke-interval", type=float, default=5.0,
                    help="seconds between a waiting chunk's checks upstream (default 5)")
    ap.add_argument("--wait-shape", choices=("gate", "one-chunk"), default="gate",
                    help="how the wait-for-everything run is made (see the module docstring)")
    ap.add_argument("--static-maps", choices=("warm", "cold"), default="warm",
                    help="warm (default): both runs start with the static-map cache a site has "
                         "after its first cycle (built before the runs, not timed); cold: "
                         "empty, as on the first cycle after an install or upgrade")
    ap.add_argument("--shapes", default=",".join(SHAPES),
                    help=f"comma-separated shapes to run (default: both, {','.join(SHAPES)})")
    ap.add_argument("--workspace", type=Path, default=ROOT / "var" / "bench-cycle")
    args = ap.parse_args(argv)
    args.shapes = [x.strip() for x in args.shapes.split(",")]
    if not args.shapes or set(args.shapes) - set(SHAPES):
        ap.error(f"--shapes: choose from {', '.join(SHAPES)}, got {','.join(args.shapes)}")
    stop_on_sigterm()
    args.products, args.regions = args.products.split(","), args.regions.split(",")

    ws = args.workspace.resolve()
    steps = [s for s in shipped.steps if s <= args.last_step]
    demo.write_demo_catalog(ws / "demo" / "models.yaml", steps, args.products, args.regions,
                            args.chunk_size)
    os.environ.update(demo.demo_env(var=ws))
    demo.sample_data(RUN, steps, var=ws)
    if args.static_maps == "warm":
        took = warm_static_maps(ws / WARM_MAPS, args.products, args.regions)
        print(f"static maps of {len(args.products) * len(args.regions)} product/region pairs "
              f"built in {took:.0f} s (before the runs, not timed)", flush=True)
    n = len(args.products) * len(args.regions) * len(steps)
    print(f"ICON-EU {RUN:%Y-%m-%d %H} UTC: {len(args.products)} products x {len(args.regions)} "
          f"regions ({','.join(args.regions)}) x {len(steps)} steps (+{steps[0]}..+{steps[-1]}) "
          f"= {n} frames; chunks of {args.chunk_size}; arrival table sped up {args.speedup:g}x; "
          f"chunks check upstream every {args.poke_interval:g} s; {localstack.slots()} task "
          f"slots; wait-for-everything shape: {args.wait_shape}; static-map cache: "
          f"{args.static_maps}; load average {load_average()}",
          flush=True)

    results = {}
    for shape in args.shapes:
        print(f"--- {shape} ---", flush=True)
        r = shape_run(ws, args, steps, shape)
        results[shape] = r
        print(f"{shape}: run {r['state']}, manifest {r['status'] or 'never final'}, "
              f"{r['frames']} frames, {r['chunks']} chunk(s), {r['run_s']:.0f} s from trigger "
              f"to end\n"
              f"  last upstream file -> run complete on the publish folder: "
              f"{_s(r['last_to_complete_s'])}\n"
              f"  chunk's last file -> its charts published: median {_s(r['chunk_median_s'])}, "
              f"max {_s(r['chunk_max_s'])}\n"
              f"  steps arrived every {r['arrival_s_per_step']:.1f} s on average ("
              + ", ".join(f"{h}-hourly steps {v:.1f} s apart"
                          for h, v in r["arrival_by_spacing"].items())
              + "); rendering took "
              f"{r['render_s_per_step']:.1f} s per step (time any render task ran / steps)\n"
              f"  metadata-DB errors in logs: {r['db_errors']}; listening: "
              f"{', '.join(f'{c} {a}:{p}' for c, a, p in r['listening']) or 'nothing seen'}; "
              f"processes left after the run: {len(r['left'])}\n"
              f"  load average before {r['load_before']}, after {r['load_after']}\n"
              f"  tasks (mean s waiting after the step before / running): "
              + ", ".join(f"{k} x{v['n']} {v['waited']:.1f}/{v['ran']:.1f}"
                          for k, v in r["tasks"].items())
              + (f"\n  did not succeed: {', '.join(r['not_done'][:20])}" if r["not_done"] else "")
              + "\n  Airflow components' own CPU: "
              + ", ".join(f"{k} {v:.0f} s" for k, v in sorted(r["component_cpu"].items()))
              + f"\n  Airflow home, data and publish folder: {r['home']}", flush=True)
    s, w = (results.get(k, {}) for k in SHAPES)
    print(f"summary ({n} frames, speed-up {args.speedup:g}): last file -> complete: streaming "
          f"{_s(s.get('last_to_complete_s'))} (goal <= 90 s), waiting "
          f"{_s(w.get('last_to_complete_s'))}; median chunk's last file -> published: streaming "
          f"{_s(s.get('chunk_median_s'))} (goal <= 60 s), waiting {_s(w.get('chunk_median_s'))}")
    if s and w and w["last_to_complete_s"]:
        # the whole pipeline's pace with every step upstream at once (the waiting shape, all
        # released at its last file's instant): what a step costs to download, render and
        # publish on this machine, the pace streaming arrivals are compared with
        pace = w["last_to_complete_s"] / len(steps)
        print(f"pace: with the whole run upstream at once, a step took {pace:.1f} s to download, "
              f"render and publish (wait-for-everything: release -> complete / steps); streaming "
              f"steps arrived every {s['arrival_s_per_step']:.1f} s: "
              + ("at least as fast as the machine processes them" if
                 s["arrival_s_per_step"] <= pace else "slower than the machine processes them"))
    ok = all(r["state"] == "success" and r["status"] == "complete" and r["frames"] == n
             and r["db_errors"] == 0 and not r["exposed"] and not r["left"]
             for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
