"""Metrics store: one row per frame whatever the retries, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from framecast.errors import SpecError
from framecast.metrics import store
from framecast.records import chunk_name, write_records


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/m.sqlite"
    return request.getfixturevalue("pg_url")


def test_ingest_run_dir_one_row_per_frame_after_retried_chunk(db_url, tmp_path, make):
    run_dir = tmp_path / "icon-eu" / "2026112300"
    first = make(steps=range(0, 4), try_number=1)
    write_records(run_dir, chunk_name("t_2m", "europe", [0, 3]),
                  [r for r in first if r.product == "t_2m"])
    write_records(run_dir, chunk_name("pmsl", "europe", [0, 3]),
                  [r for r in first if r.product == "pmsl"])
    assert store.ingest_run(db_url, run_dir) == 8
    # the t_2m chunk fails half-way and its retry rewrites the same frames with try 2
    retry = [dataclasses.replace(r, try_number=2, render_ms=999.0)
             for r in first if r.product == "t_2m"]
    write_records(run_dir, chunk_name("t_2m", "europe", [0, 3]), retry)
    assert store.ingest_run(db_url, run_dir) == 8
    assert store.ingest_run(db_url, run_dir) == 8  # re-ingesting is harmless
    assert store.count_frames(db_url) == 8
    rows = store.frames(db_url, "icon-eu", "2026112300")
    assert len(rows) == 8
    t2m = [r for r in rows if r.product == "t_2m"]
    assert {r.try_number for r in t2m} == {2}
    assert {r.render_ms for r in t2m} == {999.0}


def test_stale_try_does_not_overwrite_newer(db_url, make):
    newer = make(products=("t_2m",), steps=[0], try_number=3, render_ms=50.0)
    older = make(products=("t_2m",), steps=[0], try_number=1, render_ms=500.0)
    store.upsert_frames(db_url, newer)
    store.upsert_frames(db_url, older)
    (row,) = store.frames(db_url, "icon-eu", "2026-11-23T00:00:00Z")
    assert (row.try_number, row.render_ms) == (3, 50.0)


def test_duplicates_within_one_batch(db_url, make):
    recs = make(products=("t_2m",), steps=[0, 1])
    dup = [dataclasses.replace(r, try_number=2) for r in recs]
    assert store.upsert_frames(db_url, recs + dup + recs) == 2
    assert store.count_frames(db_url) == 2
    assert {r.try_number for r in store.frames(db_url, "icon-eu", "2026112300")} == {2}


def test_recent_runs_newest_first_and_summary(db_url, make):
    for day in (20, 21, 22):
        store.upsert_frames(db_url, make(run=f"2026-11-{day}T00:00:00+00:00", render_ms=day))
    store.upsert_frames(db_url, make(model="gfs", run="2026-11-22T06:00:00+00:00"))
    runs = store.recent_runs(db_url, model="icon-eu", last=2)
    assert [r.run for r in runs] == ["2026-11-22T00:00:00+00:00", "2026-11-21T00:00:00+00:00"]
    s = runs[0]
    assert s.frames == 12 and s.products == 2 and s.max_try == 1
    # frame total = 10 load + (22 + step) render + 5 encode + 1 upload, steps 0..5
    assert s.p50_ms == pytest.approx(38 + 2.5)
    assert s.bytes == 2 * sum(1000 + st for st in range(6))
    assert [r.model for r in store.recent_runs(db_url, last=10)][0] == "gfs"
    assert s.dag_id == ""
    store.register_run(db_url, "icon-eu", "2026112200", "icon_eu", "scheduled__x")
    store.register_run(db_url, "icon-eu", "2026112200", "icon_eu", "manual__y", "http://r/")
    s = store.recent_runs(db_url, model="icon-eu", last=1)[0]
    assert (s.dag_id, s.run_id, s.report_url) == ("icon_eu", "manual__y", "http://r/")


def test_task_tries_idempotent_and_retries_listed(db_url):
    t = store.TaskTry("icon_eu", "scheduled__2026-11-23T00:00:00+00:00", "render", 3, 1,
                      "up_for_retry", "icon-eu", "2026112300")
    store.record_task_try(db_url, t)
    store.record_task_try(db_url, dataclasses.replace(t, try_number=2, state="running"))
    store.record_task_try(db_url, dataclasses.replace(t, try_number=2, state="success"))
    store.record_task_try(db_url, dataclasses.replace(t, map_index=4, state="success"))
    got = store.retried_tasks(db_url, "icon_eu", t.run_id)
    assert [(x.map_index, x.try_number, x.state) for x in got] == [(3, 2, "success")]
    # only the retry callback recorded (try 1 failed, retry pending or not recorded): still a retry
    store.record_task_try(db_url, dataclasses.replace(t, task_id="download", map_index=0))
    got = store.retried_tasks(db_url, "icon_eu", t.run_id)
    assert [(x.task_id, x.try_number, x.state) for x in got] == [
        ("download", 1, "up_for_retry"), ("render", 2, "success")]


def test_normalize_run_forms_and_errors():
    assert store.normalize_run("2026112306") == "2026-11-23T06:00:00+00:00"
    assert store.normalize_run("2026-11-23T06:00:00Z") == "2026-11-23T06:00:00+00:00"
    assert store.normalize_run("2026-11-23T07:00:00+01:00") == "2026-11-23T06:00:00+00:00"
    with pytest.raises(SpecError, match="'yesterday'"):
        store.normalize_run("yesterday")


def test_bad_url_is_a_spec_error():
    with pytest.raises(SpecError, match="nosuchdb://x"):
        store.get_engine("nosuchdb://x")


def test_concurrent_first_use_creates_tables_once(pg_url, make):
    """Many tasks hitting a fresh database at once: every one of them gets its rows in."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from framecast.metrics import store\n"
        "from framecast.records import FrameRecord\n"
        "i = int(sys.argv[2])\n"
        "store.upsert_frames(sys.argv[1], [FrameRecord('m', '2026112300', 'p', 'r', i, 'x')])\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_url, str(i)]) for i in range(6)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 6
    assert store.count_frames(pg_url, "m") == 6


def test_recent_runs_costs_three_queries_whatever_the_number_of_runs(db_url, make):
    """The ops page used to run 1 + 3 queries per listed run (about 1,500 for 500 runs)."""
    from sqlalchemy import event

    runs = [f"2026-11-{day:02d}T{hour:02d}:00:00+00:00" for day in range(1, 11)
            for hour in (0, 6, 12, 18)]
    for run in runs:
        store.upsert_frames(db_url, make(run=run, steps=range(3), render_ms=len(run)))
    store.register_run(db_url, "icon-eu", runs[-1], "icon_eu", "manual__z", "http://r/z")
    engine = store.get_engine(db_url)
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        got = store.recent_runs(db_url, model="icon-eu", last=len(runs))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 3, len(statements)
    assert [r.run for r in got] == sorted(runs, reverse=True)
    # same numbers as summarising each run's frames one by one (the per-run reference)
    for r in got:
        ref = store.summarize("icon-eu", r.run, store.frames(db_url, "icon-eu", r.run))
        assert (r.frames, r.products, r.p50_ms, r.p95_ms, r.bytes, r.max_try) == (
            ref.frames, ref.products, ref.p50_ms, ref.p95_ms, ref.bytes, ref.max_try)
        assert r.last_recorded is not None
    assert (got[0].dag_id, got[0].run_id, got[0].report_url) == ("icon_eu", "manual__z",
                                                                  "http://r/z")
