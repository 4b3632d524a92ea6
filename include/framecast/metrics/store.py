"""The metrics database: one row per rendered frame, one row per task try.

Why a database and not just the ``_records`` files: budget checks and the ops view need the
trailing runs of a model, which are long gone from the publish folders. Why upserts: Airflow
retries a failed mapped task, and the retry renders (and records) the same frames again; keying
rows by ``(model, run, product, region, step)`` means the table holds exactly one row per frame
whatever happened, and the latest try's timings win.

SQLite is the default (a file next to the deployment, nothing to run); PostgreSQL works the
same through SQLAlchemy's dialect-specific ``INSERT ... ON CONFLICT``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    func,
    select,
    tuple_,
)
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    NoSuchModuleError,
    ProgrammingError,
    SQLAlchemyError,
)

from framecast.errors import SourceError, SpecError
from framecast.records import FrameRecord, read_records
from framecast.redact import redact

DEFAULT_DB_ENV = "FRAMECAST_METRICS_DB"
DEFAULT_DB_URL = "sqlite:///framecast-metrics.sqlite"

metadata = MetaData()

frame_timings = Table(
    "framecast_frame_timings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("run", String(40), nullable=False),
    Column("product", String(128), nullable=False),
    Column("region", String(128), nullable=False),
    Column("step", Integer, nullable=False),
    Column("path", String(512), nullable=False, default=""),
    Column("load_ms", Float, nullable=False, default=0.0),
    Column("render_ms", Float, nullable=False, default=0.0),
    Column("encode_ms", Float, nullable=False, default=0.0),
    Column("upload_ms", Float, nullable=False, default=0.0),
    Column("total_ms", Float, nullable=False, default=0.0),
    Column("bytes", Integer, nullable=False, default=0),
    Column("host", String(255), nullable=False, default=""),
    Column("try_number", Integer, nullable=False, default=0),
    Column("valid_time", String(40), nullable=False, default=""),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model", "run", "product", "region", "step", name="uq_framecast_frame"),
)

task_tries = Table(
    "framecast_task_tries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("task_id", String(250), nullable=False),
    Column("map_index", Integer, nullable=False, default=-1),
    Column("try_number", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("model", String(64), nullable=False, default=""),
    Column("run", String(40), nullable=False, default=""),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "dag_id", "run_id", "task_id", "map_index", "try_number", name="uq_framecast_task_try"
    ),
)

dag_runs = Table(
    "framecast_dag_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(64), nullable=False),
    Column("run", String(40), nullable=False),
    Column("dag_id", String(250), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("report_url", String(1024), nullable=False, default=""),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("model", "run", name="uq_framecast_dag_run"),
)

FRAME_COLUMNS = ("path", "load_ms", "render_ms", "encode_ms", "upload_ms", "bytes", "host",
                 "try_number", "valid_time")


@dataclass(frozen=True)
class RunSummary:
    """Timing summary of one model run, as listed by ``framecast metrics runs`` and the UI."""

    model: str
    run: str
    frames: int
    products: int
    total_ms: float
    p50_ms: float
    p95_ms: float
    bytes: int
    max_try: int
    last_recorded: datetime | None
    dag_id: str = ""
    run_id: str = ""
    report_url: str = ""


@dataclass(frozen=True)
class TaskTry:
    """One try of one Airflow task instance (``map_index`` -1 for unmapped tasks)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    state: str
    model: str = ""
    run: str = ""


def default_db_url() -> str:
    """``$FRAMECAST_METRICS_DB`` or a SQLite file in the working directory."""
    return os.environ.get(DEFAULT_DB_ENV) or DEFAULT_DB_URL


