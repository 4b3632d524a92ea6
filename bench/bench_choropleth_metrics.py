"""Several metrics in one spec vs one spec per metric: same table, same frames, one run.

A table of per-country rows with three metric columns and an epoch-seconds time column
(rows every ``--rows-per-day`` per day, aggregated into daily frames in SQL: the shape of
event or sensor tables grouped by interval). Measured one after the other in this process:

1. three single-metric runs (one spec per metric: three query passes, three map rasters);
2. one three-metric run (``metrics: [a, b, c]``: one query pass, one label raster, three
   encoders fed in turn, encoding in parallel).

Prints each run's seconds, the ratio (three-metric / three single runs) and the machine's
load average, so the numbers can be judged (and re-run on an idle box).

    .venv/bin/python bench/bench_choropleth_metrics.py [--days 300] [--rows-per-day 24]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("CARTOPY_DATA_DIR", str(ROOT.parent / "shared" / "cartopy-data"))
os.environ.setdefault("MPLBACKEND", "Agg")

METRICS = {"cases": [10, 50, 100, 250, 500, 1000], "tests": [100, 500, 1000, 2500, 5000],
           "share": [1, 2, 5, 10, 20]}


def load_table(path: Path, days: int, per_day: int, countries: int) -> int:
    """(code, ts epoch seconds, cases, tests, share), rows in time order; returns the count."""
    from framecast.choropleth.sample import country_codes, series

    codes = country_codes(countries)
    base = {c: series(c, days) for c in codes}
    t0 = 1_577_836_800  # 2020-01-01 UTC
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE obs (code TEXT, ts INTEGER, cases REAL, tests REAL, share REAL)")
    n = 0
    step = 86400 // per_day
    for d in range(days):
        rows = []
        for c in codes:
            v = float(base[c][d])
            for h in range(per_day):
                jitter = 1.0 + 0.01 * ((h * 7 + d) % 5 - 2)
                rows.append((c, t0 + d * 86400 + h * step, v * jitter, v * 9.0 * jitter,
                             (v % 25.0) * jitter))
        con.executemany("INSERT INTO obs VALUES (?, ?, ?, ?, ?)", rows)
        n += len(rows)
    con.execute("CREATE INDEX obs_ts ON obs (ts)")
    con.commit()
    con.close()
    return n


def spec(url: str, days: int, metrics: list[str], name: str, size: tuple[int, int]):
    from framecast.choropleth.spec import spec_from_dict

    end = np.datetime64("2020-01-01") + np.timedelta64(days - 1, "D")
    doc = {"name": name,
           "source": {"url": url, "table": "obs", "code_column": "code", "time_column": "ts",
                      "aggregate": "mean"},
           "interval": "day", "start": "2020-01-01", "end": str(end), "size": list(size),
           "style": {"cmap": "YlOrRd", "title": "{time:%d %b %Y}"},
           "styles": {m: {"breaks": METRICS[m]} for m in metrics},
           "render": {"chunks": 1, "threads": 1}}
    if len(metrics) == 1:
        doc["source"]["metric"] = metrics[0]
        doc["style"]["breaks"] = METRICS[metrics[0]]
        doc.pop("styles")
    else:
        doc["source"]["metrics"] = metrics
    return spec_from_dict(doc, f"{name}.yaml")


def main() -> None:
    from framecast.choropleth.pipeline import run_animation

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=300, help="frames (one per day)")
    p.add_argument("--rows-per-day", type=int, default=24)
    p.add_argument("--countries", type=int, default=200)
    p.add_argument("--size", default="1100x600")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args()
    size = tuple(int(x) for x in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="fc_bench_metrics_"))
    try:
        db = tmp / "obs.sqlite"
        t = time.perf_counter()
        rows = load_table(db, args.days, args.rows_per_day, args.countries)
        print(f"table: {rows:,} rows ({args.countries} countries x {args.days} days x "
              f"{args.rows_per_day}/day, epoch seconds), loaded in "
              f"{time.perf_counter() - t:.1f} s")
        url = f"sqlite:///{db}"
        singles = {}
        for m in METRICS:
            t = time.perf_counter()
            s = run_animation(spec(url, args.days, [m], f"single_{m}", size), tmp / "out",
                              workers=args.workers)
            singles[m] = time.perf_counter() - t
            print(f"single-metric run {m:>6}: {singles[m]:6.1f} s ({s['frames']} frames)")
        t = time.perf_counter()
        s = run_animation(spec(url, args.days, list(METRICS), "multi", size), tmp / "out",
                          workers=args.workers)
        multi = time.perf_counter() - t
        total = sum(singles.values())
        print(f"three single-metric runs:  {total:6.1f} s")
        print(f"one three-metric run:      {multi:6.1f} s ({len(s['outputs'])} videos, "
              f"{s['frames']} frames each)")
        print(f"ratio three-metric / three single runs: {multi / total:.2f}")
        print(f"machine: {os.cpu_count()} cores, load average "
              f"{' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
