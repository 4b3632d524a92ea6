"""Publish latency records: written per chunk, read per step, checked against step windows,
listed per run while the run is in progress."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from framecast.errors import DataError
from framecast.metrics import latency as latency_mod
from framecast.metrics.latency import (
    in_progress_runs,
    read_latency,
    window_published_s,
    write_latency,
)
from framecast.metrics.report import write_report
from framecast.records import FrameRecord, run_dir, write_records

RUN = datetime(2026, 11, 30, 0, tzinfo=UTC)
T0 = RUN.timestamp()


def test_records_per_chunk_read_per_step_and_windows(tmp_path):
    # chunk +0..+1 seen upstream at 2:00, public at 2:01:30; chunk +2..+3 re-published later
    write_latency(tmp_path, "+000..+001", [0, 1], run_time=RUN, available_at=T0 + 7200,
                  published_at=T0 + 7290)
    write_latency(tmp_path, "+002..+003", [2, 3], run_time=RUN, available_at=T0 + 7500,
                  published_at=T0 + 9000)
    write_latency(tmp_path, "+002..+003", [2, 3], run_time=RUN, available_at=T0 + 7500,
                  published_at=T0 + 7560)  # the re-run replaces its own record
    rows = read_latency(tmp_path)
    assert [(r.step, r.chunk) for r in rows] == [(0, "+000..+001"), (1, "+000..+001"),
                                                (2, "+002..+003"), (3, "+002..+003")]
    assert rows[0].latency_s == 90 and rows[0].since_run_s == 7290
    assert rows[3].latency_s == 60 and rows[3].since_run_s == 7560
    expected = [0, 1, 2, 3, 4, 5]
    assert window_published_s(rows, 3, expected) == 7560  # the last of +0..+3
    assert window_published_s(rows, 1, expected) == 7290
    assert window_published_s(rows, 5, expected) is None  # +4, +5 not public yet
    assert list(tmp_path.joinpath("_latency").glob(".*")) == []  # no temp files left


def test_report_shows_latency_by_step_and_bad_records_are_named(tmp_path):
    write_records(tmp_path, "t2m__eu__000-000", [FrameRecord(
        model="icon-eu", run=RUN.isoformat(), product="t2m", region="eu", step=0,
        path="t2m/eu/0.png", bytes=10, load_ms=1, render_ms=2, encode_ms=3)])
    write_latency(tmp_path, "+000..+000", [0], run_time=RUN, available_at=T0 + 7200,
                  published_at=T0 + 7245.5)
    html = write_report(tmp_path).read_text()
    table = html[html.index('id="latency"'):]
    assert "<td>0</td><td>+000..+000</td><td>02:00:00</td><td>02:00:45</td><td>45.5</td>" \
        "<td>120.8</td>" in table
    (tmp_path / "_latency" / "broken.json").write_text("{}")
    with pytest.raises(DataError, match="broken.json: not a latency record"):
        read_latency(tmp_path)
    with pytest.raises(DataError, match="has no time zone"):
        write_latency(tmp_path, "x", [0], run_time=RUN.replace(tzinfo=None), available_at=None,
                      published_at=T0)


def _publish(frames_root, model, run, label, steps, minutes, **ids):
    """One published chunk, as the publish task records it: ``run_dir`` layout, real writer."""
    t0 = run.timestamp()
    return write_latency(run_dir(frames_root, model, run), label, steps, run_time=run,
                         available_at=t0 + minutes * 60 - 30, published_at=t0 + minutes * 60,
                         **ids)


def _iso(day, hour):
    return datetime(2026, 11, day, hour, tzinfo=UTC).isoformat()


def test_in_progress_runs_newest_first_skip_stored_and_bounded(tmp_path, monkeypatch):
    frames = tmp_path / "frames"
    # today's 06 UTC icon-eu run: two chunks so far, from one DAG run
    run6 = datetime(2026, 11, 30, 6, tzinfo=UTC)
    _publish(frames, "icon-eu", run6, "+000..+002", [0, 1, 2], 120,
             dag_id="framecast_icon_eu", run_id="scheduled__2026-11-30T08:00:00+00:00")
    _publish(frames, "icon-eu", run6, "+003..+005", [3, 4, 5], 125,
             dag_id="framecast_icon_eu", run_id="scheduled__2026-11-30T08:00:00+00:00")
    # the 00 UTC run is complete and stored in the metrics DB; gfs has one chunk at 00 UTC
    _publish(frames, "icon-eu", RUN, "+000..+002", [0, 1, 2], 120)
    _publish(frames, "gfs", RUN, "+000..+000", [0], 200)
    # a run folder without records (rendering, nothing published yet) and stray entries
    run_dir(frames, "icon-eu", datetime(2026, 11, 30, 12, tzinfo=UTC)).mkdir(parents=True)
    (frames / "icon-eu" / "notes.txt").write_text("x")
    (frames / "icon-eu" / "2026133100").mkdir()  # ten digits, no date
    (frames / ".hidden").mkdir()
    stored = [("icon-eu", _iso(30, 0))]

    got = in_progress_runs(frames, stored, last=30)
    assert [(p.model, p.run) for p in got] == [("icon-eu", _iso(30, 6)), ("gfs", _iso(30, 0))]
    p = got[0]
    assert (p.steps, p.chunks, p.first_step, p.last_step) == (6, 2, 0, 5)
    assert p.newest.chunk == "+003..+005" and p.newest.since_run_s == 125 * 60
    assert p.newest.latency_s == 30
    assert (p.dag_id, p.run_id) == ("framecast_icon_eu", "scheduled__2026-11-30T08:00:00+00:00")
    assert (got[1].dag_id, got[1].run_id) == ("", "")  # a manual publish names no DAG run
    assert [p.model for p in in_progress_runs(frames, stored, model="gfs")] == ["gfs"]
    assert in_progress_runs(frames, stored, last=1) == got[:1]

    # names that are no model folder are never joined into a path; a missing root is empty
    assert in_progress_runs(frames, stored, model="..") == []
    assert in_progress_runs(frames, stored, model="icon-eu/../gfs") == []
    assert in_progress_runs(tmp_path / "nowhere", stored) == []

    # an unreadable record: the run is listed with the file named
    (run_dir(frames, "gfs", RUN) / "_latency" / "bad.json").write_text("[")
    bad = in_progress_runs(frames, stored, model="gfs")
    assert len(bad) == 1 and "bad.json: not a latency record" in bad[0].error

    # bounded: a full listing stops at its oldest stored run; otherwise a model's run folders
    # are read newest first until ``last`` runs are accounted for, whatever was written before
    reads = []
    real = latency_mod.read_latency
    monkeypatch.setattr(latency_mod, "read_latency", lambda d: reads.append(d) or real(d))
    for day in range(1, 28):  # a month of older runs
        _publish(frames, "icon-eu", datetime(2026, 11, day, 0, tzinfo=UTC), "+000..+000", [0], 90)
    full = [("icon-eu", _iso(30, 0)), ("icon-eu", _iso(29, 0))]
    got = in_progress_runs(frames, full, model="icon-eu", last=2)
    assert [p.run for p in got] == [_iso(30, 6)]
    # read: 12 UTC (no records), 06 UTC; 00 UTC is stored; the 29th is older than the listing
    assert sorted(d.name for d in reads) == ["2026113006", "2026113012"]
    reads.clear()
    got = in_progress_runs(frames, [], model="icon-eu", last=5)  # nothing stored
    assert [p.run for p in got] == [_iso(30, 6), _iso(30, 0), _iso(27, 0), _iso(26, 0),
                                    _iso(25, 0)]
    assert len(reads) == 6  # those five and the folder without records, not the month
    reads.clear()
    # as many folders without records as a listing passes over: it looks no further back
    for hour in range(13, 13 + latency_mod.EMPTY_FOLDERS - 1):
        run_dir(frames, "icon-eu", datetime(2026, 11, 30, hour, tzinfo=UTC)).mkdir()
    assert in_progress_runs(frames, [], model="icon-eu", last=2) == []
    assert len(reads) == latency_mod.EMPTY_FOLDERS
