"""Per-country time series from a SQL database, aggregated in SQL and streamed in chunks.

The database does the heavy lifting: rows are bucketed into frames (integer frame numbers
computed from the timestamp, dialect-aware for SQLite and PostgreSQL), aggregated per country
and frame (sum / mean / max / min / last), and sent ordered by frame. Python only ever holds one
chunk of aggregated rows and one frame's vector of values, so a table far larger than memory
animates with flat memory use, and any frame range can be streamed on its own (parallel
segments each query only their slice).

Values that are NULL or not numeric are counted per frame and drawn as no data; codes that
match no map feature are counted and reported, never silently dropped.
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from framecast.choropleth.codes import CodeMatcher, clean_code
from framecast.choropleth.geography import Countries
from framecast.choropleth.timecols import TIME_KINDS, TimeColumn, classify, validate_time_unit
from framecast.choropleth.timeline import Timeline
from framecast.errors import DataError, SourceError, SpecError

AGGREGATES = ("sum", "mean", "max", "min", "last")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_PG_NUMERIC = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


@dataclass(frozen=True)
class SourceSpec:
    """Where the rows come from: a table or a query, and which columns mean what.

    ``metric`` names one value column, ``metrics`` several (one query pass, one video each).
    ``time_unit`` says an epoch column counts seconds or milliseconds (detected when left
    out); ``code_type`` says how the code column names places (detected when 'detect').
    ``time_kind`` is not a spec key: it is filled in by :func:`inspect_source`.
    """

    url: str
    code_column: str = "code"
    time_column: str = "date"
    metric: str = "value"
    metrics: tuple[str, ...] | None = None
    table: str | None = None
    query: str | None = None
    aggregate: str = "last"
    chunk_rows: int = 20_000
    frames_per_query: int = 2_000
    time_unit: str | None = None
    code_type: str = "detect"
    time_kind: str | None = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise SpecError("source: give exactly one of 'table' or 'query'")
        if self.metrics is not None:
            if (isinstance(self.metrics, str) or not isinstance(self.metrics, (list, tuple))
                    or not self.metrics):
                raise SpecError(f"source.metrics: {self.metrics!r} must be a non-empty list of "
                                f"column names")
            object.__setattr__(self, "metrics", tuple(self.metrics))
            dup = sorted({m for m in self.metrics if self.metrics.count(m) > 1})
            if dup:
                raise SpecError(f"source.metrics: {dup} listed more than once")
        for key in ("code_column", "time_column", "metric"):
            val = getattr(self, key)
            if not isinstance(val, str) or not _IDENT.match(val):
                raise SpecError(f"source.{key}: {val!r} is not a plain column name")
        for val in self.metrics or ():
            if not isinstance(val, str) or not _IDENT.match(val):
                raise SpecError(f"source.metrics: {val!r} is not a plain column name")
        if self.table is not None and not all(_IDENT.match(p) for p in self.table.split(".")):
            raise SpecError(f"source.table: {self.table!r} is not a table name "
                            f"(name or schema.name)")
        if self.aggregate not in AGGREGATES:
            raise SpecError(f"source.aggregate: {self.aggregate!r} is not one of {AGGREGATES}")
        for key in ("chunk_rows", "frames_per_query"):
            val = getattr(self, key)
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise SpecError(f"source.{key}: {val!r} must be a positive integer")
        validate_time_unit(self.time_unit, "source.time_unit")
        if self.time_kind is not None and self.time_kind not in TIME_KINDS:
            raise SpecError(f"source.time_kind: {self.time_kind!r} is not one of {TIME_KINDS}")

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The value columns, in order (one for a single-metric spec)."""
        return self.metrics or (self.metric,)


# Keys a spec's ``source:`` mapping may hold (time_kind is derived, never written).
SOURCE_KEYS = tuple(sorted({*SourceSpec.__dataclass_fields__} - {"time_kind"} | {"connection"}))


