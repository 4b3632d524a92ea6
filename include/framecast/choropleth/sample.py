"""A synthetic per-country daily series shaped like public epidemic/economic data sets.

Used by the tests, the benchmark and ``framecast choropleth sample-db`` so an animation can be
tried without real data. Each country gets a few epidemic-like waves (smooth rises and falls
with reporting noise and weekend dips) of a country-specific size, like the per-million series
of public COVID data; a handful of rows mimic real data's warts when ``warts=True``: NULLs,
non-numeric strings and aggregate codes that are not countries.

The values are a pure function of (code, day) so tests can recompute what a frame must show.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from framecast.choropleth.source import make_engine
from framecast.errors import SourceError

# Codes that appear in public series but are not countries (reported as unknown).
AGGREGATE_CODES = ("OWID_WRL", "OWID_EUR", "XXA")


def country_codes(n: int = 200) -> list[str]:
    """n ISO alpha-3 codes, sorted: every 110m map country first (incl. the -99 quirks FRA,
    NOR), then small countries only the 50m map has, like public series' ~200 countries."""
    from framecast.choropleth.geography import load_countries

    def valid(codes: tuple[str, ...]) -> set[str]:
        return {c for c in codes if len(c) == 3 and c.isalpha()}

    big = sorted(valid(load_countries("110m").iso_a3))
    small = sorted(valid(load_countries("50m").iso_a3) - set(big))
    return sorted((big + small)[:n])


def _seed(code: str) -> int:
    return int.from_bytes(hashlib.blake2b(code.encode(), digest_size=8).digest(), "little")


def series(code: str, days: int, period: int = 1000) -> np.ndarray:
    """New cases per million for days 0..days-1 of ``code``: deterministic, >= 0, 3 decimals.

    A pure function of (code, days): tests recompute from it what a frame must show. The wave
    pattern repeats every ``period`` steps so long series keep changing (a benchmark over
    100,000 steps must not turn into 99,000 identical, trivially encoded frames).
    """
    rng = np.random.default_rng(_seed(code))
    size = 50 + 950 * rng.random()
    params = rng.random((3, 4))
    noise = 0.9 + 0.2 * rng.random(days)
    d = np.arange(days, dtype=np.float64) % period
    total = np.zeros(days)
    for w in range(3):
        centre = 120 + 300 * w + 80 * (params[w, 0] - 0.5)
        width = 25 + 30 * params[w, 1]
        amp = size * (0.4 + 0.6 * params[w, 2])
        total += amp * np.exp(-0.5 * ((d - centre) / width) ** 2)
    weekend = np.where(np.arange(days) % 7 >= 5, 0.75, 1.0)
    return np.round(total * weekend * noise, 3)


def generate_rows(codes: list[str], days: int, start: date | datetime = date(2020, 1, 1), *,
                  warts: bool = False, step: timedelta = timedelta(days=1)
                  ) -> Iterator[tuple[str, str, Any]]:
    """(code, ISO time, value) rows in time order; ``warts`` adds NULL/bad values and codes."""
    table = {c: series(c, days).tolist() for c in codes}
    t0 = datetime(start.year, start.month, start.day)
    whole_days = step % timedelta(days=1) == timedelta(0)
    for d in range(days):
        t = t0 + d * step
        stamp = t.strftime("%Y-%m-%d") if whole_days else t.strftime("%Y-%m-%d %H:%M:%S")
        for code in codes:
            value: Any = table[code][d]
            if warts and d % 97 == 13 and code == codes[1]:
                value = None
            elif warts and d % 89 == 7 and code == codes[2]:
                value = "n/a"
            yield code, stamp, value
        if warts:
            for code in AGGREGATE_CODES:
                yield code, stamp, 1.0


def load_table(url: str, table: str, codes: list[str], days: int, *,
               start: date = date(2020, 1, 1), warts: bool = False,
               text_values: bool = False, step: timedelta = timedelta(days=1),
               batch: int = 200_000) -> int:
    """Create ``table`` (code, date, value) and fill it in batches; PostgreSQL via COPY.

    ``step`` below a day stores timestamps (column type TIMESTAMP) instead of dates. Rows are
    generated and inserted batch by batch, so tables with millions of rows load in flat memory.
    Returns the number of rows.
    """
    import itertools

    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    engine = (make_engine(url, read_only=False) if not url.startswith("sqlite")
              else _sqlite_engine(url))
    pg = engine.dialect.name == "postgresql"
    vtype = "TEXT" if (warts or text_values) else ("DOUBLE PRECISION" if pg else "REAL")
    if not pg and warts:
        vtype = ""  # no affinity: numbers stay numbers, 'n/a' stays text, like CSV imports
    ttype = "DATE" if step % timedelta(days=1) == timedelta(0) else "TIMESTAMP"
    prep = engine.dialect.identifier_preparer
    qt = ".".join(prep.quote(p) for p in table.split("."))
    rows = generate_rows(codes, days, start, warts=warts, step=step)
    total = 0
    try:
        with engine.begin() as conn:
            conn.execute(text(f"DROP TABLE IF EXISTS {qt}"))
            conn.execute(text(f"CREATE TABLE {qt} (code VARCHAR(16), date {ttype}, "
                              f"value {vtype})"))
            raw = conn.connection.dbapi_connection
            cur = raw.cursor()
            while True:
                part = list(itertools.islice(rows, batch))
                if not part:
                    break
                total += len(part)
                if pg:
                    import io

                    null = "\\N"
                    buf = io.StringIO("".join(
                        f"{c}\t{d}\t{null if v is None else v}\n" for c, d, v in part))
                    cur.copy_expert(f"COPY {qt} (code, date, value) FROM STDIN", buf)
                else:
                    # The DB-API executemany directly: 10x faster than per-row dicts.
                    cur.executemany(f"INSERT INTO {qt} (code, date, value) VALUES (?, ?, ?)",
                                    part)
            cur.close()
            conn.execute(text(f"CREATE INDEX {prep.quote(table.split('.')[-1] + '_date')} "
                              f"ON {qt} (date)"))
    except SQLAlchemyError as exc:
        raise SourceError(f"cannot create sample table {table}: {exc}") from exc
    finally:
        engine.dispose()
    return total


def _sqlite_engine(url: str) -> Any:
    from sqlalchemy import create_engine

    return create_engine(url)
