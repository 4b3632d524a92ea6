"""Source aggregation against an independent computation: random per-country rows (with
NULLs, text, two codes for one country, rows outside the range) aggregated by the database
through framecast, and by plain Python here, for every aggregate and several intervals and
window sizes; plus the spec checks, statistics, URLs and merge rules, exactly.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np
import pytest
import services
from sqlalchemy import create_engine, text

from framecast.choropleth.geography import load_countries
from framecast.choropleth.source import (
    AGGREGATES,
    SourceSpec,
    SourceStats,
    _combine,
    distinct_codes,
    make_engine,
    safe_url,
    stream_frames,
    url_from_connection,
    value_range,
)
from framecast.choropleth.timeline import Timeline, parse_interval
from framecast.errors import SourceError, SpecError

CODES = ["DE", "DEU", "FRA", "FR", "NOR", "BRA", "XXA", None]
START = datetime(2021, 1, 1)


def _rows(seed: int = 5, n: int = 400):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = START - timedelta(days=3) + timedelta(minutes=rng.randrange(0, 60 * 24 * 75))
        r = rng.random()
        v = (None if r < 0.07 else "n/a" if r < 0.12 else f" {rng.uniform(-50, 50):.3f} "
             if r < 0.2 else round(rng.uniform(-100, 100), 3))
        out.append((CODES[i % len(CODES)], ts.replace(second=0), v))
    return out


ROWS = _rows()


def _numeric(v):
    if v is None:
        return None
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def _frame_of(ts: datetime, tl: Timeline) -> int:
    if tl.interval.months:
        return ((ts.year - tl.start.year) * 12 + ts.month - tl.start.month) // tl.interval.months
    return math.floor((ts - tl.start).total_seconds() / tl.interval.seconds)


def _expected(tl: Timeline, agg: str, countries, a: int, b: int):
    """Per frame: country index -> value, from the rows in plain Python."""
    groups = defaultdict(list)
    for code, ts, v in ROWS:
        f = _frame_of(ts, tl)
        if not a <= f < b or code is None:
            continue
        idx = countries.index_of(code.strip().upper())
        x = _numeric(v)
        if idx is not None and x is not None:
            groups[(f, idx)].append((ts, x))
    out = {f: {} for f in range(a, b)}
    for (f, idx), vals in groups.items():
        xs = [x for _, x in vals]
        out[f][idx] = {"sum": sum(xs), "mean": sum(xs) / len(xs), "max": max(xs),
                       "min": min(xs), "last": max(vals, key=lambda t: t[0])[1]}[agg]
    return out


def _load(url: str, table: str) -> None:
    eng = create_engine(url)
    pg = eng.dialect.name == "postgresql"
    with eng.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (iso VARCHAR(10), ts "
                          f"{'TIMESTAMP' if pg else 'DATETIME'}, v {'TEXT' if pg else ''})"))
        conn.execute(text(f"INSERT INTO {table} VALUES (:c, :t, :v)"), [
            {"c": c, "t": t if pg else t.strftime("%Y-%m-%d %H:%M:%S"),
             "v": None if v is None else str(v) if pg else v} for c, t, v in ROWS])
    eng.dispose()


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "rows.sqlite"
    path.touch()
    url = f"sqlite:///{path}"
    _load(url, "obs")
    return url, "obs"


@pytest.fixture(scope="module")
def pg_db():
    with services.temp_database("fc_srcunit", "psycopg2") as url:
        table = f"obs_{uuid.uuid4().hex[:8]}"
        _load(url, table)
        yield url, table
        create_engine(url).dispose()


@pytest.fixture(scope="module")
def countries():
    return load_countries("110m")


CASES = [(agg, iv, end, fpq, chunk)
         for agg in AGGREGATES
         for iv, end, fpq, chunk in [("day", datetime(2021, 2, 20), 7, 3),
                                     ("6h", datetime(2021, 1, 20), 1000, 50),
                                     ("month", datetime(2021, 3, 1), 1, 1),
                                     ("week", datetime(2021, 3, 15), 2, 1000)]]


def _check(url, table, countries, agg, iv, end, fpq, chunk):
    spec = SourceSpec(url=url, table=table, code_column="iso", time_column="ts", metric="v",
                      aggregate=agg, chunk_rows=chunk, frames_per_query=fpq)
    tl = Timeline(START, end, parse_interval(iv))
    a, b = 1, len(tl)  # a segment not starting at 0, as parallel segments query
    eng = make_engine(url)
    stats = SourceStats()
    got = [(i, v.copy()) for i, v in stream_frames(eng, spec, tl, countries, a, b, stats)]
    want = _expected(tl, agg, countries, a, b)
    assert [i for i, _ in got] == list(range(a, b))
    for i, values in got:
        exp = np.full(len(countries), np.nan)
        for idx, x in want[i].items():
            exp[idx] = x
        np.testing.assert_allclose(values, exp, rtol=1e-9, atol=1e-9, err_msg=f"frame {i}")
    in_range = [(c, t, v) for c, t, v in ROWS if a <= _frame_of(t, tl) < b]
    assert stats.null_values == sum(v is None for _, _, v in in_range)
    assert stats.non_numeric == sum(v is not None and _numeric(v) is None
                                    for _, _, v in in_range)
    assert stats.frames_with_data == len({_frame_of(t, tl) for _, t, _ in in_range})
    assert dict(stats.unknown_codes) == {
        k: n for k, n in {"XXA": sum(1 for f in {_frame_of(t, tl) for c, t, _ in in_range
                                                 if c == "XXA"}),
                          "<NULL>": sum(1 for f in {_frame_of(t, tl) for c, t, _ in in_range
                                                    if c is None})}.items() if n}
    assert stats.matched_codes == {c for c, _, _ in in_range if c and c not in ("XXA",)}
    # the range is over the SQL groups (frame, raw code), unknown and NULL codes included
    per_code = defaultdict(list)
    for c, t, v in ROWS:
        if 0 <= _frame_of(t, tl) < len(tl) and (x := _numeric(v)) is not None:
            per_code[(_frame_of(t, tl), c)].append((t, x))
    aggs = [{"sum": sum(x for _, x in g), "mean": sum(x for _, x in g) / len(g),
             "max": max(x for _, x in g), "min": min(x for _, x in g),
             "last": max(g, key=lambda p: p[0])[1]}[agg] for g in per_code.values()]
    assert value_range(eng, spec, tl) == pytest.approx((min(aggs), max(aggs)))
    raw = [x for c, t, v in ROWS if 0 <= _frame_of(t, tl) < len(tl)
           and (x := _numeric(v)) is not None]
    assert value_range(eng, spec, tl, aggregated=False) == pytest.approx((min(raw), max(raw)))
    eng.dispose()


@pytest.mark.parametrize(("agg", "iv", "end", "fpq", "chunk"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_sqlite_aggregation_matches_python(sqlite_db, countries, agg, iv, end, fpq, chunk):
    _check(*sqlite_db, countries, agg, iv, end, fpq, chunk)


@pytest.mark.parametrize(("agg", "iv", "end", "fpq", "chunk"), CASES[::2],
                         ids=[f"{c[0]}-{c[1]}" for c in CASES[::2]])
def test_postgres_aggregation_matches_python(pg_db, countries, agg, iv, end, fpq, chunk):
    _check(*pg_db, countries, agg, iv, end, fpq, chunk)


def test_query_source_and_schema_table(sqlite_db, countries):
    url, _ = sqlite_db
    spec = SourceSpec(url=url, query="SELECT iso, ts, v FROM obs WHERE iso = 'NOR';  ",
                      code_column="iso", time_column="ts", metric="v", aggregate="max")
    tl = Timeline(START, datetime(2021, 1, 10), parse_interval("day"))
    eng = make_engine(url)
    got = dict((i, v.copy()) for i, v in stream_frames(eng, spec, tl, countries, 0, len(tl),
                                                          SourceStats()))
    want = _expected(tl, "max", countries, 0, len(tl))
    no = countries.index_of("NOR")
    for i, v in got.items():
        assert (np.isnan(v[no]) and no not in want[i]) or v[no] == pytest.approx(want[i][no])
        assert np.isnan(np.delete(v, no)).all()
    # the code system is detected from every distinct code the source holds
    assert distinct_codes(eng, spec) == ["NOR"]
    spec = SourceSpec(url=url, table="main.obs", code_column="iso", time_column="ts",
                      metric="v")
    assert value_range(eng, spec, tl, aggregated=False)[0] is not None
    assert sorted(distinct_codes(eng, spec), key=str) == sorted(set(CODES), key=str)
    gone = SourceSpec(url=url, table="main.nope", code_column="iso", time_column="ts",
                      metric="v")
    with pytest.raises(SourceError, match=r"^listing codes on main\.nope \(sqlite:///.*\) "
                                          r"failed: no such table: main\.nope$"):
        distinct_codes(eng, gone)
    eng.dispose()


# ------------------------------------------------------------------ small parts, exactly


@pytest.mark.parametrize(("kw", "message"), [
    ({}, "source: give exactly one of 'table' or 'query'"),
    ({"table": "t", "query": "q"}, "source: give exactly one of 'table' or 'query'"),
    ({"table": "t", "code_column": "a b"}, "source.code_column: 'a b' is not a plain column"),
    ({"table": "t", "time_column": 3}, "source.time_column: 3 is not a plain column"),
    ({"table": "t", "metric": "v;drop"}, "source.metric: 'v;drop' is not a plain column"),
    ({"table": "a.b.c d"}, "source.table: 'a.b.c d' is not a table name (name or schema.name)"),
    ({"table": "t", "aggregate": "median"}, "source.aggregate: 'median' is not one of"),
    ({"table": "t", "chunk_rows": 0}, "source.chunk_rows: 0 must be a positive integer"),
    ({"table": "t", "chunk_rows": True}, "source.chunk_rows: True must be a positive integer"),
    ({"table": "t", "frames_per_query": 2.5},
     "source.frames_per_query: 2.5 must be a positive integer"),
])
def test_spec_checks(kw, message):
    with pytest.raises(SpecError) as ei:
        SourceSpec(url="sqlite://", **kw)
    assert str(ei.value).startswith(message), str(ei.value)


def test_spec_accepts_plain_names():
    s = SourceSpec(url="sqlite://", table="schema_1.t$x", code_column="_c", chunk_rows=1,
                   frames_per_query=1)
    assert (s.aggregate, s.code_column, s.time_column, s.metric) == ("last", "_c", "date",
                                                                     "value")
    assert (SourceSpec(url="u", query="q").chunk_rows, SourceSpec(url="u", query="q")
            .frames_per_query) == (20_000, 2_000)


def test_stats_merge_warnings_and_dict():
    a = SourceStats(groups=2, frames_with_data=1, null_values=0, non_numeric=3)
    a.unknown_codes.update({"XX": 2})
    a.matched_codes.add("DEU")
    b = SourceStats(groups=5, frames_with_data=4, null_values=1, non_numeric=0)
    b.unknown_codes.update({"XX": 1, "AB": 1})
    b.matched_codes |= {"FRA", "DEU"}
    assert a.merge(b) is a
    assert a.to_dict() == {
        "groups": 7, "frames_with_data": 5, "null_values": 1, "non_numeric": 3,
        "unknown_codes": {"AB": 1, "XX": 3}, "matched_codes": 2, "matched": ["DEU", "FRA"],
        "warnings": ["2 country code(s) match no map feature and are not drawn: 'AB' (1), "
                     "'XX' (3)", "1 NULL value(s) drawn as no data",
                     "3 non-numeric value(s) drawn as no data"]}
    assert SourceStats().warnings() == []


def test_combine_two_codes_of_one_country():
    assert _combine("sum", 2.0, (1, None), 3.0, (2, None)) == (5.0, (3, None))
    assert _combine("max", 2.0, (1, None), 3.0, (1, None)) == (3.0, (2, None))
    assert _combine("max", 4.0, (1, None), 3.0, (1, None)) == (4.0, (2, None))
    assert _combine("min", 2.0, (1, None), 3.0, (1, None)) == (2.0, (2, None))
    assert _combine("min", 4.0, (1, None), 3.0, (1, None)) == (3.0, (2, None))
    assert _combine("mean", 2.0, (1, None), 5.0, (3, None)) == (4.25, (4, None))
    assert _combine("mean", 2.0, (0, None), 5.0, (0, None))[0] == 0.0
    assert _combine("last", 1.0, (1, "2021-01-02"), 2.0, (1, "2021-01-01")) == (
        1.0, (2, "2021-01-02"))
    assert _combine("last", 1.0, (1, "2021-01-01"), 2.0, (1, "2021-01-01")) == (
        2.0, (2, "2021-01-01"))
    assert _combine("last", 1.0, (1, None), 2.0, (1, datetime(2021, 1, 3))) == (
        2.0, (2, "2021-01-03 00:00:00"))
    assert _combine("last", 1.0, (1, "2021-01-05"), 2.0, (1, None)) == (1.0, (2, "2021-01-05"))


def test_urls():
    assert safe_url("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    assert safe_url("not a url u:pw@h") == "not a url u:pw@h"
    assert safe_url("weird://u:pw@h:x:y/") in ("weird://u:***@h:x:y/",)
    assert url_from_connection("postgres", host="h", login="u", password="p@ss", port=5433,
                               schema="db") == "postgresql+psycopg2://u:p%40ss@h:5433/db"
    assert url_from_connection("postgresql", host="h") == "postgresql+psycopg2://h"
    assert url_from_connection("MySQL", host="h", schema="d") == "mysql+pymysql://h/d"
    assert url_from_connection("mssql", host="h") == "mssql+pymssql://h"
    assert url_from_connection("sqlite", host="/data/x.db") == "sqlite:////data/x.db"
    assert url_from_connection("sqlite", schema="rel.db") == "sqlite:///rel.db"
    assert url_from_connection("anything", extra={"sqlalchemy_url": "sqlite://"}) == "sqlite://"
    with pytest.raises(SourceError, match="sqlite connection has no database path"):
        url_from_connection("sqlite")
    with pytest.raises(SourceError, match="connection type 'oracle' is not supported"):
        url_from_connection("oracle", host="h")
    with pytest.raises(SourceError, match="connection type None is not supported"):
        url_from_connection(None)


def test_make_engine(tmp_path):
    assert make_engine("sqlite://").dialect.name == "sqlite"
    assert make_engine("sqlite:///:memory:").dialect.name == "sqlite"
    with pytest.raises(SourceError, match=r"SQLite database file .*nope\.db does not exist "
                                         r"\(source\.url sqlite:///"):
        make_engine(f"sqlite:///{tmp_path / 'nope.db'}")
    with pytest.raises(SourceError, match=r"database nosuchdb://u:\*\*\*@h/x: only PostgreSQL and SQLite"):
        make_engine("nosuchdb://u:pw@h/x")
