"""``framecast metrics ...``: query and feed the metrics database from a shell.

Subcommands:
  runs     recent runs with their timing summary
  show     per product/region timings of one run
  ingest   store a run directory's frame records (idempotent)
  check    performance budget check of a stored run (exit 8 when an alert is due)
  report   write the PNG/HTML run report into a run directory
  emit     send a run directory's frame timers to StatsD (FRAMECAST_STATSD_HOST)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from framecast.errors import DataError, SpecError
from framecast.metrics import budget, emit, messages, report, store
from framecast.redact import redact

BUDGET_EXIT = 8


def _db(args: argparse.Namespace) -> str:
    return args.db or store.default_db_url()


def cmd_runs(args: argparse.Namespace) -> int:
    rows = store.recent_runs(_db(args), model=args.model, last=args.last)
    if not rows:
        print("no runs stored" + (f" for model {args.model}" if args.model else ""))
        return 0
    print(f"{'model':<12} {'run':<26} {'frames':>6} {'p50 ms':>9} {'p95 ms':>9} "
          f"{'frame s':>9} {'MB':>8} {'max try':>7}")
    for r in rows:
        print(f"{r.model:<12} {r.run:<26} {r.frames:>6} {r.p50_ms:>9.1f} {r.p95_ms:>9.1f} "
              f"{r.total_ms / 1000:>9.1f} {r.bytes / 1e6:>8.2f} {r.max_try:>7}")
    return 0


def _resolve_model(db_url: str, model: str | None, run: str) -> str:
    if model:
        return model
    models = sorted({m for m, r in store.run_keys(db_url, last=10_000) if r == run})
    if not models:
        raise DataError(f"run {run}: no frames stored in {redact(db_url)}")
    if len(models) > 1:
        raise SpecError(f"run {run} exists for models {', '.join(models)}: pass --model")
    return models[0]


def cmd_show(args: argparse.Namespace) -> int:
    db = _db(args)
    run = store.normalize_run(args.run)
    model = _resolve_model(db, args.model, run)
    recs = store.frames(db, model, run)
    if not recs:
        raise DataError(f"model {model} run {run}: no frames stored in {db}")
    s = store.summarize(model, run, recs)
    print(f"{model} {run}: {s.frames} frames, p50 {s.p50_ms:.1f} ms, p95 {s.p95_ms:.1f} ms, "
          f"{s.bytes / 1e6:.2f} MB, max try {s.max_try}")
    print(f"{'product':<20} {'region':<14} {'frames':>6} {'p50 ms':>9} {'p95 ms':>9} "
          f"{'load':>8} {'render':>8} {'encode':>8} {'upload':>8} {'fps/wkr':>8}")
    for g in report.group_stats(recs):
        m = g.stage_median_ms
        print(f"{g.product:<20} {g.region:<14} {g.frames:>6} {g.p50_ms:>9.1f} {g.p95_ms:>9.1f} "
              f"{m['load_ms']:>8.1f} {m['render_ms']:>8.1f} {m['encode_ms']:>8.1f} "
              f"{m['upload_ms']:>8.1f} {g.frames_per_s:>8.2f}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run directory {run_dir} does not exist")
    n = store.ingest_run(_db(args), run_dir)
    print(f"{n} frame rows written from {run_dir}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    db = _db(args)
    run = store.normalize_run(args.run)
    model = _resolve_model(db, args.model, run)
    result = budget.evaluate_run(db, model, run, trailing=args.trailing, factor=args.factor,
                                 min_runs=args.min_runs)
    print(messages.budget_subject(result))
    for r in result.regressions:
        print(f"  {r.product}: p50 {r.current.p50_ms:.0f} ms (baseline {r.baseline_p50_ms:.0f}), "
              f"p95 {r.current.p95_ms:.0f} ms (baseline {r.baseline_p95_ms:.0f})")
    for f in result.retried_frames:
        print(f"  retried: {f.product}/{f.region} steps {list(f.steps)} try {f.max_try}")
    if result.no_baseline:
        print(f"  no baseline yet: {', '.join(result.no_baseline)}")
    return 0 if result.ok else BUDGET_EXIT


def cmd_report(args: argparse.Namespace) -> int:
    index = report.write_report(Path(args.run_dir))
    print(index)
    return 0


def cmd_emit(args: argparse.Namespace) -> int:
    from framecast.records import read_records

    client = emit.statsd_client_from_env()
    if client is None:
        raise SpecError("FRAMECAST_STATSD_HOST is not set: nowhere to send timers")
    n = emit.emit_records(read_records(Path(args.run_dir)), client)
    print(f"{n} timers sent")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``framecast metrics`` and its subcommands."""
    p = subparsers.add_parser("metrics", help="per-frame timing metrics: query, ingest, check",
                              description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="metrics_command", required=True)
    db_help = f"SQLAlchemy URL of the metrics DB (default ${store.DEFAULT_DB_ENV} or {store.DEFAULT_DB_URL})"

    runs = sub.add_parser("runs", help="recent runs with timing summaries")
    runs.add_argument("--db", help=db_help)
    runs.add_argument("--model")
    runs.add_argument("--last", type=int, default=20)
    runs.set_defaults(func=cmd_runs)

    show = sub.add_parser("show", help="timings of one run")
    show.add_argument("run", help="model run: YYYYMMDDHH or ISO 8601")
    show.add_argument("--db", help=db_help)
    show.add_argument("--model")
    show.set_defaults(func=cmd_show)

    ing = sub.add_parser("ingest", help="store a run directory's frame records")
    ing.add_argument("run_dir")
    ing.add_argument("--db", help=db_help)
    ing.set_defaults(func=cmd_ingest)

    chk = sub.add_parser("check", help="budget check against trailing runs (exit 8 on alert)")
    chk.add_argument("run")
    chk.add_argument("--db", help=db_help)
    chk.add_argument("--model")
    chk.add_argument("--factor", type=float, default=1.5)
    chk.add_argument("--trailing", type=int, default=10)
    chk.add_argument("--min-runs", type=int, default=3)
    chk.set_defaults(func=cmd_check)

    rep = sub.add_parser("report", help="write <run_dir>/_report/index.html and plots")
    rep.add_argument("run_dir")
    rep.set_defaults(func=cmd_report)

    em = sub.add_parser("emit", help="send a run directory's timers to StatsD")
    em.add_argument("run_dir")
    em.set_defaults(func=cmd_emit)


if __name__ == "__main__":
    from framecast.cli import main

    sys.exit(main(["metrics", *sys.argv[1:]]))
