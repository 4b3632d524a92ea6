"""Benchmark: ICON global at the real R3B7 size, linear vs nearest-cell sampling, in one run.

For each (region, method) two fresh worker processes in turn open the run (2,949,120 cells,
CLAT/CLON decoded), build the ``t2m_mslp`` frame and its samplers (the set-up a worker pays
once per grid and region), then render frames: the first ("cold") on an empty
``FRAMECAST_STATIC_CACHE`` folder, computing the triangulation and the static map and storing
them, the second ("warm") loading them, as every later worker of a deployment does. Printed per case: set-up seconds (grid coordinates,
static map, samplers), render ms/frame (median, fields already decoded), decode ms/frame (the
frame's two fields read from GRIB afresh), and the worker's peak RSS; then the linear/nearest ratios and the load average. Usage::

    .venv/bin/python bench/bench_icon.py                  # R3B7 (division 384), 6 frames
    .venv/bin/python bench/bench_icon.py --division 96    # quick smoke test
    .venv/bin/python bench/bench_icon.py --data DIR       # an existing ICON run

Targets (on an idle 2-core machine): set-up <= 5 s per worker and region, <= 150 ms per
frame on ``global``, peak RSS <= 600 MB per worker.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)

_CHILD = r"""
import json, resource, statistics, sys, time
from datetime import datetime
from pathlib import Path
from framecast.geo import ensure_cartopy
ensure_cartopy()
import framecast.render.frame as frame_mod
from framecast.dataset import RunDataset
from framecast.products import load_catalog
from framecast.render.runner import load_fields

def peak_mb():
    # VmHWM starts afresh at exec; ru_maxrss would include the parent's size at fork time.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


data, region, method, frames = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
frame_mod.SAMPLING = method
cat = load_catalog()
product = cat.product("t2m_mslp")
t0 = time.perf_counter()
ds = RunDataset.open(data)
steps = ds.steps
fields = load_fields(ds, product, steps[0])           # decodes CLAT/CLON + 2 fields
t1 = time.perf_counter()
frame = frame_mod.MapFrame(product, cat.region(region))
t2 = time.perf_counter()
any_field = next(iter(fields.values()))
frame.sampler(any_field, 1)
frame.sampler(any_field, frame_mod.CONTOUR_FACTOR)
t3 = time.perf_counter()
render_ms, decode_ms = [], []
for i in range(frames):
    step = steps[i % len(steps)]
    ds._cache.clear()  # decode every frame's fields afresh (the run has fewer steps than frames)
    a = time.perf_counter()
    fields = load_fields(ds, product, step)
    b = time.perf_counter()
    frame.render(fields, model="icon", run_time=ds.run_time, step=step)
    c = time.perf_counter()
    decode_ms.append((b - a) * 1000)
    render_ms.append((c - b) * 1000)
print(json.dumps({
    "region": region, "method": method, "cells": int(any_field.values.size),
    "open_decode_s": t1 - t0, "static_s": t2 - t1, "sampler_s": t3 - t2,
    "setup_s": t3 - t0, "render_ms": statistics.median(render_ms[1:] or render_ms),
    "decode_ms": statistics.median(decode_ms[1:] or decode_ms),
    "rss_mb": peak_mb()}))
"""


def generate(out: Path, division: int) -> None:
    """Sample data in a separate process, so the workers fork from a small parent."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "framecast.cli", "sample-data", "--model", "icon",
                    "--run", f"{RUN:%Y%m%d%H}", "--steps", "0-2", "--variables", "t2m,msl",
                    "--icon-resolution", str(division), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    print(f"generated ICON sample, {20 * division * division:,} cells, 3 steps, "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)


def run_case(data: Path, region: str, method: str, frames: int, cache: Path) -> dict:
    """One worker process; ``cache`` is its ``FRAMECAST_STATIC_CACHE`` (empty: a cold start)."""
    env = dict(os.environ, PYTHONHASHSEED="0", FRAMECAST_STATIC_CACHE=str(cache))
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(data), region, method,
                           str(frames)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({region}, {method}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _line(r: dict, start: str) -> str:
    return (f"{r['region']:8s} {r['method']:8s} {start:4s} set-up {r['setup_s']:6.2f} s "
            f"(open+decode {r['open_decode_s']:.2f}, static map {r['static_s']:.2f}, "
            f"samplers {r['sampler_s']:.2f})  render {r['render_ms']:7.1f} ms/frame  "
            f"decode {r['decode_ms']:6.1f} ms/frame  peak RSS {r['rss_mb']:6.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--division", type=int, default=384,
                    help="icosahedral root division n (cells 20*n**2; 384 = R3B7 size)")
    ap.add_argument("--data", type=Path, help="existing ICON run directory (skips generation)")
    ap.add_argument("--frames", type=int, default=6, help="frames rendered per case")
    ap.add_argument("--regions", default="global,germany", help="comma-separated regions")
    args = ap.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="framecast-bench-icon-") as tmp:
        data = args.data
        if data is None:
            data = Path(tmp) / "icon"
            generate(data, args.division)
        print("cold: the first worker on an empty cache folder computes the samplers and static "
              "map; warm: every later worker loads them", flush=True)
        rows = []
        for region in args.regions.split(","):
            for method in ("nearest", "linear"):
                cache = Path(tmp) / f"cache-{region}-{method}"
                cache.mkdir()
                for start in ("cold", "warm"):
                    r = run_case(data, region, method, args.frames, cache)
                    r["start"] = start
                    rows.append(r)
                    print(f"{r['cells']:>9,} cells  {_line(r, start)}", flush=True)
        by = {(r["region"], r["method"], r["start"]): r for r in rows}
        for region in args.regions.split(","):
            lin, near = by[(region, "linear", "cold")], by[(region, "nearest", "cold")]
            print(f"{region:8s} linear/nearest (cold): samplers "
                  f"x{lin['sampler_s'] / near['sampler_s']:.2f}, set-up "
                  f"x{lin['setup_s'] / near['setup_s']:.2f}, render "
                  f"x{lin['render_ms'] / near['render_ms']:.2f}, peak RSS "
                  f"x{lin['rss_mb'] / near['rss_mb']:.2f}")
        if "global" in args.regions.split(","):
            warm, cold = by[("global", "linear", "warm")], by[("global", "linear", "cold")]
            print(f"targets, global linear: set-up per worker {warm['setup_s']:.2f} s (goal <= 5; "
                  f"first worker ever {cold['setup_s']:.1f} s), frame {warm['render_ms']:.0f} ms render "
                  f"+ {warm['decode_ms']:.0f} ms decode = "
                  f"{warm['render_ms'] + warm['decode_ms']:.0f} ms (goal <= 150), peak RSS {warm['rss_mb']:.0f} MB (goal <= 600; "
                  f"first worker {cold['rss_mb']:.0f} MB)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