@dataclass
class SourceStats:
    """What the source saw; merged across segments into the run summary."""

    groups: int = 0
    frames_with_data: int = 0
    null_values: int = 0
    non_numeric: int = 0
    unknown_codes: Counter[str] = field(default_factory=Counter)
    matched_codes: set[str] = field(default_factory=set)

    def merge(self, other: SourceStats) -> SourceStats:
        self.groups += other.groups
        self.frames_with_data += other.frames_with_data
        self.null_values += other.null_values
        self.non_numeric += other.non_numeric
        self.unknown_codes.update(other.unknown_codes)
        self.matched_codes |= other.matched_codes
        return self

    def warnings(self) -> list[str]:
        out = []
        if self.unknown_codes:
            codes = ", ".join(f"{c!r} ({n})" for c, n in sorted(self.unknown_codes.items()))
            out.append(f"{len(self.unknown_codes)} country code(s) match no map feature and "
                       f"are not drawn: {codes}")
        if self.null_values:
            out.append(f"{self.null_values} NULL value(s) drawn as no data")
        if self.non_numeric:
            out.append(f"{self.non_numeric} non-numeric value(s) drawn as no data")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"groups": self.groups, "frames_with_data": self.frames_with_data,
                "null_values": self.null_values, "non_numeric": self.non_numeric,
                "unknown_codes": dict(sorted(self.unknown_codes.items())),
                "matched_codes": len(self.matched_codes), "matched": sorted(self.matched_codes),
                "warnings": self.warnings()}


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is reported by the caller
        from framecast.redact import redact

        return redact(url)


#: Seconds one statement against a spec's source may run (``$FRAMECAST_SOURCE_STATEMENT_TIMEOUT``).
DEFAULT_STATEMENT_TIMEOUT = 300.0


