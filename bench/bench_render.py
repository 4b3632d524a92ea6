"""Benchmark: the naive chart script vs framecast on the same ICON-EU data, in one run.

Prints ms/frame for each (median per frame inside a worker, both with the same number of
worker processes), the speed-up, and framecast's peak RSS per worker after 20 and after 80
frames. Usage::

    .venv/bin/python bench/bench_render.py            # full run (about 3-4 minutes)
    .venv/bin/python bench/bench_render.py --quick    # smaller, for a smoke test

Data is generated (ICON-EU regular 0.0625 deg grid, 1377x657) unless ``--data`` is given.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
SIZE = (1000, 800)


def _dwd_file(data: Path, var: str, step: int) -> Path:
    name = {"t_2m": "T_2M", "pmsl": "PMSL"}[var]
    return (data / "00" / var /
            f"icon-eu_europe_regular-lat-lon_single-level_2026112300_{step:03d}_{name}.grib2")


def run_naive(data: Path, out: Path, steps: list[int], workers: int) -> dict:
    sys.path.insert(0, str(HERE))
    from naive_reference import render_chunk

    frames = [(s, _dwd_file(data, "t_2m", s), _dwd_file(data, "pmsl", s)) for s in steps]
    chunks = [frames[i::workers] for i in range(workers)]
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(workers) as pool:
        results = pool.map(render_chunk, [(c, out, SIZE) for c in chunks])
    wall = time.perf_counter() - t0
    ms = [m for r in results for m in r["ms"]]
    return {"frames": len(ms), "median_ms": statistics.median(ms), "wall_s": wall,
            "rss_mb": max(r["rss_mb"] for r in results)}


_CHILD = """
import json, resource, sys
from datetime import datetime
from pathlib import Path
from framecast.geo import ensure_cartopy
ensure_cartopy()
from framecast.render.runner import render_chunk
data, out, steps = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
recs = render_chunk(data, out, model="icon-eu", run_time=datetime.fromisoformat(sys.argv[4]),
                    product="t2m_mslp", region="europe", steps=steps)
print(json.dumps({"ms": [r.load_ms + r.render_ms + r.encode_ms for r in recs],
                  "render_ms": [r.render_ms for r in recs], "encode_ms": [r.encode_ms for r in recs],
                  "load_ms": [r.load_ms for r in recs],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_framecast_worker(data: Path, out: Path, steps: list[int]) -> dict:
    """One framecast worker process rendering ``steps``; returns its timings and peak RSS."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(data), str(out), json.dumps(steps),
                           RUN.isoformat()], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"framecast worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_framecast(data: Path, out: Path, steps: list[int], workers: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    parts = [steps[i::workers] for i in range(workers)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(lambda s: run_framecast_worker(data, out, s), parts))
    wall = time.perf_counter() - t0
    # Exclude each worker's first frame: it includes the one-off map set-up (reported apart).
    ms = [m for r in results for m in r["ms"][1:]]
    first = [r["ms"][0] for r in results]
    return {"frames": sum(len(r["ms"]) for r in results), "median_ms": statistics.median(ms),
            "first_frame_ms": max(first), "wall_s": wall,
            "render_ms": statistics.median([m for r in results for m in r["render_ms"][1:]]),
            "encode_ms": statistics.median([m for r in results for m in r["encode_ms"][1:]]),
            "load_ms": statistics.median([m for r in results for m in r["load_ms"][1:]]),
            "rss_mb": max(r["rss_mb"] for r in results)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="existing ICON-EU sample run (t2m, msl)")
    ap.add_argument("--naive-frames", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20, help="framecast frames for the speed test")
    ap.add_argument("--long", type=int, default=80, help="frames for the RSS growth test")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2 naive frames, 8/24 framecast")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.quick:
        args.naive_frames, args.frames, args.long = 2, 8, 24
    os.environ.setdefault("CARTOPY_DATA_DIR", str(HERE.parent.parent / "shared" / "cartopy-data"))
    with tempfile.TemporaryDirectory(prefix="fc-bench-") as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            from framecast.sampledata import generate_run

            data = tmp / "data"
            t0 = time.perf_counter()
            generate_run("icon-eu", RUN, range(args.long), data, variables=["t2m", "msl"])
            print(f"generated {args.long} ICON-EU steps (t2m, msl) in "
                  f"{time.perf_counter() - t0:.0f} s")
        (tmp / "naive").mkdir()
        naive = run_naive(data, tmp / "naive", list(range(args.naive_frames)), args.workers)
        print(f"naive reference: {naive['frames']} frames, {naive['median_ms']:.0f} ms/frame "
              f"(median, per worker), peak RSS {naive['rss_mb']:.0f} MB/worker")
        fast = run_framecast(data, tmp / "fc", list(range(args.frames)), args.workers)
        print(f"framecast:       {fast['frames']} frames, {fast['median_ms']:.0f} ms/frame "
              f"(median, per worker: load {fast['load_ms']:.0f} + render "
              f"{fast['render_ms']:.0f} + encode {fast['encode_ms']:.0f}); first frame incl. "
              f"set-up {fast['first_frame_ms']:.0f} ms")
        short = run_framecast_worker(data, tmp / "rss20", list(range(20)))
        long = run_framecast_worker(data, tmp / "rss80", list(range(args.long)))
        ratio = naive["median_ms"] / fast["median_ms"]
        growth = long["rss_mb"] / short["rss_mb"] - 1
        print(f"speed-up: {ratio:.1f}x per frame (target >= 30x)")
        print(f"peak RSS per framecast worker: {short['rss_mb']:.0f} MB after 20 frames, "
              f"{long['rss_mb']:.0f} MB after {args.long} frames ({growth:+.1%}; target within "
              f"10%)")
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
        if args.json:
            args.json.write_text(json.dumps({"naive": naive, "framecast": fast, "ratio": ratio,
                                             "rss20_mb": short["rss_mb"],
                                             "rss_long_mb": long["rss_mb"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
