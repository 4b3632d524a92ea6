"""``framecast sample-data``: write a realistic sample model run (offline demos and tests)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from framecast.catalog import parse_run
from framecast.errors import SpecError


def _run(args: argparse.Namespace) -> int:
    from framecast.sampledata import generate_run, model_steps
    from framecast.steps import parse_steps

    if args.climatology:
        from framecast.sampledata.climatology import CLIMATOLOGY_VARIABLES, generate_climatology

        t0 = time.perf_counter()
        out = generate_climatology(Path(args.climatology))
        print(f"sample-data: climatology of {', '.join(CLIMATOLOGY_VARIABLES)}, 12 monthly "
              f"means, {out.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s "
              f"-> {out}")
        if not args.model:
            return 0
    if not (args.model and args.run and args.out):
        raise SpecError("sample-data: --model, --run and --out are needed for a model run "
                        "(or give only --climatology FILE)")
    steps = model_steps(args.model) if args.steps == "all" else parse_steps(args.steps)
    variables: list[str] | str | None = None
    if args.variables == "all":
        variables = "all"
    elif args.variables:
        variables = [v.strip() for v in args.variables.split(",") if v.strip()]
    t0 = time.perf_counter()
    written = generate_run(args.model, parse_run(args.run), steps, Path(args.out),
                           variables=variables, bz2=args.bz2, seed=args.seed,
                           icon_resolution=args.icon_resolution)
    size = sum(p.stat().st_size for p in written)
    print(f"sample-data: {args.model} run {args.run}: {len(steps)} steps, {len(written)} files, "
          f"{size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s -> {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sample-data", help="write a realistic sample GRIB2 run (ICON-EU, ICON, GFS)",
        description="Write a sample model run in the publisher's own layout (DWD open data "
                    "for icon-eu/icon, NOMADS for gfs) with smooth, deterministic weather.")
    p.add_argument("--model", choices=("icon-eu", "icon", "gfs"))
    p.add_argument("--run", help="run time YYYYMMDDHH (UTC)")
    p.add_argument("--steps", default="0-12",
                   help="steps in hours: 0-12, 0-12/3, 0,3,6 or 'all' for the model's real list "
                        "(default 0-12)")
    p.add_argument("--out", help="output directory (the model's grib root)")
    p.add_argument("--climatology", metavar="FILE",
                   help="also (or only) write a matching climatology: monthly means of t2m, "
                        "gh500, t850 and msl on a global 1 degree grid, one GRIB2 file, for "
                        "the anomaly products (models.yaml climatology.path)")
    p.add_argument("--variables", help="comma-separated canonical names, or 'all' for every field the "
                        "model's publisher ships (default: the core set t2m, msl, tp, ...)")
    p.add_argument("--bz2", action="store_true", help="bzip2 each file, as DWD publishes")
    p.add_argument("--seed", type=int, default=0, help="weather seed (default 0)")
    p.add_argument("--icon-resolution", type=int, default=None,
                   help="icon: icosahedral root division n, cells = 20*n**2 (default 48)")
    p.set_defaults(func=_run)
