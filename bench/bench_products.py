"""Benchmark: ms/frame of every shipped product on ICON-EU ``europe``, in one run.

Renders each product ICON-EU lists in ``models.yaml`` (all but GFS-only soil moisture) on the same generated ICON-EU run (every variable,
steps 0..N) in one process: the map is built once per product (not timed), then each frame is
timed as field access (decode/derive, cached across products as in a worker) + draw + PNG
encoding. Prints the median per product, the library mean and its ratio to ``t2m_mslp``
(the goal: within 1.5x), and the machine's load average. Usage::

    .venv/bin/python bench/bench_products.py              # steps 6..11, about 3-5 minutes
    .venv/bin/python bench/bench_products.py --frames 3   # quicker
    .venv/bin/python bench/bench_products.py --data DIR   # an existing ICON-EU run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "include"))
RUN = datetime(2026, 1, 14, 0, tzinfo=UTC)
FIRST = 6  # 6-hour windows need steps 0..6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=6, help="frames per product (default 6)")
    ap.add_argument("--data", type=Path, help="an ICON-EU run with every variable")
    ap.add_argument("--region", default="europe")
    ap.add_argument("--size", default="1000x800")
    args = ap.parse_args(argv)

    from framecast.geo import ensure_cartopy

    ensure_cartopy()
    from framecast.dataset import RunDataset
    from framecast.products import load_catalog
    from framecast.render.encode import encode_png
    from framecast.render.frame import MapFrame
    from framecast.render.runner import load_fields
    from framecast.sampledata import generate_run

    steps = list(range(FIRST, FIRST + args.frames))
    data = args.data
    tmp = None
    if data is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-products-")
        data = Path(tmp.name)
        t0 = time.perf_counter()
        generate_run("icon-eu", RUN, range(0, steps[-1] + 1), data, variables="all")
        print(f"generated ICON-EU run, steps 0..{steps[-1]}, every variable: "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    w, h = (int(x) for x in args.size.split("x"))
    from framecast.catalog import get_model

    cat = load_catalog()
    region = cat.region(args.region)
    listed = set(get_model("icon-eu").products)  # what ICON-EU can feed (models.yaml)
    rows = []
    with RunDataset.open(data, model="icon-eu") as ds:
        for name, product in cat.products.items():
            if args.region not in product.regions or name not in listed:
                continue
            prod = replace(product, size=(w, h))
            frame = MapFrame(prod, region)
            load_fields(ds, prod, steps[0])  # warm: grid lookups built, first decode done
            frame.render(load_fields(ds, prod, steps[0]), model="icon-eu", run_time=RUN,
                         step=steps[0])
            ms_total, ms_draw = [], []
            for step in steps:
                t0 = time.perf_counter()
                fields = load_fields(ds, prod, step)
                t1 = time.perf_counter()
                img = frame.render(fields, model="icon-eu", run_time=RUN, step=step)
                encode_png(img, compress_level=prod.png_compress_level)
                t2 = time.perf_counter()
                ms_total.append((t2 - t0) * 1000)
                ms_draw.append((t2 - t1) * 1000)
            rows.append((name, statistics.median(ms_total), statistics.median(ms_draw)))
            print(f"{name:16s} {rows[-1][1]:8.0f} ms/frame  (draw+encode {rows[-1][2]:6.0f})",
                  flush=True)
    base = next(r for r in rows if r[0] == "t2m_mslp")
    mean_total = statistics.mean(r[1] for r in rows)
    mean_draw = statistics.mean(r[2] for r in rows)
    print(f"\n{len(rows)} products on ICON-EU {args.region}, {w}x{h}, {len(steps)} frames each")
    print(f"library mean {mean_total:.0f} ms/frame, t2m_mslp {base[1]:.0f} ms/frame: "
          f"ratio {mean_total / base[1]:.2f} (goal <= 1.5)")
    print(f"draw+encode only: mean {mean_draw:.0f} ms, t2m_mslp {base[2]:.0f} ms: "
          f"ratio {mean_draw / base[2]:.2f}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
