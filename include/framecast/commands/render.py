"""``framecast render``: draw products for a model run from GRIB2 files on disk."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framecast.commands.args import parse_names, parse_run, parse_steps


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="render forecast charts from a directory of GRIB2 files",
        description="Render products x regions x steps of one model run to PNG files under "
                    "OUT/<model>/<YYYYMMDDHH>/<product>/<region>/, in parallel over chunks.")
    p.add_argument("--data", type=Path, required=True, help="directory holding the run's GRIB2")
    p.add_argument("--out", type=Path, required=True, help="output root directory")
    p.add_argument("--model", default=None,
                   help="model name used in titles and paths (default: from the data: "
                        "icon-eu/icon/gfs from publisher file names, else the GRIB centre)")
    p.add_argument("--run", type=parse_run, help="run time YYYYMMDDHH (default: from the data)")
    p.add_argument("--product", type=parse_names, default=None,
                   help="product name(s), comma-separated (default: all)")
    p.add_argument("--region", type=parse_names, default=None,
                   help="region name(s) (default: each product's own list)")
    p.add_argument("--steps", type=parse_steps, default=None,
                   help="steps, e.g. 0-12 or 0-48/3 (default: all in the data)")
    p.add_argument("--chunk-size", type=int, default=6, help="steps per work unit (default 6)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU count)")
    p.add_argument("--products-file", type=Path, help="product specs YAML (default: shipped)")
    p.add_argument("--regions-file", type=Path, help="region table YAML (default: shipped)")
    p.add_argument("--climatology", type=Path, default=None,
                   help="GRIB file of monthly means for anomaly products (t2m_anomaly, "
                        "z500_anomaly); without it they fail naming the missing climatology")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--decoder", choices=("eccodes", "cfgrib"), default="eccodes",
                   help="GRIB decoding: ecCodes on indexed bytes (default, fastest) or "
                        "xarray + cfgrib")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from framecast.dataset import RunDataset
    from framecast.errors import DataError
    from framecast.products import load_catalog
    from framecast.records import run_dir
    from framecast.render.runner import plan_chunks, render_run

    catalog = load_catalog(args.products_file, args.regions_file)
    products = args.product or sorted(catalog.products)
    for name in products:
        catalog.product(name)
    if not args.data.is_dir():
        raise DataError(f"{args.data}: no such data directory")
    with RunDataset.open(args.data, model=args.model, decoder=args.decoder) as ds:
        run_time = args.run or ds.run_time
        steps = args.steps or ds.steps
        model = args.model or ds.model
    chunks = plan_chunks(catalog, products, args.region, steps, args.chunk_size)
    total = sum(len(c.steps) for c in chunks)
    bar = tqdm(total=total, unit="frame", disable=args.no_progress, file=sys.stderr)
    records = render_run(args.data, args.out, model=model, run_time=run_time,
                         chunks=chunks, workers=args.workers, products_file=args.products_file,
                         regions_file=args.regions_file, progress=bar.update,
                         decoder=args.decoder, climatology=args.climatology)
    bar.close()
    render_ms = sum(r.render_ms + r.encode_ms + r.load_ms for r in records)
    print(f"rendered {len(records)} frames to {run_dir(args.out, model, run_time)} "
          f"({render_ms / max(1, len(records)):.0f} ms/frame per worker)")
    return 0
