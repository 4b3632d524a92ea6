"""A spec's source runs read-only with a statement timeout (real PostgreSQL and SQLite)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from framecast.choropleth.source import SourceSpec, make_engine, value_range
from framecast.choropleth.timeline import Timeline, parse_interval
from framecast.errors import SourceError

PG_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
TL = Timeline(datetime(2021, 3, 1), datetime(2021, 3, 3), parse_interval("day"))


def _spec(url: str, query: str) -> SourceSpec:
    return SourceSpec(url=url, query=query, code_column="iso", time_column="ts", metric="v")


@pytest.fixture
def pg():
    tag = uuid.uuid4().hex[:10]
    obs, log, fn = f"fc_obs_{tag}", f"fc_log_{tag}", f"fc_evil_{tag}"
    eng = create_engine(PG_URL)
    with eng.begin() as conn:
        conn.execute(text(f"CREATE TABLE {obs} (iso TEXT, ts TIMESTAMP, v DOUBLE PRECISION)"))
        conn.execute(text(f"INSERT INTO {obs} VALUES ('DE', '2021-03-01 10:00', 1.0)"))
        conn.execute(text(f"CREATE TABLE {log} (n INT)"))
        # a function that writes: what a hostile or careless query can call
        conn.execute(text(f"CREATE FUNCTION {fn}() RETURNS int LANGUAGE sql AS "
                          f"$$ INSERT INTO {log} VALUES (1); SELECT 1 $$"))
    yield obs, log, fn
    with eng.begin() as conn:
        conn.execute(text(f"DROP FUNCTION IF EXISTS {fn}()"))
        conn.execute(text(f"DROP TABLE IF EXISTS {obs}, {log}"))
    eng.dispose()


def test_postgres_query_that_writes_is_refused(pg):
    obs, log, fn = pg
    spec = _spec(PG_URL, f"SELECT iso, ts, v FROM {obs} WHERE {fn}() = 1")
    with pytest.raises(SourceError, match="read-only transaction"):
        value_range(make_engine(PG_URL, timeout_s=10), spec, TL)
    eng = create_engine(PG_URL)
    with eng.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {log}")).scalar_one() == 0
    eng.dispose()
    # the same query through a plain engine does write: the guard is what stops it
    plain = create_engine(PG_URL)
    with plain.begin() as conn:
        conn.execute(text(f"SELECT {fn}()"))
        assert conn.execute(text(f"SELECT count(*) FROM {log}")).scalar_one() == 1
    plain.dispose()


def test_postgres_slow_query_times_out(pg):
    obs, _, _ = pg
    spec = _spec(PG_URL, f"SELECT iso, ts, v FROM {obs} WHERE pg_sleep(30) IS NOT NULL")
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="statement timeout"):
        value_range(make_engine(PG_URL, timeout_s=1), spec, TL)
    assert time.monotonic() - t0 < 10


@pytest.fixture
def lite(tmp_path):
    url = f"sqlite:///{tmp_path / 'src.sqlite'}"
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE obs (iso TEXT, ts TEXT, v REAL)"))
        conn.execute(text("INSERT INTO obs VALUES ('DE', '2021-03-01 10:00:00', 1.0)"))
    eng.dispose()
    return url


def test_sqlite_source_cannot_write(lite):
    eng = make_engine(lite, timeout_s=10)
    with pytest.raises(OperationalError, match="readonly|read-only|query_only"), \
            eng.begin() as conn:
        conn.execute(text("DELETE FROM obs"))
    check = create_engine(lite)
    with check.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM obs")).scalar_one() == 1
    check.dispose()
    # reading through the guarded engine still works
    assert value_range(eng, _spec(lite, "SELECT iso, ts, v FROM obs"), TL)[1] == 1.0


def test_sqlite_slow_query_times_out(lite):
    slow = ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r "
            "WHERE n < 1000000000) SELECT o.iso, o.ts, o.v FROM obs o "
            "WHERE (SELECT max(n) FROM r) > 0")
    t0 = time.monotonic()
    with pytest.raises(SourceError, match="statement timeout"):
        value_range(make_engine(lite, timeout_s=1), _spec(lite, slow), TL)
    assert time.monotonic() - t0 < 10


def test_timeout_setting_is_validated(monkeypatch, lite):
    monkeypatch.setenv("FRAMECAST_SOURCE_STATEMENT_TIMEOUT", "soon")
    with pytest.raises(SourceError, match="FRAMECAST_SOURCE_STATEMENT_TIMEOUT"):
        make_engine(lite)
