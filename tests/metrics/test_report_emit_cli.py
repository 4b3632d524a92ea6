"""Run report files, StatsD timers over a real UDP socket, and the ``framecast metrics`` CLI."""

from __future__ import annotations

import socket
import struct

import pytest

from framecast.cli import main
from framecast.errors import DataError
from framecast.metrics import emit, report
from framecast.records import chunk_name, write_records


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    return w, h


def _write_run(run_dir, recs):
    for p in sorted({r.product for r in recs}):
        mine = [r for r in recs if r.product == p]
        write_records(run_dir, chunk_name(p, "europe", [r.step for r in mine]), mine)


def test_report_written_into_run_dir(tmp_path, make):
    run_dir = tmp_path / "icon-eu" / "2026112300"
    _write_run(run_dir, make(regions=("europe",)))
    index = report.write_report(run_dir)
    assert index == run_dir / "_report" / "index.html"
    html = index.read_text()
    assert 'id="summary"' in html and 'id="steps"' in html
    # 2 products x 1 region summary rows + 12 step rows
    assert html.count("<tr><td>") == 2 + 12
    assert '<a href="../t_2m/europe/005.png">' in html
    for name in ("steps.png", "stages.png", "throughput.png"):
        data = (run_dir / "_report" / name).read_bytes()
        w, h = _png_size(data)
        assert w >= 600 and h >= 200
        assert data.endswith(b"IEND\xaeB`\x82")
        assert f'src="{name}"' in html
    assert not [p for p in (run_dir / "_report").iterdir() if p.name.startswith(".")]


def test_group_stats_throughput(make):
    (g,) = report.group_stats(make(products=("t_2m",), steps=[0, 1]))
    # frames 116 and 117 ms -> 2 frames in 0.233 s
    assert g.frames_per_s == pytest.approx(2000 / 233)
    assert g.stage_median_ms["render_ms"] == pytest.approx(100.5)


def test_report_refuses_empty_or_mixed(tmp_path, make):
    with pytest.raises(DataError, match="no frame records"):
        report.write_report(tmp_path)
    mixed = make(products=("a",)) + make(products=("b",), run="2026-11-24T00:00:00+00:00")
    with pytest.raises(DataError, match="mix model runs"):
        report.write_report(tmp_path, mixed)


def test_timer_names():
    from framecast.records import FrameRecord

    rec = FrameRecord("icon-eu", "r", "t.2m", "eu/west", 3, "p", render_ms=12.5)
    names = {t.name: t.ms for t in emit.frame_timings(rec)}
    assert names["framecast.frame.render.icon-eu.t_2m.eu_west"] == 12.5
    assert set(names) == {f"framecast.frame.{s}.icon-eu.t_2m.eu_west"
                          for s in ("load", "render", "encode", "upload", "total")}


@pytest.fixture
def udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def _recv_all(sock, n):
    lines = []
    while len(lines) < n:
        data, _ = sock.recvfrom(65535)
        lines.extend(data.decode().splitlines())
    return lines


def test_cli_emit_statsd_over_udp(tmp_path, make, udp, monkeypatch, capsys):
    run_dir = tmp_path / "run"
    _write_run(run_dir, make(products=("t_2m",), steps=[0, 1]))
    monkeypatch.setenv("FRAMECAST_STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("FRAMECAST_STATSD_PORT", str(udp.getsockname()[1]))
    monkeypatch.setenv("FRAMECAST_STATSD_PREFIX", "ops")
    assert main(["metrics", "emit", str(run_dir)]) == 0
    assert "10 timers sent" in capsys.readouterr().out
    lines = _recv_all(udp, 10)
    assert "ops.framecast.frame.render.icon-eu.t_2m.europe:100.000000|ms" in lines
    assert "ops.framecast.frame.total.icon-eu.t_2m.europe:117.000000|ms" in lines


def test_statsd_bad_port_named(monkeypatch):
    from framecast.errors import SpecError

    with pytest.raises(SpecError, match="'eighty'"):
        emit.statsd_client_from_env({"FRAMECAST_STATSD_HOST": "h", "FRAMECAST_STATSD_PORT": "eighty"})
    assert emit.statsd_client_from_env({}) is None


def test_cli_ingest_runs_show_check_report(tmp_path, make, capsys):
    db = f"sqlite:///{tmp_path}/m.sqlite"
    for day in (19, 20, 21):
        d = tmp_path / "icon-eu" / f"202611{day}00"
        _write_run(d, make(run=f"2026-11-{day}T00:00:00+00:00"))
        assert main(["metrics", "ingest", str(d), "--db", db]) == 0
    slow = tmp_path / "icon-eu" / "2026112200"
    _write_run(slow, make(run="2026-11-22T00:00:00+00:00", render_ms=500.0))
    assert main(["metrics", "ingest", str(slow), "--db", db]) == 0
    capsys.readouterr()

    assert main(["metrics", "runs", "--db", db, "--model", "icon-eu", "--last", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and "2026-11-22T00:00:00+00:00" in out[1] and "2026-11-21" in out[2]

    assert main(["metrics", "show", "2026112200", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "icon-eu 2026-11-22T00:00:00+00:00: 12 frames" in out and "t_2m" in out

    assert main(["metrics", "check", "2026112200", "--db", db]) == 8
    assert "slow pmsl, t_2m" in capsys.readouterr().out
    assert main(["metrics", "check", "2026112100", "--db", db, "--min-runs", "2"]) == 0

    assert main(["metrics", "report", str(slow)]) == 0
    assert (slow / "_report" / "index.html").is_file()

    assert main(["metrics", "show", "2026010100", "--db", db]) == 3
    assert "no frames stored" in capsys.readouterr().err
