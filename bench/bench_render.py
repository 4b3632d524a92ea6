"""Benchmark: the naive chart script vs framecast on the same ICON-EU data, in one run.

Prints, all measured in this run on the same generated data and the same number of worker
processes: the naive reference's ms/frame; framecast's ms/frame for ``t2m_mslp`` on ``europe``
(load + render + encode: median and p95 per frame inside a worker, first frame with the
one-off map set-up reported apart) and the speed-up; bytes per frame as 8-bit palette PNG
(the default) and as 24-bit PNG; the mean ms/frame of every product in the product library
on ``europe`` and the library mean against ``t2m_mslp``; peak RSS per worker after 20 and 80
frames; the machine's load average before and after. Usage::

    .venv/bin/python bench/bench_render.py            # full run (about 5-8 minutes)
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
            "cpu_ms": statistics.median([m for r in results for m in r["cpu_ms"]]),
            "rss_mb": max(r["rss_mb"] for r in results)}


_CHILD = """
import json, resource, sys
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from framecast.geo import ensure_cartopy
ensure_cartopy()
from framecast.products import Catalog, load_catalog
from framecast.render.runner import render_chunk
data, out, steps = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(sys.argv[3])
product, palette = sys.argv[5], sys.argv[6] == "1"
cat = load_catalog()
prod = replace(cat.product(product), png_palette=palette)
cat = Catalog({**cat.products, product: prod}, cat.regions, cat.sources)
import time

def peak_mb():
    # VmHWM starts afresh at exec; ru_maxrss would include the parent's size at fork time.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

stamps = [time.process_time()]
clim = Path(sys.argv[7]) if len(sys.argv) > 7 else None  # monthly means for anomalies
recs = render_chunk(data, out, model="icon-eu", run_time=datetime.fromisoformat(sys.argv[4]),
                    product=product, region="europe", steps=steps, catalog=cat,
                    climatology=clim, on_frame=lambda rec: stamps.append(time.process_time()))
cpu = [(b - a) * 1000 for a, b in zip(stamps, stamps[1:])]
print(json.dumps({"ms": [r.load_ms + r.render_ms + r.encode_ms for r in recs], "cpu_ms": cpu,
                  "render_ms": [r.render_ms for r in recs], "encode_ms": [r.encode_ms for r in recs],
                  "load_ms": [r.load_ms for r in recs], "bytes": [r.bytes for r in recs],
                  "rss_mb": peak_mb()}))
