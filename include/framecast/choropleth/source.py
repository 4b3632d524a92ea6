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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from framecast.choropleth.geography import Countries
from framecast.choropleth.timeline import Timeline
from framecast.errors import SourceError, SpecError

AGGREGATES = ("sum", "mean", "max", "min", "last")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_PG_NUMERIC = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"


@dataclass(frozen=True)
class SourceSpec:
    """Where the rows come from: a table or a query, and which columns mean what."""

    url: str
    code_column: str = "code"
    time_column: str = "date"
    metric: str = "value"
    table: str | None = None
    query: str | None = None
    aggregate: str = "last"
    chunk_rows: int = 20_000
    frames_per_query: int = 2_000

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise SpecError("source: give exactly one of 'table' or 'query'")
        for key in ("code_column", "time_column", "metric"):
            val = getattr(self, key)
            if not isinstance(val, str) or not _IDENT.match(val):
                raise SpecError(f"source.{key}: {val!r} is not a plain column name")
        if self.table is not None and not all(_IDENT.match(p) for p in self.table.split(".")):
            raise SpecError(f"source.table: {self.table!r} is not a table name "
                            f"(name or schema.name)")
        if self.aggregate not in AGGREGATES:
            raise SpecError(f"source.aggregate: {self.aggregate!r} is not one of {AGGREGATES}")
        for key in ("chunk_rows", "frames_per_query"):
            val = getattr(self, key)
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise SpecError(f"source.{key}: {val!r} must be a positive integer")


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
                "matched_codes": len(self.matched_codes), "warnings": self.warnings()}


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


def _numeric_expr(dialect: str) -> str:
    if dialect == "sqlite":
        return ("CASE WHEN typeof(v) IN ('integer', 'real') THEN CAST(v AS REAL) "
                "WHEN typeof(v) = 'text' AND trim(v) <> '' "
                "AND NOT trim(v) GLOB '*[^0-9.eE+-]*' AND trim(v) GLOB '*[0-9]*' "
                "THEN CAST(trim(v) AS REAL) END")
    if dialect == "postgresql":
        return (f"CASE WHEN CAST(v AS TEXT) ~ '{_PG_NUMERIC}' "
                "THEN CAST(CAST(v AS TEXT) AS DOUBLE PRECISION) END")
    return "CAST(v AS FLOAT)"


def _bucket_expr(dialect: str, timeline: Timeline) -> tuple[str, dict[str, Any]]:
    """SQL computing the frame number of ``ts``, with its bound parameters."""
    iv = timeline.interval
    s = timeline.start
    if iv.months:
        p = {"y0": s.year, "m0": s.month, "stepm": iv.months}
        if dialect == "sqlite":
            months = ("((CAST(strftime('%Y', ts) AS INTEGER) - :y0) * 12 "
                      "+ CAST(strftime('%m', ts) AS INTEGER) - :m0)")
        elif dialect == "postgresql":
            months = ("((CAST(EXTRACT(YEAR FROM ts) AS INTEGER) - :y0) * 12 "
                      "+ CAST(EXTRACT(MONTH FROM ts) AS INTEGER) - :m0)")
        else:
            raise SourceError(f"monthly intervals are not supported for dialect {dialect!r}")
        return f"({months} / :stepm)", p
    origin = int((s - datetime(1970, 1, 1)).total_seconds())
    p = {"origin": origin, "step": iv.seconds}
    if dialect == "sqlite":
        import sqlite3

        # unixepoch() (SQLite >= 3.38) parses about twice as fast as strftime('%s').
        epoch = ("unixepoch(ts)" if sqlite3.sqlite_version_info >= (3, 38)
                 else "CAST(strftime('%s', ts) AS INTEGER)")
        return f"(({epoch} - :origin) / :step)", p
    if dialect == "postgresql":
        return "CAST(FLOOR((EXTRACT(EPOCH FROM ts) - :origin) / :step) AS BIGINT)", p
    raise SourceError(f"database dialect {dialect!r} is not supported (sqlite, postgresql)")


