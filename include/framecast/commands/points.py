"""``framecast meteogram`` and ``framecast sounding``: point forecasts for places.

Places are gazetteer names (``--place Hamburg,Munich``; ``"Paris, US"`` for another country),
a point (``--lat/--lon``, optionally ``--name``) or the model's list in a places file
(``--places-file``). Files go to ``OUT/<model>/<YYYYMMDDHH>/points/<place>/``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framecast.commands.args import parse_steps


def _places(args: argparse.Namespace, model: str | None) -> list:
    from framecast.points.places import PlaceError, load_points_config, resolve_places

    if args.places_file and not args.place and args.lat is None:
        cfg = load_points_config(model or "", args.places_file)
        if cfg is None:
            raise PlaceError(f"{args.places_file}: no places for model {model!r} (give --model)")
        return list(cfg.places)
    names: list[str] = []
    for item in args.place or []:
        for token in (t.strip() for t in item.split(",")):
            if len(token) == 2 and token.isalpha() and token.isupper() and names:
                names[-1] = f"{names[-1]}, {token}"  # "Paris, US": a country code
            elif token:
                names.append(token)
    return resolve_places(names, args.lat, args.lon, args.name)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="directory holding the run's GRIB2")
    p.add_argument("--out", type=Path, required=True, help="output root directory")
    p.add_argument("--place", action="append",
                   help="place name(s), comma-separated, looked up in the gazetteer "
                        "(most populous first; 'Paris, US' for another country)")
    p.add_argument("--lat", type=float, help="latitude of a point (with --lon)")
    p.add_argument("--lon", type=float, help="longitude of a point (with --lat)")
    p.add_argument("--name", help="name of the --lat/--lon point")
    p.add_argument("--places-file", type=Path,
                   help="places YAML (with --model: that model's list)")
    p.add_argument("--model", default=None, help="model of the data (default: from the files)")
    p.add_argument("--method", choices=("nearest", "bilinear"), default="nearest",
                   help="point values: nearest grid point (default) or bilinear")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "meteogram", help="meteograms (and time-height sections, CSV/JSON) for places",
        description="Meteogram PNG, time-height section PNG and the point data as CSV and "
                    "JSON for each place, from a model run's GRIB2 files.")
    _common(p)
    p.add_argument("--no-section", action="store_true", help="skip the time-height section")
    p.add_argument("--no-data", action="store_true", help="skip the CSV/JSON files")
    p.set_defaults(func=run_meteogram)
    s = sub.add_parser(
        "sounding", help="Skew-T soundings (MetPy) for places at given steps",
        description="Skew-T/log-p diagrams with parcel path, CAPE/CIN, LCL and a hodograph "
                    "for each place at the given forecast steps.")
    _common(s)
    s.add_argument("--steps", type=parse_steps, default=[0, 12, 24, 48],
                   help="forecast hours, e.g. 0,24,48 or 0-48/12 (default 0,12,24,48)")
    s.set_defaults(func=run_sounding)


def _run(args: argparse.Namespace, products: list[str], sounding_steps: list[int]) -> int:
    from tqdm import tqdm

    from framecast.errors import DataError
    from framecast.points.runner import make_points

    if not args.data.is_dir():
        raise DataError(f"{args.data}: no such data directory")
    places = _places(args, args.model)
    per_place = (("meteogram" in products) + ("section" in products)
                 + len(sounding_steps) * ("sounding" in products))
    bar = tqdm(total=len(places) * per_place, unit="image", disable=args.no_progress,
               file=sys.stderr)
    report = make_points(args.data, args.out, places, model=args.model, products=products,
                         sounding_steps=sounding_steps, method=args.method,
                         workers=args.workers, progress=bar.update,
                         records_name=_records_name(products, places))
    bar.close()
    print(f"{report.images} images and {len(report.records) - report.images} data files for "
          f"{len(places)} place(s) in {report.extract_s + report.render_s:.1f} s "
          f"(extraction {report.extract_s:.1f} s, {report.messages} GRIB messages) "
          f"-> {args.out}")
    return 0


def _records_name(products: list[str], places: list) -> str:
    """One records file per (products, places) call: other calls' records stay."""
    import hashlib

    key = hashlib.sha1(";".join(p.slug for p in places).encode()).hexdigest()[:10]
    return f"points__{products[-1]}__{key}"


def run_meteogram(args: argparse.Namespace) -> int:
    products = ["meteogram"]
    if not args.no_section:
        products.append("section")
    if not args.no_data:
        products.insert(0, "data")
    return _run(args, products, [])


def run_sounding(args: argparse.Namespace) -> int:
    return _run(args, ["sounding"], list(args.steps))