"""


def run_framecast_worker(data: Path, out: Path, steps: list[int], product: str = "t2m_mslp",
                         palette: bool = True, climatology: Path | None = None) -> dict:
    """One framecast worker process rendering ``steps``; returns its timings and peak RSS."""
    clim = [str(climatology)] if climatology is not None else []
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(data), str(out), json.dumps(steps),
                           RUN.isoformat(), product, "1" if palette else "0", *clim],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"framecast worker ({product}) failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def run_framecast(data: Path, out: Path, steps: list[int], workers: int,
                  palette: bool = True) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    parts = [steps[i::workers] for i in range(workers)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(lambda s: run_framecast_worker(data, out, s, palette=palette),
                              parts))
    wall = time.perf_counter() - t0
    # Exclude each worker's first frame: it includes the one-off map set-up (reported apart).
    ms = [m for r in results for m in r["ms"][1:]]
    first = [r["ms"][0] for r in results]
    return {"frames": sum(len(r["ms"]) for r in results), "median_ms": statistics.median(ms),
            "p95_ms": _p95(ms), "first_frame_ms": max(first), "wall_s": wall,
            "render_ms": statistics.median([m for r in results for m in r["render_ms"][1:]]),
            "encode_ms": statistics.median([m for r in results for m in r["encode_ms"][1:]]),
            "load_ms": statistics.median([m for r in results for m in r["load_ms"][1:]]),
            "bytes": statistics.median([b for r in results for b in r["bytes"]]),
            "cpu_ms": statistics.median([m for r in results for m in r["cpu_ms"][1:]]),
            "rss_mb": max(r["rss_mb"] for r in results)}


def run_library(data: Path, out: Path, steps: list[int], workers: int,
                climatology: Path | None = None) -> dict[str, dict]:
    """Every product of the library on ``europe``: one worker process each, ``workers`` at a
    time; mean ms/frame over the frames after the first (set-up), or the error. Anomaly
    products read ``climatology`` (a sample one)."""
    from concurrent.futures import ThreadPoolExecutor

    from framecast.catalog import get_model, missing_inputs
    from framecast.products import load_catalog

    # the shipped library minus what ICON-EU cannot feed (its `lacks`); anomalies included
    spec = get_model("icon-eu")
    catalog = load_catalog()
    names = sorted(n for n, p in catalog.products.items()
                   if not [m for m in missing_inputs(spec, p) if not m.startswith("climatology")])

    def one(name: str) -> tuple[str, dict]:
        try:
            r = run_framecast_worker(data, out / name, steps, product=name,
                                     climatology=climatology)
        except RuntimeError as exc:
            return name, {"error": str(exc).strip().splitlines()[-1]}
        return name, {"mean_ms": statistics.fmean(r["ms"][1:]),
                      "cpu_ms": statistics.fmean(r["cpu_ms"][1:]),
                      "bytes": statistics.median(r["bytes"])}

    with ThreadPoolExecutor(workers) as ex:
        return dict(ex.map(one, names))


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, help="existing ICON-EU sample run (t2m, msl)")
    ap.add_argument("--naive-frames", type=int, default=4)
    ap.add_argument("--frames", type=int, default=20, help="framecast frames for the speed test")
    ap.add_argument("--long", type=int, default=80, help="frames for the RSS growth test")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="2 naive frames, 8/24 framecast")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--product-frames", type=int, default=6,
                    help="frames per product for the library means (first one is set-up)")
    args = ap.parse_args()
    if args.quick:
        args.naive_frames, args.frames, args.long, args.product_frames = 2, 8, 24, 3
    os.environ.setdefault("CARTOPY_DATA_DIR", str(HERE.parent.parent / "shared" / "cartopy-data"))
    print(f"machine: {os.cpu_count()} cores, load average {load_avg()} (1, 5, 15 min) at start",
          flush=True)
    # The library's products need up to 6 h of precipitation: start those frames at +6 h.
    lib_steps = list(range(6, 6 + args.product_frames))
    with tempfile.TemporaryDirectory(prefix="fc-bench-") as tmp:
        tmp = Path(tmp)
        data = args.data
        if data is None:
            from framecast.sampledata import generate_run

            data = tmp / "data"
            t0 = time.perf_counter()
            every = range(max(lib_steps) + 1)
            generate_run("icon-eu", RUN, every, data, variables="all")
            rest = [s for s in range(args.long) if s not in every]
            if rest:
                generate_run("icon-eu", RUN, rest, data, variables=["t2m", "msl"])
            print(f"generated {args.long} ICON-EU steps (t2m, msl; every variable for steps "
                  f"0-{max(lib_steps)}) in {time.perf_counter() - t0:.0f} s", flush=True)
        (tmp / "naive").mkdir()
        naive = run_naive(data, tmp / "naive", list(range(args.naive_frames)), args.workers)
        print(f"naive reference: {naive['frames']} frames, {naive['median_ms']:.0f} ms/frame "
              f"(median, per worker), peak RSS {naive['rss_mb']:.0f} MB/worker", flush=True)
        fast = run_framecast(data, tmp / "fc", list(range(args.frames)), args.workers)
        ratio = naive["median_ms"] / fast["median_ms"]
        print(f"framecast t2m_mslp/europe: {fast['frames']} frames, {fast['median_ms']:.1f} "
              f"ms/frame median, {fast['p95_ms']:.1f} ms p95 (per worker; median load "
              f"{fast['load_ms']:.1f} + render {fast['render_ms']:.1f} + encode "
              f"{fast['encode_ms']:.1f}); first frame incl. set-up "
              f"{fast['first_frame_ms']:.0f} ms", flush=True)
        print(f"speed-up: {ratio:.1f}x per frame vs naive (target >= 75x; "
              f"median <= 80 ms on an idle machine)", flush=True)
        print(f"CPU time per frame (process CPU, little affected by other load): naive "
              f"{naive['cpu_ms']:.0f} ms, framecast {fast['cpu_ms']:.1f} ms: "
              f"{naive['cpu_ms'] / fast['cpu_ms']:.1f}x", flush=True)
        rgb = run_framecast(data, tmp / "fc24", list(range(args.frames)), args.workers,
                            palette=False)
        print(f"bytes/frame t2m_mslp/europe (median): 8-bit palette {fast['bytes'] / 1000:.0f} "
              f"KB (target <= 150 KB), 24-bit {rgb['bytes'] / 1000:.0f} KB "
              f"({rgb['bytes'] / fast['bytes']:.2f}x); 24-bit frames take "
              f"{rgb['median_ms']:.1f} ms median (encode {rgb['encode_ms']:.1f})", flush=True)
        from framecast.sampledata.climatology import generate_climatology

        clim = generate_climatology(tmp / "climatology.grib2")
        lib = run_library(data, tmp / "lib", lib_steps, args.workers, climatology=clim)
        print(f"product library on europe ({len(lib)} products ICON-EU feeds, "
              f"{args.product_frames - 1} "
              f"frames each after set-up, mean ms/frame load + render + encode):")
        for name, r in lib.items():
            if "error" in r:
                print(f"  {name:24s} failed: {r['error']}")
            else:
                print(f"  {name:24s} {r['mean_ms']:7.1f} ms  (CPU {r['cpu_ms']:6.1f} ms)  "
                      f"{r['bytes'] / 1000:5.0f} KB")
        ok = [r["mean_ms"] for r in lib.values() if "error" not in r]
        lib_mean = statistics.fmean(ok) if ok else float("nan")
        base = lib.get("t2m_mslp", {}).get("mean_ms", fast["median_ms"])
        failed = len(lib) - len(ok)
        print(f"library mean {lib_mean:.1f} ms/frame = {lib_mean / base:.2f}x t2m_mslp's "
              f"{base:.1f} ms in the same loop (target <= 1.5x; {len(ok)} products"
              + (f", {failed} FAILED" if failed else "") + ")", flush=True)
        ok_cpu = [r["cpu_ms"] for r in lib.values() if "error" not in r]
        if ok_cpu and "cpu_ms" in lib.get("t2m_mslp", {}):
            lib_cpu = statistics.fmean(ok_cpu)
            print(f"library mean CPU {lib_cpu:.1f} ms/frame = "
                  f"{lib_cpu / lib['t2m_mslp']['cpu_ms']:.2f}x t2m_mslp's", flush=True)
        short = run_framecast_worker(data, tmp / "rss20", list(range(20)))
        long = run_framecast_worker(data, tmp / "rss80", list(range(args.long)))
        growth = long["rss_mb"] / short["rss_mb"] - 1
        print(f"peak RSS per framecast worker: {short['rss_mb']:.0f} MB after 20 frames, "
              f"{long['rss_mb']:.0f} MB after {args.long} frames ({growth:+.1%}; target within "
              f"10%)")
        print(f"machine: {os.cpu_count()} cores, load average {load_avg()} at end")
        if args.json:
            args.json.write_text(json.dumps({"naive": naive, "framecast": fast, "ratio": ratio,
                                             "framecast_24bit": rgb, "library": lib,
                                             "library_mean_ms": lib_mean,
                                             "rss20_mb": short["rss_mb"],
                                             "rss_long_mb": long["rss_mb"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