def normalize_run(run: str) -> str:
    """Accept ``YYYYMMDDHH`` or ISO 8601 and return the ISO UTC form records use.

    Records store the run as ``2026-11-23T00:00:00+00:00``; operators type ``2026112300``.
    """
    text = run.strip()
    try:
        if len(text) == 10 and text.isdigit():
            dt = datetime.strptime(text, "%Y%m%d%H").replace(tzinfo=UTC)
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
    except ValueError as exc:
        raise SpecError(
            f"run {run!r}: expected YYYYMMDDHH or an ISO 8601 time such as 2026-11-23T00:00:00Z"
        ) from exc
    return dt.astimezone(UTC).isoformat()


@lru_cache(maxsize=16)
def get_engine(db_url: str) -> Engine:
    """Engine for ``db_url`` with the tables created; cached so tasks reuse one pool."""
    try:
        if db_url.startswith("sqlite:///") and not db_url.startswith("sqlite:///:memory:"):
            Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(db_url, pool_pre_ping=True)
        _create_tables(engine)
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise SpecError(f"metrics database URL {redact(db_url)!r} is not a valid SQLAlchemy "
                        "URL") from None
    except SQLAlchemyError as exc:
        raise SourceError(f"metrics database {_safe(db_url)} unreachable: {exc}") from exc
    return engine


def _create_tables(engine: Engine) -> None:
    """Create missing tables; a second try absorbs the race of many tasks starting at once.

    Two processes creating the same table on a fresh PostgreSQL database can both pass the
    existence check; the loser gets a duplicate-object error, and its retry then finds the table.
    """
    try:
        metadata.create_all(engine)
    except (IntegrityError, ProgrammingError):
        time.sleep(0.2)
        metadata.create_all(engine)


