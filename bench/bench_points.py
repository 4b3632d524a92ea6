"""Benchmark: meteograms + time-height sections for 100 places over a full ICON-EU run.

Goal: at most 60 s on 2 cores for 100 places x 93 steps (0-120 h), GRIB decoding included,
with peak memory per worker stated. In the same run, a naive reference does the same work
the obvious way for a few places: every field decoded whole and looked up once per place
(no shared point index, no one-pass extraction), then the same charts. Printed: wall times,
per-place cost of both (core-seconds per place) and their ratio, peak RSS per worker, and
the load average before and after (the machine may be shared). Usage::

    .venv/bin/python bench/bench_points.py                 # data in var/bench-points
    .venv/bin/python bench/bench_points.py --data DIR      # an existing full ICON-EU run

The data (ICON-EU 1377x657, 93 steps, the chart fields plus every point-forecast field the
sample generator has: dew point, cloud layers, WW, snowfall, T/RH/u/v on its pressure levels)
is generated once with ``framecast sample-data`` when missing.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "var" / "bench-points" / "icon-eu"
RUN = "2026112300"


def _cpu() -> float:
    """User + system CPU seconds of this process and its finished children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ensure_data(data: Path) -> None:
    marker = data / ".complete"
    if marker.is_file():
        return
    print(f"generating the full ICON-EU sample run into {data} (once) ...", flush=True)
    from framecast.points.extract import candidate_variables
    from framecast.sampledata import VARIABLES
    from framecast.sampledata.variables import CORE_VARIABLES
    from framecast.sampledata.weather import PRESSURE_LEVELS

    names = list(dict.fromkeys([*CORE_VARIABLES, *(
        n for n in candidate_variables([lev for lev in PRESSURE_LEVELS if 300 <= lev <= 1000])
        if n in VARIABLES and VARIABLES[n].published_by("icon-eu"))]))
    subprocess.run([str(ROOT / ".venv" / "bin" / "framecast"), "sample-data", "--model",
                    "icon-eu", "--run", RUN, "--steps", "all", "--variables", ",".join(names),
                    "--out", str(data)], check=True)
    marker.write_text("ok\n")


def naive(data: Path, places, out: Path) -> float:
    """Per place: open the run, decode every field whole, take the nearest value, draw."""
    import numpy as np

    from framecast.dataset import RunDataset
    from framecast.points.extract import PointSeries, wanted_variables
    from framecast.points.meteogram import draw_meteogram
    from framecast.points.section import draw_section

    t0 = time.perf_counter()
    for place in places:
        with RunDataset.open(data) as ds:
            names = wanted_variables(ds.variables())
            values = {n: np.full((len(ds.steps), 1), np.nan, np.float32) for n in names}
            lat = lon = None
            for k, step in enumerate(ds.steps):
                for n in names:
                    if not ds.has(n, step):
                        continue
                    f = ds.field(n, step)
                    if lat is None:
                        lats, lons = f.grid.lats, f.grid.lons
                        lat = int(np.argmin(np.abs(lats - place.lat)))
                        lon = int(np.argmin(np.abs(lons - place.lon)))
                    values[n][k, 0] = f.values[lat, lon]
            series = PointSeries(ds.model, ds.run_time, list(ds.steps), (place,), values,
                                 {n: "" for n in names}, np.array([lats[lat]]),
                                 np.array([lons[lon]]))
        (out / f"{place.slug}_m.png").write_bytes(draw_meteogram(series, 0).png)
        (out / f"{place.slug}_s.png").write_bytes(draw_section(series, 0).png)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--places", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--naive-places", type=int, default=2)
    args = ap.parse_args()

    from framecast.points.places import largest_cities
    from framecast.points.runner import make_points

    if args.data == DEFAULT_DATA:
        ensure_data(args.data)
    places = largest_cities(args.places, (29.6, 70.4), (-23.4, 62.4))  # ICON-EU domain
    print(f"load average before: {_load()} ({os.cpu_count()} cores)", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-points-") as tmp:
        out = Path(tmp)
        t0, c0 = time.perf_counter(), _cpu()
        report = make_points(args.data, out / "framecast", places,
                             products=("meteogram", "section"), workers=args.workers)
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        load_mid = _load()
        print(f"framecast: {len(places)} places x 93 steps, {report.images} images "
              f"(meteogram + section), {report.messages} GRIB messages decoded once each")
        print(f"  wall {wall:.1f} s on {args.workers} workers: extraction {report.extract_s:.1f}"
              f" s, charts {report.render_s:.1f} s  (goal: <= 60 s on 2 cores: "
              f"{'met' if wall <= 60 else 'NOT met'})")
        print(f"  CPU time {cpu:.1f} s (all processes; wall on an idle 2-core machine is about "
              f"half of it when both workers are busy)")
        print("  peak RSS per worker: "
              + ", ".join(f"{m:.0f} MB" for m in report.peak_rss_mb)
              + f"; parent {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        print(f"  load average after framecast: {load_mid}", flush=True)
        if args.naive_places < 1:
            print(f"load average after: {_load()}")
            return 0
        (out / "naive").mkdir()
        c1 = _cpu()
        naive_s = naive(args.data, places[:args.naive_places], out / "naive")
        naive_cpu = _cpu() - c1
        per_naive = naive_cpu / args.naive_places
        per_fc = cpu / len(places)
        print(f"naive (decode every field per place, 1 process): {args.naive_places} places "
              f"in {naive_s:.1f} s wall, {per_naive:.1f} CPU s per place")
        print(f"framecast: {per_fc:.2f} CPU s per place -> {per_naive / per_fc:.1f}x less "
              f"CPU per place than naive")
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
