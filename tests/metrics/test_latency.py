"""Publish latency records: written per chunk, read per step, checked against step windows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from framecast.errors import DataError
from framecast.metrics.latency import read_latency, window_published_s, write_latency
from framecast.metrics.report import write_report
from framecast.records import FrameRecord, write_records

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
