"""SQL-side aggregation and streaming on real SQLite and PostgreSQL databases."""

from __future__ import annotations

import uuid
from datetime import datetime

import numpy as np
import pytest
import services
from sqlalchemy import create_engine, text

from framecast.choropleth.geography import load_countries
from framecast.choropleth.source import (
    SourceSpec,
    SourceStats,
    make_engine,
    stream_frames,
    value_range,
)
from framecast.choropleth.timeline import Timeline, parse_interval
from framecast.errors import SourceError

# (code, timestamp, value): two days of hourly-ish readings with the usual warts.
ROWS = [
    ("DE", "2021-03-01 01:00:00", 1.0), ("DE", "2021-03-01 05:00:00", 3.0),
    ("DE", "2021-03-01 23:00:00", 2.0), ("DEU", "2021-03-02 10:00:00", 10.0),
    ("FR", "2021-03-01 12:00:00", None), ("FR", "2021-03-01 13:00:00", 7.0),
    ("NOR", "2021-03-02 08:00:00", "n/a"), ("NOR", "2021-03-02 09:00:00", 4.0),
    ("OWID_WRL", "2021-03-01 00:00:00", 99.0), ("BRA", "2021-02-28 23:59:59", 1000.0),
    ("BRA", "2021-03-04 00:00:00", 1000.0),  # after the range
]


def _make(url: str, table: str, value_type: str) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        ts_type = "TIMESTAMP" if eng.dialect.name == "postgresql" else "DATETIME"
        conn.execute(text(f"CREATE TABLE {table} (iso VARCHAR(10), ts {ts_type}, v {value_type})"))
        for c, t, v in ROWS:
            conn.execute(text(f"INSERT INTO {table} VALUES (:c, :t, :v)"),
                         {"c": c, "t": datetime.fromisoformat(t) if ts_type == "TIMESTAMP" else t,
                          "v": None if v is None else str(v) if value_type == "TEXT" else v})
    eng.dispose()


@pytest.fixture(scope="module")
def pg_database():
    """A uniquely named PostgreSQL database for this module (tests/services.py)."""
    with services.temp_database("fc_chsrc", "psycopg2") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'src.sqlite'}"
        _make(url, "obs", "")  # no affinity: mixed numbers and text, like a CSV import
        yield url, "obs"
        return
    pg_url = request.getfixturevalue("pg_database")
    table = f"fc_obs_{uuid.uuid4().hex[:10]}"
    _make(pg_url, table, "TEXT")
    yield pg_url, table
    eng = create_engine(pg_url)
    with eng.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
    eng.dispose()


def _frames(url, table, agg, interval="day"):
    spec = SourceSpec(url=url, table=table, code_column="iso", time_column="ts", metric="v",
                      aggregate=agg, chunk_rows=2, frames_per_query=2)
    tl = Timeline(datetime(2021, 3, 1), datetime(2021, 3, 3), parse_interval(interval))
    c = load_countries("110m")
    stats = SourceStats()
    eng = make_engine(url)
    out = [(i, v.copy()) for i, v in stream_frames(eng, spec, tl, c, 0, len(tl), stats)]
    rng = value_range(eng, spec, tl)
    eng.dispose()
    return out, stats, c, rng


@pytest.mark.parametrize("agg, de_day1, fr_day1, de_day2", [
    ("sum", 6.0, 7.0, 10.0), ("mean", 2.0, 7.0, 10.0), ("max", 3.0, 7.0, 10.0),
    ("min", 1.0, 7.0, 10.0), ("last", 2.0, 7.0, 10.0),
])
def test_aggregates_in_sql(db, agg, de_day1, fr_day1, de_day2):
    url, table = db
    frames, stats, c, rng = _frames(url, table, agg)
    assert [i for i, _ in frames] == [0, 1, 2]  # day 3 has no rows but still is a frame
    de, fr, no = c.index_of("DEU"), c.index_of("FRA"), c.index_of("NOR")
    d1, d2, d3 = (v for _, v in frames)
    assert d1[de] == pytest.approx(de_day1) and d1[fr] == pytest.approx(fr_day1)
    assert d2[de] == pytest.approx(de_day2) and d2[no] == pytest.approx(4.0)
    assert np.isnan(d3).all()
    assert np.isnan(d1[c.index_of("BRA")])  # outside the range on both sides
    assert stats.null_values == 1 and stats.non_numeric == 1
    assert dict(stats.unknown_codes) == {"OWID_WRL": 1}
    assert any("OWID_WRL" in w for w in stats.warnings())
    assert rng[1] == pytest.approx({"sum": 99.0, "mean": 99.0, "max": 99.0, "min": 99.0,
                                    "last": 99.0}[agg])


def test_two_day_interval_buckets(db):
    url, table = db
    frames, _, c, _ = _frames(url, table, "sum", "2d")
    assert [i for i, _ in frames] == [0, 1]
    assert frames[0][1][c.index_of("DEU")] == pytest.approx(16.0)


def test_failing_query_names_table(tmp_path):
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    _make(url, "obs", "REAL")
    spec = SourceSpec(url=url, table="no_such_table", code_column="iso", time_column="ts",
                      metric="v")
    tl = Timeline(datetime(2021, 3, 1), datetime(2021, 3, 3), parse_interval("day"))
    with pytest.raises(SourceError, match="no_such_table"):
        value_range(make_engine(url), spec, tl)
    bad_col = SourceSpec(url=url, table="obs", code_column="iso", time_column="ts",
                         metric="nope")
    with pytest.raises(SourceError, match="nope"):
        list(stream_frames(make_engine(url), bad_col, tl, load_countries("110m"), 0, 3,
                           SourceStats()))
    q = SourceSpec(url=url, query="SELEKT broken", code_column="iso", time_column="ts",
                   metric="v")
    with pytest.raises(SourceError, match="source.query"):
        value_range(make_engine(url), q, tl)


def test_unreachable_databases(tmp_path):
    tl = Timeline(datetime(2021, 3, 1), datetime(2021, 3, 3), parse_interval("day"))
    with pytest.raises(SourceError, match="does not exist"):
        make_engine(f"sqlite:///{tmp_path / 'missing.sqlite'}")
    assert not (tmp_path / "missing.sqlite").exists()
    url = "postgresql+psycopg2://postgres:secret@127.0.0.1:1/test"
    spec = SourceSpec(url=url, table="obs", code_column="iso", time_column="ts", metric="v")
    with pytest.raises(SourceError, match="cannot connect to database") as ei:
        value_range(make_engine(url), spec, tl)
    assert "secret" not in str(ei.value) and "127.0.0.1:1" in str(ei.value)
    with pytest.raises(SourceError, match="not a SQLAlchemy database URL"):
        make_engine("not a url")


def test_raw_value_range_is_a_plain_scan(db):
    url, table = db
    spec = SourceSpec(url=url, table=table, code_column="iso", time_column="ts", metric="v",
                      aggregate="sum")
    tl = Timeline(datetime(2021, 3, 1), datetime(2021, 3, 3), parse_interval("day"))
    eng = make_engine(url)
    assert value_range(eng, spec, tl, aggregated=False) == (1.0, 99.0)
    assert value_range(eng, spec, tl) == (4.0, 99.0)  # smallest group: NOR on day 2
    empty = Timeline(datetime(2030, 1, 1), datetime(2030, 1, 3), parse_interval("day"))
    assert value_range(eng, spec, empty, aggregated=False) == (None, None)
    eng.dispose()
