"""``framecast choropleth ...``: render an animation spec, check specs, make a sample database.

Rendering shows a progress bar (frames done / total, frames per second) and ends with the run
summary, including the warnings the source collected (unknown country codes, NULL and
non-numeric values), so nothing the data lacked goes unnoticed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from framecast.errors import SpecError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("choropleth", help="per-country animations from a SQL database")
    sub = p.add_subparsers(dest="choropleth_command", required=True)

    r = sub.add_parser("render", help="render one animation spec (YAML) to MP4/GIF/PNG")
    r.add_argument("spec", type=Path, help="animation YAML file")
    r.add_argument("--url", help="SQLAlchemy database URL (overrides the spec's source)")
    r.add_argument("--out", type=Path, default=Path("var/choropleth"), help="output folder")
    r.add_argument("--workers", type=int, default=1, help="parallel segment processes")
    r.add_argument("--chunks", type=int, help="segments (default: one per worker)")
    r.add_argument("--start", help="override the spec's start date")
    r.add_argument("--end", help="override the spec's end date")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.set_defaults(func=_render)

    c = sub.add_parser("check", help="validate animation specs (files or folders)")
    c.add_argument("paths", type=Path, nargs="+")
    c.set_defaults(func=_check)

    s = sub.add_parser("sample-db", help="create a synthetic per-country daily table")
    s.add_argument("url", help="SQLAlchemy URL, e.g. sqlite:///var/sample.sqlite")
    s.add_argument("--table", default="covid_daily")
    s.add_argument("--countries", type=int, default=200)
    s.add_argument("--days", type=int, default=1000)
    s.add_argument("--warts", action="store_true",
                   help="include NULLs, non-numeric values and aggregate codes")
    s.set_defaults(func=_sample_db)


def _render(args: argparse.Namespace) -> int:
    from framecast.choropleth.pipeline import run_animation
    from framecast.choropleth.spec import load_spec
    from framecast.choropleth.timeline import Timeline, parse_time

    spec = load_spec(args.spec)
    if args.url:
        spec = spec.with_url(args.url)
    elif not spec.source.url:
        if spec.connection:
            raise SpecError(f"{args.spec}: source names Airflow connection "
                            f"{spec.connection!r}; pass --url with a SQLAlchemy URL to render "
                            f"outside Airflow")
        raise SpecError(f"{args.spec}: source has no 'url' or 'connection'; pass --url with a "
                        f"SQLAlchemy URL")
    if args.start or args.end:
        tl = spec.timeline
        start = parse_time(args.start, "--start") if args.start else tl.start
        end = parse_time(args.end, "--end") if args.end else tl.end
        spec = replace(spec, timeline=Timeline(start, end, tl.interval))
    if args.workers < 1:
        raise SpecError(f"--workers {args.workers} must be at least 1")
    bar = None
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=len(spec.timeline), unit="frame", desc=spec.name, file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

    try:
        summary = run_animation(spec, args.out, workers=args.workers, chunks=args.chunks,
                                progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps(summary, indent=1, default=str))
    else:
        fps = summary["frames"] / summary["seconds"] if summary["seconds"] else 0.0
        print(f"{spec.name}: {summary['frames']} frames in {summary['seconds']:.1f} s "
              f"({fps:.0f} frames/s, {summary['segments']} segment(s))")
        for kind, path in summary["outputs"].items():
            if isinstance(path, dict):  # several metrics: one video each
                for k2, p2 in path.items():
                    print(f"  {kind} {k2}: {p2}")
            else:
                print(f"  {kind}: {path}")
        for w in summary["source"]["warnings"]:
            print(f"  warning: {w}")
    return 0


def _check(args: argparse.Namespace) -> int:
    """Validate every spec given; report every problem of every file, then fail once."""
    from framecast.choropleth.spec import load_spec

    n = 0
    problems: list[str] = []
    names: dict[str, str] = {}
    for p in args.paths:
        files = sorted(p.glob("*.yaml")) if p.is_dir() else [p]
        for f in files:
            n += 1
            try:
                s = load_spec(f)
            except SpecError as exc:
                problems.append(str(exc))
                print(f"bad {f}", file=sys.stderr)
                continue
            if s.name in names:
                problems.append(f"animation name {s.name!r} is used by {names[s.name]} and {f}")
                continue
            names[s.name] = str(f)
            metrics = f", metrics {list(s.metrics)}" if len(s.metrics) > 1 else ""
            print(f"ok  {s.path}: {s.name}, {len(s.timeline)} frames{metrics}")
    if n == 0:
        raise SpecError(f"no animation specs (*.yaml) found in {[str(p) for p in args.paths]}")
    if problems:
        raise SpecError(f"{len(problems)} of {n} spec(s) have problems:\n" + "\n".join(problems))
    return 0


def _sample_db(args: argparse.Namespace) -> int:
    from framecast.choropleth.sample import country_codes, load_table

    rows = load_table(args.url, args.table, country_codes(args.countries), args.days,
                      warts=args.warts)
    print(f"{args.table}: {rows} rows")
    return 0