def aggregate_sql(engine: Any, spec: SourceSpec, timeline: Timeline, a: int, b: int,
                  *, ordered: bool = True) -> tuple[str, dict[str, Any]]:
    """The aggregation query for frames [a, b).

    Rows are (frame, code, value, n_null, n_nonnum, n_num, t_last): the counts let the
    caller combine two codes naming one country (e.g. 'DE' and 'DEU' in one table) exactly.
    """
    dialect = engine.dialect.name
    code, ts, metric = (_q(engine, c) for c in (spec.code_column, spec.time_column, spec.metric))
    origin = (_q(engine, spec.table) if spec.table is not None
              else f"({spec.query.strip().rstrip(';')}) AS framecast_q")  # type: ignore[union-attr]
    bucket, params = _bucket_expr(dialect, timeline)
    lo, hi = timeline.time(a), timeline.time(b)
    # Coarse, index-friendly filter on the raw column (whole days, so ISO text in SQLite
    # compares correctly whatever its time part); the exact cut is on the frame number.
    lo_day = datetime(lo.year, lo.month, lo.day)
    hi_day = datetime(hi.year, hi.month, hi.day) + timedelta(days=1)
    if dialect == "sqlite":
        params.update(lo=lo_day.strftime("%Y-%m-%d"), hi=hi_day.strftime("%Y-%m-%d"))
    else:
        params.update(lo=lo_day, hi=hi_day)
    params.update(fa=a, fb=b)
    base = (f"SELECT {code} AS code, {ts} AS ts, {metric} AS v FROM {origin} "
            f"WHERE {ts} >= :lo AND {ts} < :hi")
    typed = (f"SELECT code, ts, {bucket} AS frame, {_numeric_expr(dialect)} AS x, "
             f"CASE WHEN v IS NULL THEN 1 ELSE 0 END AS v_null FROM base")
    nonnum = "SUM(CASE WHEN x IS NULL AND v_null = 0 THEN 1 ELSE 0 END)"
    if spec.aggregate == "last":
        ranked = ("SELECT frame, code, ts, x, v_null, ROW_NUMBER() OVER (PARTITION BY frame, code "
                  "ORDER BY CASE WHEN x IS NULL THEN 1 ELSE 0 END, ts DESC) AS rn FROM typed "
                  "WHERE frame >= :fa AND frame < :fb")
        sql = (f"WITH base AS ({base}), typed AS ({typed}), ranked AS ({ranked}) "
               f"SELECT frame, code, MAX(CASE WHEN rn = 1 THEN x END) AS value, "
               f"SUM(v_null) AS n_null, {nonnum} AS n_nonnum, COUNT(x) AS n_num, "
               f"MAX(CASE WHEN rn = 1 THEN CAST(ts AS VARCHAR(40)) END) AS t_last "
               f"FROM ranked GROUP BY frame, code")
    else:
        fn = {"sum": "SUM", "mean": "AVG", "max": "MAX", "min": "MIN"}[spec.aggregate]
        sql = (f"WITH base AS ({base}), typed AS ({typed}) "
               f"SELECT frame, code, {fn}(x) AS value, SUM(v_null) AS n_null, "
               f"{nonnum} AS n_nonnum, COUNT(x) AS n_num, NULL AS t_last FROM typed "
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


def value_range(engine: Any, spec: SourceSpec, timeline: Timeline, *,
                aggregated: bool = True) -> tuple[float | None, float | None]:
    """Min and max of the values over the whole timeline, computed in SQL.

    ``aggregated=False`` takes the range of the raw numeric values instead: one plain scan
    (no grouping or window sort), enough to check that the range holds data at all when the
    colour scale is fixed by the spec.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    if aggregated:
        sql, params = aggregate_sql(engine, spec, timeline, 0, len(timeline), ordered=False)
        query = f"SELECT MIN(value), MAX(value) FROM ({sql}) AS agg"
    else:
        sql, params = aggregate_sql(engine, replace(spec, aggregate="max"), timeline, 0,
                                    len(timeline), ordered=False)
        head, _, _ = sql.partition(" SELECT frame, code, MAX(x)")
        query = (f"{head} SELECT MIN(x), MAX(x) FROM typed "
                 f"WHERE frame >= :fa AND frame < :fb")
    try:
        with engine.connect() as conn:
            row = conn.execute(text(query), params).one()
    except SQLAlchemyError as exc:
        raise _source_error(exc, spec, "range query") from exc
    lo, hi = row
    return (None if lo is None else float(lo), None if hi is None else float(hi))


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


def stream_frames(engine: Any, spec: SourceSpec, timeline: Timeline, countries: Countries,
                  a: int, b: int, stats: SourceStats) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame, values) for every frame in [a, b), in order; values NaN where no data.

    The range is queried ``frames_per_query`` frames at a time: the database sorts and groups
    one window (bounded work and temp space, first frame quickly) instead of the whole range
    up front. Within a window rows come through a server-side cursor (``stream_results``),
    ``chunk_rows`` at a time. Frames without any row still yield (all no data), so the video's
    time axis stays regular.
    """
    cache: dict[Any, int | None] = {}
    for wa in range(a, b, spec.frames_per_query):
        yield from _stream_window(engine, spec, timeline, countries, wa,
                                  min(b, wa + spec.frames_per_query), stats, cache)


def _stream_window(engine: Any, spec: SourceSpec, timeline: Timeline, countries: Countries,
                   a: int, b: int, stats: SourceStats,
                   index_cache: dict[Any, int | None]) -> Iterator[tuple[int, np.ndarray]]:
    """One query for frames [a, b); see :func:`stream_frames`."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    n = len(countries)
    sql, params = aggregate_sql(engine, spec, timeline, a, b)
    # index_cache: raw code value -> feature index or None, filled on first sight, so the hot
    # loop is a dict lookup per row (it runs once per aggregated row: keep it lean).
    next_frame = a
    cur_frame: int | None = None
    values = np.full(n, np.nan)
    seen: dict[int, tuple[int, str | None]] = {}
    groups = nulls = nonnum = 0
    try:
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True,
                                            yield_per=spec.chunk_rows).execute(text(sql), params)
            for chunk in result.partitions(spec.chunk_rows):
                groups += len(chunk)
                for frame, code, value, n_null, n_nonnum, n_num, t_last in chunk:
                    if frame != cur_frame:
                        frame = int(frame)
                        if cur_frame is not None:
                            stats.frames_with_data += 1
                            yield cur_frame, values
                            next_frame = cur_frame + 1
                        while next_frame < frame:
                            yield next_frame, np.full(n, np.nan)
                            next_frame += 1
                        cur_frame = frame
                        values = np.full(n, np.nan)
                        seen = {}
                    if n_null:
                        nulls += int(n_null)
                    if n_nonnum:
                        nonnum += int(n_nonnum)
                    try:
                        idx = index_cache[code]
                    except KeyError:
                        key = str(code).strip().upper() if code is not None else ""
                        idx = index_cache[code] = countries.index_of(key)
                        if idx is not None:
                            stats.matched_codes.add(key)
                    if idx is None:
                        stats.unknown_codes[str(code).strip().upper() if code is not None
                                            else "<NULL>"] += 1
                        continue
                    if value is None:
                        continue
                    if idx in seen:
                        value, seen[idx] = _combine(spec.aggregate, values[idx], seen[idx],
                                                    float(value), (int(n_num), t_last))
                    else:
                        seen[idx] = (int(n_num), None if t_last is None else str(t_last))
                    values[idx] = value
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
        yield next_frame, np.full(n, np.nan)
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