def statement_timeout() -> float:
    """The configured statement timeout in seconds (environment, else the default)."""
    raw = os.environ.get("FRAMECAST_SOURCE_STATEMENT_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_STATEMENT_TIMEOUT
    except ValueError:
        raise SourceError(f"FRAMECAST_SOURCE_STATEMENT_TIMEOUT={raw!r} is not a number of "
                          "seconds") from None
    if value <= 0:
        raise SourceError("FRAMECAST_SOURCE_STATEMENT_TIMEOUT must be positive")
    return value


def guard_engine(url: Any, timeout_s: float) -> dict[str, Any]:
    """create_engine() arguments that make every session read-only with a statement timeout.

    A spec's ``query:`` is user SQL run with the connection's rights: PostgreSQL sessions start
    with ``default_transaction_read_only`` and ``statement_timeout``, and no pooled session is
    reused (a query cannot change the settings of a later one); SQLite connections are
    ``query_only`` and a progress handler interrupts a statement past the timeout. Other
    databases are refused: there the guarantees could not be given.
    """
    from sqlalchemy.pool import NullPool

    backend = url.get_backend_name()
    if backend == "postgresql":
        ms = max(1, int(timeout_s * 1000))
        return {"poolclass": NullPool, "connect_args": {
            "options": f"-c default_transaction_read_only=on -c statement_timeout={ms}"}}
    if backend == "sqlite":
        return {"poolclass": NullPool}
    raise SourceError(f"database {safe_url(url.render_as_string(hide_password=True))}: only "
                      "PostgreSQL and SQLite sources can be run read-only with a timeout")


def _guard_sqlite(engine: Any, timeout_s: float) -> None:
    """query_only + a per-statement deadline enforced by SQLite's progress handler."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        state = record.info.setdefault("framecast_deadline", [float("inf")])
        dbapi_conn.execute("PRAGMA query_only = ON")
        dbapi_conn.set_progress_handler(
            lambda: 1 if time.monotonic() > state[0] else 0, 10_000)

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn: Any, *args: Any) -> None:
        conn.info.setdefault("framecast_deadline", [float("inf")])[0] = (
            time.monotonic() + timeout_s)


def make_engine(url: str, *, timeout_s: float | None = None, read_only: bool = True) -> Any:
    """A SQLAlchemy engine; a missing SQLite file is an error, not a new empty database.

    Read-only with a statement timeout (:func:`guard_engine`) unless ``read_only=False``
    (only for framecast's own sample-data writer).
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    if not url:
        raise SourceError("no database: the spec has neither source.url nor "
                          "source.connection; pass --url with a SQLAlchemy URL")
    try:
        u = make_url(url)
    except (ArgumentError, ValueError):
        raise SourceError(f"source.url {safe_url(url)!r} is not a SQLAlchemy database "
                          "URL") from None
    if (u.get_backend_name() == "sqlite" and u.database not in (None, "", ":memory:")
            and not Path(u.database).is_file()):
        raise SourceError(f"SQLite database file {u.database} does not exist "
                              f"(source.url {safe_url(url)})")
    timeout_s = statement_timeout() if timeout_s is None else timeout_s
    try:
        if not read_only:
            return create_engine(u)
        engine = create_engine(u, **guard_engine(u, timeout_s))
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise SourceError(f"cannot use database URL {safe_url(url)}: {exc}") from exc
    if u.get_backend_name() == "sqlite":
        _guard_sqlite(engine, timeout_s)
    return engine


def _q(engine: Any, name: str) -> str:
    prep = engine.dialect.identifier_preparer
    return ".".join(prep.quote(p) for p in name.split("."))


def _numeric_expr(dialect: str, v: str = "v") -> str:
    if dialect == "sqlite":
        return (f"CASE WHEN typeof({v}) IN ('integer', 'real') THEN CAST({v} AS REAL) "
                f"WHEN typeof({v}) = 'text' AND trim({v}) <> '' "
                f"AND NOT trim({v}) GLOB '*[^0-9.eE+-]*' AND trim({v}) GLOB '*[0-9]*' "
                f"THEN CAST(trim({v}) AS REAL) END")
    if dialect == "postgresql":
        return (f"CASE WHEN CAST({v} AS TEXT) ~ '{_PG_NUMERIC}' "
                f"THEN CAST(CAST({v} AS TEXT) AS DOUBLE PRECISION) END")
    return f"CAST({v} AS FLOAT)"


def _bucket_expr(dialect: str, timeline: Timeline, tc: TimeColumn) -> tuple[str, dict[str, Any]]:
    """SQL computing the frame number of ``ts``, with its bound parameters.

    Integer division truncates toward zero in both databases; the shift keeps numerators
    positive for rows just before the first frame (the coarse day filter lets those through),
    so they land on frame -1, not 0.
    """
    iv = timeline.interval
    s = timeline.start
    if iv.months:
        p = {"y0": s.year, "m0": s.month, "stepm": iv.months, "mshift": 2 * iv.months}
        dt = tc.utc_datetime(dialect)
        if dialect == "sqlite":
            months = (f"((CAST(strftime('%Y', {dt}) AS INTEGER) - :y0) * 12 "
                      f"+ CAST(strftime('%m', {dt}) AS INTEGER) - :m0)")
        elif dialect == "postgresql":
            months = (f"((CAST(EXTRACT(YEAR FROM {dt}) AS INTEGER) - :y0) * 12 "
                      f"+ CAST(EXTRACT(MONTH FROM {dt}) AS INTEGER) - :m0)")
        else:
            raise SourceError(f"monthly intervals are not supported for dialect {dialect!r}")
        return f"(({months} + :mshift) / :stepm - 2)", p
    origin = int((s - datetime(1970, 1, 1)).total_seconds())
    shift = -(-3 * 86400 // iv.seconds)
    p = {"origin": origin, "step": iv.seconds, "shift": shift * iv.seconds, "kshift": shift}
    epoch = tc.epoch(dialect)
    if dialect == "sqlite":
        return f"(CAST(({epoch} - :origin + :shift) / :step AS INTEGER) - :kshift)", p
    if dialect == "postgresql":
        return (f"CAST(FLOOR((CAST({epoch} AS DOUBLE PRECISION) - :origin) / :step) "
                f"AS BIGINT)"), p
    raise SourceError(f"database dialect {dialect!r} is not supported (sqlite, postgresql)")


def _origin_sql(engine: Any, spec: SourceSpec) -> str:
    return (_q(engine, spec.table) if spec.table is not None
            else f"({spec.query.strip().rstrip(';')}) AS framecast_q")  # type: ignore[union-attr]


def time_column(engine: Any, spec: SourceSpec) -> TimeColumn:
    """The spec's time column as resolved by :func:`inspect_source` (ISO dates if not yet)."""
    kind = spec.time_kind or ("iso_text" if engine.dialect.name == "sqlite" else "date")
    return TimeColumn(kind, _q(engine, spec.time_column))


def _where(spec: SourceSpec) -> str:
    return spec.table if spec.table is not None else "source.query"


def inspect_source(engine: Any, spec: SourceSpec) -> SourceSpec:
    """Check the columns exist and find the time column's kind; returns the resolved spec.

    Two cheap queries: the column names (no rows) and the time column's MIN/MAX (an index
    on it answers that without a scan).
    """
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    origin = _origin_sql(engine, spec)
    try:
        with engine.connect() as conn:
            cols = list(conn.execute(text(f"SELECT * FROM {origin} LIMIT 0")).keys())
            lower = {c.lower() for c in cols}
            for key, names in (("code_column", [spec.code_column]),
                               ("time_column", [spec.time_column]),
                               ("metrics" if spec.metrics else "metric",
                                list(spec.metric_names))):
                missing = [n for n in names if n.lower() not in lower]
                if missing:
                    raise SourceError(
                        f"source.{key}: column(s) {missing} not in {_where(spec)} "
                        f"({safe_url(spec.url)}); its columns: {cols}")
            if spec.time_kind is not None:
                return spec
            ts = _q(engine, spec.time_column)
            lo, hi = conn.execute(text(f"SELECT MIN({ts}), MAX({ts}) FROM {origin}")).one()
    except SQLAlchemyError as exc:
        raise _source_error(exc, spec, "inspecting the columns") from exc
    if lo is None:
        return replace(spec, time_kind=time_column(engine, spec).kind)
    try:
        kind = classify(lo, hi, dialect=engine.dialect.name, declared_unit=spec.time_unit,
                        column=spec.time_column, where=_where(spec))
    except DataError as exc:
        raise DataError(f"source.time_column: {exc}") from exc
    return replace(spec, time_kind=kind)


def distinct_codes(engine: Any, spec: SourceSpec) -> list[Any]:
    """Every distinct value of the code column (to detect the code system once)."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    code = _q(engine, spec.code_column)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(
                text(f"SELECT DISTINCT {code} FROM {_origin_sql(engine, spec)}"))]
    except SQLAlchemyError as exc:
        raise _source_error(exc, spec, "listing codes") from exc


def _ctes(engine: Any, spec: SourceSpec, timeline: Timeline, a: int,
          b: int) -> tuple[str, dict[str, Any]]:
    """``WITH base AS (...), typed AS (...)``: rows in the range with frame and numeric x_k."""
    dialect = engine.dialect.name
    tc = time_column(engine, spec)
    code = _q(engine, spec.code_column)
    origin = _origin_sql(engine, spec)
    bucket, params = _bucket_expr(dialect, timeline, tc)
    cond, fparams = tc.filter(dialect, timeline.time(a), timeline.time(b))
    params.update(fparams)
    params.update(fa=a, fb=b)
    names = spec.metric_names
    vals = ", ".join(f"{_q(engine, m)} AS v{k}" for k, m in enumerate(names))
    base = f"SELECT {code} AS code, {tc.column} AS ts, {vals} FROM {origin} WHERE {cond}"
    typed_cols = ", ".join(
        f"{_numeric_expr(dialect, f'v{k}')} AS x{k}, CASE WHEN v{k} IS NULL THEN 1 ELSE 0 END AS vn{k}"
        for k in range(len(names)))
    typed = (f"SELECT code, ts, {bucket} AS frame, {tc.utc_datetime(dialect)} AS tdt, "
             f"{typed_cols} FROM base")
    return f"WITH base AS ({base}), typed AS ({typed})", params


def aggregate_sql(engine: Any, spec: SourceSpec, timeline: Timeline, a: int, b: int,
                  *, ordered: bool = True) -> tuple[str, dict[str, Any]]:
    """The aggregation query for frames [a, b), all metrics in one pass.

    Rows are (frame, code) followed by (value, n_null, n_nonnum, n_num, t_last) per metric:
    the counts let the caller combine two codes naming one country (e.g. 'DE' and 'DEU' in
    one table) exactly.
    """
    with_clause, params = _ctes(engine, spec, timeline, a, b)
    m = len(spec.metric_names)
    nonnum = "SUM(CASE WHEN x{k} IS NULL AND vn{k} = 0 THEN 1 ELSE 0 END)"
    if spec.aggregate == "last":
        ranks = ", ".join(
            f"ROW_NUMBER() OVER (PARTITION BY frame, code ORDER BY CASE WHEN x{k} IS NULL "
            f"THEN 1 ELSE 0 END, ts DESC) AS rn{k}" for k in range(m))
        xs = ", ".join(f"x{k}, vn{k}" for k in range(m))
        ranked = (f"SELECT frame, code, ts, tdt, {xs}, {ranks} FROM typed "
                  f"WHERE frame >= :fa AND frame < :fb")
        cols = ", ".join(
            f"MAX(CASE WHEN rn{k} = 1 THEN x{k} END) AS value{k}, SUM(vn{k}) AS n_null{k}, "
            f"{nonnum.format(k=k)} AS n_nonnum{k}, COUNT(x{k}) AS n_num{k}, "
            f"MAX(CASE WHEN rn{k} = 1 THEN CAST(tdt AS VARCHAR(40)) END) AS t_last{k}"
            for k in range(m))
        sql = (f"{with_clause}, ranked AS ({ranked}) "
               f"SELECT frame, code, {cols} FROM ranked GROUP BY frame, code")
    else:
        fn = {"sum": "SUM", "mean": "AVG", "max": "MAX", "min": "MIN"}[spec.aggregate]
        cols = ", ".join(
            f"{fn}(x{k}) AS value{k}, SUM(vn{k}) AS n_null{k}, {nonnum.format(k=k)} AS "
            f"n_nonnum{k}, COUNT(x{k}) AS n_num{k}, NULL AS t_last{k}" for k in range(m))
        sql = (f"{with_clause} SELECT frame, code, {cols} FROM typed "
               f"WHERE frame >= :fa AND frame < :fb GROUP BY frame, code")
    if ordered:
        sql += " ORDER BY frame, code"
    return sql, params


def _source_error(exc: Exception, spec: SourceSpec, what: str) -> SourceError:
    from sqlalchemy.exc import DBAPIError, OperationalError

    where = spec.table if spec.table is not None else "source.query"
    msg = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    if isinstance(exc, OperationalError) and _looks_unreachable(msg):
        return SourceError(f"cannot connect to database {safe_url(spec.url)}: {msg}")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return SourceError(f"lost connection to database {safe_url(spec.url)}: {msg}")
    if msg == "interrupted" or "statement timeout" in msg:
        msg = f"{msg}: exceeded the statement timeout (FRAMECAST_SOURCE_STATEMENT_TIMEOUT)"
    return SourceError(f"{what} on {where} ({safe_url(spec.url)}) failed: {msg}")


def _looks_unreachable(msg: str) -> bool:
    m = msg.lower()
    return any(s in m for s in ("could not connect", "connection refused", "connection to server",
                                "could not translate host", "timeout expired",
                                "unable to open database", "password authentication failed",
                                "does not exist") ) and "relation" not in m and "column" not in m


def value_ranges(engine: Any, spec: SourceSpec, timeline: Timeline, *,
                 aggregated: bool = True) -> list[tuple[float | None, float | None]]:
    """Min and max of each metric over the whole timeline, computed in SQL in one query.

    ``aggregated=False`` takes the range of the raw numeric values instead: one plain scan
    (no grouping or window sort), enough to check that the range holds data at all when the
    colour scale is fixed by the spec.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    spec = _resolved(engine, spec)
    m = len(spec.metric_names)
    if aggregated:
        sql, params = aggregate_sql(engine, spec, timeline, 0, len(timeline), ordered=False)
        cols = ", ".join(f"MIN(value{k}), MAX(value{k})" for k in range(m))
        query = f"SELECT {cols} FROM ({sql}) AS agg"
    else:
        with_clause, params = _ctes(engine, spec, timeline, 0, len(timeline))
        cols = ", ".join(f"MIN(x{k}), MAX(x{k})" for k in range(m))
        query = f"{with_clause} SELECT {cols} FROM typed WHERE frame >= :fa AND frame < :fb"
    try:
        with engine.connect() as conn:
            row = conn.execute(text(query), params).one()
    except SQLAlchemyError as exc:
        raise _source_error(exc, spec, "range query") from exc
    return [(None if row[2 * k] is None else float(row[2 * k]),
             None if row[2 * k + 1] is None else float(row[2 * k + 1])) for k in range(m)]


def value_range(engine: Any, spec: SourceSpec, timeline: Timeline, *,
                aggregated: bool = True) -> tuple[float | None, float | None]:
    """Min and max of the (first) metric: see :func:`value_ranges`."""
    return value_ranges(engine, spec, timeline, aggregated=aggregated)[0]


def _resolved(engine: Any, spec: SourceSpec) -> SourceSpec:
    return spec if spec.time_kind is not None else inspect_source(engine, spec)


def _combine(agg: str, old: float, old_meta: tuple[int, str | None], new: float,
             new_meta: tuple[int, str | None]) -> tuple[float, tuple[int, str | None]]:
    """Merge two codes' aggregates for one country and frame, as SQL would have."""
    n_old, t_old = old_meta
    n_new, t_new = new_meta[0], None if new_meta[1] is None else str(new_meta[1])
    meta = (n_old + n_new, max(t for t in (t_old, t_new) if t is not None)
            if (t_old or t_new) else None)
    if agg == "sum":
        return old + new, meta
    if agg == "max":
        return max(old, new), meta
    if agg == "min":
        return min(old, new), meta
    if agg == "mean":
        return (old * n_old + new * n_new) / max(1, n_old + n_new), meta
    return (new if (t_new or "") >= (t_old or "") else old), meta


def _matcher(spec: SourceSpec, features: Countries | CodeMatcher) -> CodeMatcher:
    if isinstance(features, CodeMatcher):
        return features
    code_type = "iso_a2+iso_a3" if spec.code_type == "detect" else spec.code_type
    return CodeMatcher(features, code_type, level=features.level)


def stream_frames(engine: Any, spec: SourceSpec, timeline: Timeline,
                  countries: Countries | CodeMatcher, a: int, b: int,
                  stats: SourceStats) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame, values) for every frame in [a, b), in order; values NaN where no data.

    ``values`` is (n_features,) for the first metric; :func:`stream_metric_frames` yields all
    metrics. ``countries`` is the map's features (codes read as ISO alpha-2/alpha-3) or a
    :class:`~framecast.choropleth.codes.CodeMatcher` for any code system.
    """
    for i, v in stream_metric_frames(engine, spec, timeline, countries, a, b, stats):
        yield i, v[0]


def stream_metric_frames(engine: Any, spec: SourceSpec, timeline: Timeline,
                         countries: Countries | CodeMatcher, a: int, b: int,
                         stats: SourceStats) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame, values) with values (n_metrics, n_features), NaN where no data.

    The range is queried ``frames_per_query`` frames at a time: the database sorts and groups
    one window (bounded work and temp space, first frame quickly) instead of the whole range
    up front. Within a window rows come through a server-side cursor (``stream_results``),
    ``chunk_rows`` at a time. Frames without any row still yield (all no data), so the video's
    time axis stays regular. All metrics come from the same rows: one pass over the table.
    """
    spec = _resolved(engine, spec)
    matcher = _matcher(spec, countries)
    for wa in range(a, b, spec.frames_per_query):
        yield from _stream_window(engine, spec, timeline, matcher, wa,
                                  min(b, wa + spec.frames_per_query), stats)


def _stream_window(engine: Any, spec: SourceSpec, timeline: Timeline, matcher: CodeMatcher,
                   a: int, b: int, stats: SourceStats) -> Iterator[tuple[int, np.ndarray]]:
    """One query for frames [a, b); see :func:`stream_metric_frames`."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    n = len(matcher.features)
    m = len(spec.metric_names)
    sql, params = aggregate_sql(engine, spec, timeline, a, b)
    index_of = matcher.index_of  # cached per raw code: the hot loop is a dict lookup per row
    drawn: set[Any] = set()
    next_frame = a
    cur_frame: int | None = None
    values = np.full((m, n), np.nan)
    seen: dict[tuple[int, int], tuple[int, str | None]] = {}
    groups = nulls = nonnum = 0
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True,
                                            yield_per=spec.chunk_rows).execute(text(sql), params)
            for chunk in result.partitions(spec.chunk_rows):
                groups += len(chunk)
                for row in chunk:
                    frame = row[0]
                    if frame != cur_frame:
                        frame = int(frame)
                        if cur_frame is not None:
                            stats.frames_with_data += 1
                            yield cur_frame, values
                            next_frame = cur_frame + 1
                        while next_frame < frame:
                            yield next_frame, np.full((m, n), np.nan)
                            next_frame += 1
                        cur_frame = frame
                        values = np.full((m, n), np.nan)
                        seen = {}
                    code = row[1]
                    for k in range(m):
                        n_null, n_nonnum = row[3 + 5 * k], row[4 + 5 * k]
                        if n_null:
                            nulls += int(n_null)
                        if n_nonnum:
                            nonnum += int(n_nonnum)
                    idx = index_of(code)
                    if idx is None:
                        stats.unknown_codes[clean_code(code) or "<NULL>"] += 1
                        continue
                    if code not in drawn:  # once per distinct code, not per row
                        drawn.add(code)
                        stats.matched_codes.add(clean_code(code) or "")
                    for k in range(m):
                        value = row[2 + 5 * k]
                        if value is None:
                            continue
                        meta = (int(row[5 + 5 * k]), row[6 + 5 * k])
                        if (k, idx) in seen:
                            value, seen[k, idx] = _combine(spec.aggregate, values[k, idx],
                                                           seen[k, idx], float(value), meta)
                        else:
                            seen[k, idx] = (meta[0], None if meta[1] is None else str(meta[1]))
                        values[k, idx] = value
    except SQLAlchemyError as exc:
        raise _source_error(exc, spec, "query") from exc
    finally:
        stats.groups += groups
        stats.null_values += nulls
        stats.non_numeric += nonnum
    if cur_frame is not None:
        stats.frames_with_data += 1
        yield cur_frame, values
        next_frame = cur_frame + 1
    while next_frame < b:
        yield next_frame, np.full((m, n), np.nan)
        next_frame += 1


_DRIVERS = {"postgres": "postgresql+psycopg2", "postgresql": "postgresql+psycopg2",
            "mysql": "mysql+pymysql", "mssql": "mssql+pymssql"}


def url_from_connection(conn_type: str, *, host: str | None = None, login: str | None = None,
                        password: str | None = None, port: int | None = None,
                        schema: str | None = None, extra: dict[str, Any] | None = None) -> str:
    """A SQLAlchemy URL from a stored connection's fields (e.g. an Airflow Connection).

    Airflow's own ``get_uri()`` yields ``postgres://`` and ``sqlite://%2Fpath`` forms that
    SQLAlchemy does not accept; ``extra["sqlalchemy_url"]`` overrides everything.
    """
    from sqlalchemy.engine import URL

    extra = extra or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    ctype = (conn_type or "").lower()
    if ctype == "sqlite":
        path = host or schema
        if not path:
            raise SourceError("sqlite connection has no database path (put it in 'host')")
        return f"sqlite:///{path}"
    driver = _DRIVERS.get(ctype)
    if driver is None:
        raise SourceError(f"connection type {conn_type!r} is not supported; use sqlite or "
                          f"postgres, or set extra.sqlalchemy_url")
    url = URL.create(driver, username=login or None, password=password or None,
                     host=host or None, port=int(port) if port else None,
                     database=schema or None)
    return url.render_as_string(hide_password=False)
