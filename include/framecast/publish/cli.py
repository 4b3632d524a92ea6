"""Publish a rendered run (frames, videos, manifest, viewer) to a folder or an FTP/FTPS/SFTP server.

Usage: ``framecast publish RUN_DIR --target URL``.

Model and run time default to what the run folder's frame records say (the folder layout is
``<out_root>/<model>/<YYYYMMDDHH>``), so the usual call needs only the folder and the target.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from framecast.errors import DataError, SpecError
from framecast.records import read_records


def _fps(text: str) -> float:
    """--fps: a plain number in (0, 120] (it ends up in ffmpeg's command line)."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or not 0 < value <= 120:
        raise argparse.ArgumentTypeError(f"{text!r} must be in (0, 120]")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "publish",
        help="upload a rendered run (frames, videos, manifest, viewer) to a web server",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("run_dir", type=Path, help="rendered run folder <out>/<model>/<YYYYMMDDHH>")
    p.add_argument(
        "--target", required=True,
        help="file:///dir, ftp://user:pass@host:port/root, ftps://..., sftp://user@host:port/root",
    )
    p.add_argument("--password", help="password (default: from the URL or $FRAMECAST_PUBLISH_PASSWORD)")
    p.add_argument("--key", type=Path, help="SSH private key file for sftp://")
    p.add_argument("--known-hosts", type=Path, help="known_hosts file with the SFTP server's key")
    p.add_argument("--accept-unknown-host", action="store_true",
                   help="first contact: accept an SFTP host key not in --known-hosts and record it "
                   "there (later connections refuse a changed key)")
    p.add_argument("--ca-file", type=Path, help="CA/cert file to trust for ftps://")
    p.add_argument("--insecure-tls", action="store_true", help="do not verify the FTPS certificate")
    p.add_argument("--model", help="model name (default: from the frame records)")
    p.add_argument("--run", help="run time YYYYMMDDHH (default: from the frame records)")
    p.add_argument("--product", action="append", dest="products",
                   help="publish only this product (repeatable); without --final the run stays "
                        "in progress and latest is not switched")
    p.add_argument("--final", action="store_true",
                   help="with --product: still treat the run as complete and switch latest")
    p.add_argument("--retention", type=int, default=None, help="keep the N newest runs")
    p.add_argument("--workers", type=int, default=4, help="parallel connections (default 4)")
    p.add_argument("--retries", type=int, default=5, help="reconnects per file (default 5)")
    p.add_argument("--video", action="store_true", help="encode MP4 + GIF per product/region first")
    p.add_argument("--fps", type=_fps, default=4.0, help="video frame rate (default 4)")
    p.add_argument("--no-viewer", action="store_true", help="do not upload the HTML viewer")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _run_identity(args: argparse.Namespace) -> tuple[str, datetime]:
    records = read_records(args.run_dir)
    model = args.model or (records[0].model if records else args.run_dir.parent.name)
    if args.run:
        text = args.run
    elif records and records[0].run:
        text = records[0].run
    else:
        text = args.run_dir.name
    try:
        if len(text) == 10 and text.isdigit():
            run_time = datetime.strptime(text, "%Y%m%d%H").replace(tzinfo=UTC)
        else:
            run_time = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SpecError(f"run time {text!r}: expected YYYYMMDDHH or ISO 8601") from exc
    return model, run_time


def run(args: argparse.Namespace) -> int:
    from framecast.publish.publisher import publish_product, publish_run
    from framecast.publish.url import target_from_url

    if not args.run_dir.is_dir():
        raise DataError(f"run folder {args.run_dir} does not exist")
    model, run_time = _run_identity(args)
    if args.video:
        from framecast.animate import animate_run

        made = animate_run(args.run_dir, products=args.products, fps=args.fps)
        print(f"videos: {len(made)} product/region pairs encoded", file=sys.stderr)
    target = target_from_url(
        args.target,
        password=args.password or os.environ.get("FRAMECAST_PUBLISH_PASSWORD"),
        key_file=args.key, known_hosts=args.known_hosts,
        accept_unknown_host=args.accept_unknown_host, ca_file=args.ca_file,
        verify_tls=not args.insecure_tls,
    )
    bar = None
    progress = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(unit="file", desc="publish")

        def progress(done: int, total: int, _path: str) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

    common = dict(model=model, run_time=run_time, workers=args.workers, progress=progress,
                  retries=args.retries, viewer=not args.no_viewer)
    try:
        if args.products and not args.final:
            report = publish_product(args.run_dir, target, args.products, **common)
        else:
            report = publish_run(args.run_dir, target, products=args.products,
                                 retention=args.retention, **common)
    finally:
        if bar is not None:
            bar.close()
    print(report.summary())
    return 0