def _safe(db_url: str) -> str:
    """The URL without its password, for error messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(db_url).render_as_string(hide_password=True)
    except ArgumentError:
        return redact(db_url)


def _insert(engine: Engine, table: Table):
    """Dialect-specific INSERT that supports ``ON CONFLICT`` (SQLite and PostgreSQL)."""
    name = engine.dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise SpecError(f"metrics database dialect {name!r} unsupported: use sqlite or postgresql")
    return insert(table)


def _frame_row(rec: FrameRecord, now: datetime) -> dict:
    return {
        "model": rec.model,
        "run": normalize_run(rec.run),
        "product": rec.product,
        "region": rec.region,
        "step": int(rec.step),
        "path": rec.path,
        "load_ms": float(rec.load_ms),
        "render_ms": float(rec.render_ms),
        "encode_ms": float(rec.encode_ms),
        "upload_ms": float(rec.upload_ms),
        "total_ms": frame_total_ms(rec),
        "bytes": int(rec.bytes),
        "host": rec.host,
        "try_number": int(rec.try_number),
        "valid_time": rec.valid_time,
        "recorded_at": now,
    }


def frame_total_ms(rec: FrameRecord) -> float:
    """Time one frame cost end to end: load + render + encode + upload."""
    return float(rec.load_ms + rec.render_ms + rec.encode_ms + rec.upload_ms)


def upsert_frames(db_url: str, records: Iterable[FrameRecord]) -> int:
    """Insert or replace frame rows by frame key; returns the number of records written.

    A row written by a later try replaces the earlier one; an older try arriving late (a
    re-ingest of stale records) does not overwrite a newer one.
    """
    engine = get_engine(db_url)
    now = datetime.now(UTC)
    by_key = {}
    for rec in records:
        row = _frame_row(rec, now)
        key = (row["model"], row["run"], row["product"], row["region"], row["step"])
        if key not in by_key or row["try_number"] >= by_key[key]["try_number"]:
            by_key[key] = row
    rows = list(by_key.values())
    if not rows:
        return 0
    stmt = _insert(engine, frame_timings)
    updates = {c: stmt.excluded[c] for c in (*FRAME_COLUMNS, "total_ms", "recorded_at")}
    stmt = stmt.on_conflict_do_update(
        index_elements=["model", "run", "product", "region", "step"],
        set_=updates,
        where=stmt.excluded.try_number >= frame_timings.c.try_number,
    )
    try:
        with engine.begin() as conn:
            conn.execute(stmt, rows)
    except SQLAlchemyError as exc:
        raise SourceError(f"writing {len(rows)} frame rows to {_safe(db_url)} failed: {exc}") from exc
    return len(rows)


def ingest_run(db_url: str, run_dir: Path | str) -> int:
    """Store every frame record of ``run_dir`` (its ``_records/*.jsonl``); returns the count."""
    records = read_records(Path(run_dir))
    return upsert_frames(db_url, records)


def record_task_try(db_url: str, attempt: TaskTry) -> None:
    """Store one task try (idempotent: the same try recorded twice keeps one row, last state)."""
    engine = get_engine(db_url)
    stmt = _insert(engine, task_tries)
    row = {
        "dag_id": attempt.dag_id,
        "run_id": attempt.run_id,
        "task_id": attempt.task_id,
        "map_index": int(attempt.map_index),
        "try_number": int(attempt.try_number),
        "state": attempt.state,
        "model": attempt.model,
        "run": normalize_run(attempt.run) if attempt.run else "",
        "recorded_at": datetime.now(UTC),
    }
    stmt = stmt.on_conflict_do_update(
        index_elements=["dag_id", "run_id", "task_id", "map_index", "try_number"],
        set_={"state": stmt.excluded.state, "recorded_at": stmt.excluded.recorded_at},
    )
    try:
        with engine.begin() as conn:
            conn.execute(stmt, [row])
    except SQLAlchemyError as exc:
        raise SourceError(f"writing task try to {_safe(db_url)} failed: {exc}") from exc


def register_run(db_url: str, model: str, run: str, dag_id: str, run_id: str,
                 report_url: str = "") -> None:
    """Remember which Airflow DAG run produced a model run, so views can link to it."""
    engine = get_engine(db_url)
    stmt = _insert(engine, dag_runs)
    row = {"model": model, "run": normalize_run(run), "dag_id": dag_id, "run_id": run_id,
           "report_url": report_url, "recorded_at": datetime.now(UTC)}
    stmt = stmt.on_conflict_do_update(
        index_elements=["model", "run"],
        set_={c: stmt.excluded[c] for c in ("dag_id", "run_id", "report_url", "recorded_at")},
    )
    try:
        with engine.begin() as conn:
            conn.execute(stmt, [row])
    except SQLAlchemyError as exc:
        raise SourceError(f"writing DAG run link to {_safe(db_url)} failed: {exc}") from exc


def task_tries_of(db_url: str, dag_id: str, run_id: str) -> list[TaskTry]:
    """Every recorded try of one DAG run, ordered by task, map index and try."""
    engine = get_engine(db_url)
    q = (
        select(task_tries)
        .where(task_tries.c.dag_id == dag_id, task_tries.c.run_id == run_id)
        .order_by(task_tries.c.task_id, task_tries.c.map_index, task_tries.c.try_number)
    )
    with engine.connect() as conn:
        return [
            TaskTry(r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number, r.state, r.model,
                    r.run)
            for r in conn.execute(q)
        ]


def retried_tasks(db_url: str, dag_id: str, run_id: str) -> list[TaskTry]:
    """Task instances of one DAG run that needed a retry: the latest recorded try of each.

    A task needed a retry when a try after the first was recorded, or when any try was recorded
    as ``up_for_retry`` (enough when only ``on_retry_callback`` records tries).
    """
    latest: dict[tuple[str, int], TaskTry] = {}
    retried: set[tuple[str, int]] = set()
    for t in task_tries_of(db_url, dag_id, run_id):
        key = (t.task_id, t.map_index)
        if key not in latest or t.try_number >= latest[key].try_number:
            latest[key] = t
        if t.try_number > 1 or t.state == "up_for_retry":
            retried.add(key)
    return [t for key, t in latest.items() if key in retried]


def _row_to_record(r) -> FrameRecord:
    return FrameRecord(
        model=r.model, run=r.run, product=r.product, region=r.region, step=r.step, path=r.path,
        load_ms=r.load_ms, render_ms=r.render_ms, encode_ms=r.encode_ms, upload_ms=r.upload_ms,
        bytes=r.bytes, host=r.host, try_number=r.try_number, valid_time=r.valid_time,
    )


def frames(db_url: str, model: str, run: str) -> list[FrameRecord]:
    """All stored frames of one model run, sorted by product, region, step."""
    engine = get_engine(db_url)
    t = frame_timings.c
    q = (
        select(frame_timings)
        .where(t.model == model, t.run == normalize_run(run))
        .order_by(t.product, t.region, t.step)
    )
    with engine.connect() as conn:
        return [_row_to_record(r) for r in conn.execute(q)]


def count_frames(db_url: str, model: str | None = None, run: str | None = None) -> int:
    """Number of stored frame rows (optionally of one model / run)."""
    engine = get_engine(db_url)
    q = select(func.count()).select_from(frame_timings)
    if model:
        q = q.where(frame_timings.c.model == model)
    if run:
        q = q.where(frame_timings.c.run == normalize_run(run))
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def run_keys(db_url: str, model: str | None = None, last: int = 20,
             before: str | None = None) -> list[tuple[str, str]]:
    """``(model, run)`` of the most recent runs, newest first."""
    engine = get_engine(db_url)
    t = frame_timings.c
    q = select(t.model, t.run).group_by(t.model, t.run)
    if model:
        q = q.where(t.model == model)
    if before:
        q = q.where(t.run < normalize_run(before))
    q = q.order_by(t.run.desc(), t.model).limit(max(int(last), 0))
    with engine.connect() as conn:
        return [(r.model, r.run) for r in conn.execute(q)]


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) without needing numpy arrays."""
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarize(model: str, run: str, records: Sequence[FrameRecord],
              last_recorded: datetime | None = None, dag_id: str = "", run_id: str = "",
              report_url: str = "") -> RunSummary:
    """Pure summary of one run's frames."""
    totals = [frame_total_ms(r) for r in records]
    return RunSummary(
        model=model,
        run=run,
        frames=len(records),
        products=len({r.product for r in records}),
        total_ms=sum(totals),
        p50_ms=percentile(totals, 50),
        p95_ms=percentile(totals, 95),
        bytes=sum(int(r.bytes) for r in records),
        max_try=max((int(r.try_number) for r in records), default=0),
        last_recorded=last_recorded,
        dag_id=dag_id,
        run_id=run_id,
        report_url=report_url,
    )


def recent_runs(db_url: str, model: str | None = None, last: int = 20) -> list[RunSummary]:
    """Summaries of the most recent runs (newest first), for the CLI and the ops view.

    Three queries whatever ``last`` is (run keys, their frames, their DAG-run links), so a
    page listing a hundred runs costs three round trips, not three per run.
    """
    engine = get_engine(db_url)
    keys = run_keys(db_url, model=model, last=last)
    if not keys:
        return []
    t, d = frame_timings.c, dag_runs.c
    recs: dict[tuple[str, str], list[FrameRecord]] = {k: [] for k in keys}
    latest: dict[tuple[str, str], datetime] = {}
    with engine.connect() as conn:
        q = (select(frame_timings).where(tuple_(t.model, t.run).in_(keys))
             .order_by(t.model, t.run, t.product, t.region, t.step))
        for r in conn.execute(q):
            key = (r.model, r.run)
            recs[key].append(_row_to_record(r))
            if key not in latest or r.recorded_at > latest[key]:
                latest[key] = r.recorded_at
        links = {
            (r.model, r.run): (r.dag_id, r.run_id, r.report_url)
            for r in conn.execute(select(d.model, d.run, d.dag_id, d.run_id, d.report_url)
                                  .where(tuple_(d.model, d.run).in_(keys)))
        }
    return [summarize(m, run, recs[(m, run)], latest.get((m, run)),
                      *links.get((m, run), ("", "", "")))
            for m, run in keys]
