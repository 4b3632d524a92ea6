"""Airflow-side pieces without a deployment: e-mail texts from a callback context, the page's
table, the deadline definition, the task-try callback, and Airflow's StatsD backend carrying
frame timers to a real UDP socket (in a fresh process, as a task runner would initialize it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from framecast.metrics import store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def plugins_importable(monkeypatch, tmp_path):
    """The plugins folder importable and a throw-away AIRFLOW_HOME, as in a deployment."""
    if "airflow" not in sys.modules:
        monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.syspath_prepend(str(ROOT / "plugins"))


CONTEXT = {
    "dag_run": {"dag_id": "icon_eu", "dag_run_id": "scheduled__2026-11-23T00:00:00+00:00",
                "logical_date": "2026-11-23T00:00:00Z", "state": "running"},
    "deadline": {"id": "x", "deadline_time": datetime(2026, 11, 23, 4, tzinfo=UTC)},
}


def test_deadline_email_from_scheduler_context():
    from framecast_airflow import alerts

    subject, html = alerts.deadline_email(CONTEXT, what="ICON-EU charts", ui_url="http://af:8080/")
    assert subject == "[framecast] LATE: icon_eu scheduled__2026-11-23T00:00:00+00:00: ICON-EU charts"
    assert "2026-11-23 04:00:00+00:00" in html and "running" in html
    assert 'href="http://af:8080/dags/icon_eu/runs/scheduled__2026-11-23T00%3A00%3A00%2B00%3A00"' in html


def test_publish_deadline_builds_async_callback():
    from airflow.sdk import DeadlineReference
    from airflow.sdk.definitions.callback import AsyncCallback

    from framecast_airflow import alerts

    alert = alerts.publish_deadline(timedelta(hours=4), to="ops@example.com", what="charts")
    assert alert.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert alert.interval == timedelta(hours=4)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "framecast_airflow.alerts.notify_deadline_missed"
    assert alert.callback.kwargs["to"] == ["ops@example.com"]
    with pytest.raises(ValueError, match="no recipient"):
        alerts.publish_deadline(timedelta(hours=1), to=[])


class _TI:
    dag_id, run_id, task_id, map_index, try_number = "d", "r", "render", 4, 2


def test_record_task_try_callback_and_failure_is_swallowed(tmp_path):
    from framecast_airflow import alerts

    db = f"sqlite:///{tmp_path}/m.sqlite"
    alerts.RecordTaskTry(db, "success")({"ti": _TI()})
    (t,) = store.retried_tasks(db, "d", "r")
    assert (t.task_id, t.map_index, t.try_number, t.state) == ("render", 4, 2, "success")
    # a broken metrics DB must not fail the observed task
    alerts.RecordTaskTry("nosuchdb://x", "success")({"ti": _TI()})
    # the DB may be resolved from the context at run time
    alerts.RecordTaskTry(lambda ctx: ctx["db"], "up_for_retry")({"ti": _TI(), "db": db})
    assert [t.state for t in store.task_tries_of(db, "d", "r")] == ["up_for_retry"]


def test_alert_recipients_from_env():
    from framecast_airflow import alerts

    assert alerts.alert_recipients({"FRAMECAST_ALERT_EMAILS": " a@x, ,b@y "}) == ["a@x", "b@y"]
    assert alerts.alert_recipients({}) == []


def test_runs_table_links_and_retry_highlight():
    from framecast_airflow.metrics_view import runs_table

    rows = [store.RunSummary("icon-eu", "2026-11-23T00:00:00+00:00", 10, 2, 5000.0, 400.0,
                             700.0, 2_000_000, 2, None, "icon_eu", "manual__1", "http://r/x")]
    html = runs_table(rows, "http://af")
    assert 'href="runs/icon-eu/2026-11-23T00%3A00%3A00%2B00%3A00"' in html
    assert 'href="http://af/dags/icon_eu/runs/manual__1"' in html
    assert 'href="http://r/x"' in html
    assert '<span class="warn">2</span>' in html
    assert runs_table([], "http://af") == "<p>No runs recorded yet.</p>"


def test_airflow_statsd_backend_carries_frame_timers():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    env = dict(os.environ, AIRFLOW__METRICS__STATSD_ON="True",
               AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
               AIRFLOW__METRICS__STATSD_PORT=str(sock.getsockname()[1]),
               AIRFLOW__METRICS__STATSD_PREFIX="af",
               PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")]))
    code = textwrap.dedent("""
        from airflow.sdk.configuration import conf
        from airflow.sdk.observability import stats
        from airflow.sdk.observability.metrics import stats_utils
        from framecast.records import FrameRecord
        from framecast_airflow.frame_stats import emit_frame_timings

        # what the task runner does at start-up
        stats.initialize(factory=stats_utils.get_stats_factory(),
                         export_legacy_names=conf.getboolean("metrics", "legacy_names_on"))
        recs = [FrameRecord("icon-eu", "r", "t_2m", "europe", s, "p", render_ms=40.0 + s)
                for s in range(3)]
        print(emit_frame_timings(recs))
    """)
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=120, check=True).stdout
        assert out.strip().splitlines()[-1] == "15"
        lines = []
        while len(lines) < 15:
            lines.extend(sock.recvfrom(65535)[0].decode().splitlines())
    finally:
        sock.close()
    render = sorted(ln for ln in lines if ".render." in ln)
    assert render == [f"af.framecast.frame.render.icon-eu.t_2m.europe:{40 + s}.000000|ms"
                      for s in range(3)]


@pytest.fixture
def smtp(monkeypatch):
    """A real SMTP server on loopback and an Airflow connection ``fc_smtp`` pointing at it."""
    import json
    from email import message_from_bytes

    from aiosmtpd.controller import Controller

    received = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            received.append(message_from_bytes(envelope.content))
            return "250 OK"

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(Handler(), hostname="127.0.0.1", port=port)
    ctl.start()
    monkeypatch.setenv("AIRFLOW_CONN_FC_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0,
                  "from_email": "framecast@example.com"}}))
    yield received
    ctl.stop()


def _run_dir(tmp_path, make, run, **kw):
    from framecast.records import chunk_name, write_records

    d = tmp_path / "testmodel" / run
    recs = make(model="testmodel", run=f"{run[:4]}-{run[4:6]}-{run[6:8]}T{run[8:]}:00:00+00:00",
                **kw)
    for p in {r.product for r in recs}:
        write_records(d, chunk_name(p, "europe", [0, 5]), [r for r in recs if r.product == p])
    return d


@pytest.mark.parametrize("slow", [False, True])
def test_metrics_task_budget_email_only_when_slow(tmp_path, make, smtp, slow):
    from framecast_airflow import alerts

    db = f"sqlite:///{tmp_path}/m.sqlite"
    for day in ("2026112000", "2026112100", "2026112200"):
        store.ingest_run(db, _run_dir(tmp_path, make, day))
    run_dir = _run_dir(tmp_path, make, "2026112300", render_ms=600.0 if slow else 110.0)
    summary = alerts.run_metrics_task(
        db_url=db, run_dir=run_dir, dag_id="testmodel", run_id="manual__1", to=["ops@x.org"],
        smtp_conn_id="fc_smtp", factor=1.5, ui_url="http://af:8080", emit_timers=False)
    assert summary["frames"] == 12 and (run_dir / "_report" / "index.html").is_file()
    assert summary["ok"] is not slow and summary["alert_sent"] is slow
    if not slow:
        assert smtp == []
        return
    (mail,) = smtp
    assert mail["Subject"] == ("[framecast] BUDGET: testmodel 2026-11-23T00:00:00+00:00: "
                               "slow pmsl, t_2m")
    assert mail["To"] == "ops@x.org"
    body = mail.get_payload(0).get_payload(decode=True).decode()
    assert 'href="http://af:8080/dags/testmodel/runs/manual__1"' in body
    assert "<td>pmsl</td><td>6</td>" in body


def test_metrics_task_alerts_on_retried_frames_alone(tmp_path, make, smtp):
    from framecast_airflow import alerts

    db = f"sqlite:///{tmp_path}/m.sqlite"
    run_dir = _run_dir(tmp_path, make, "2026112300", try_number=3)
    summary = alerts.run_metrics_task(db_url=db, run_dir=run_dir, dag_id="d", run_id="r",
                                      to="ops@x.org", smtp_conn_id="fc_smtp", emit_timers=False)
    assert summary["retried_frames"] == ["pmsl/europe", "t_2m/europe"]
    (mail,) = smtp
    assert mail["Subject"].endswith(": 2 chunk(s) rendered by a retry")
    assert "(try 3)" in mail.get_payload(0).get_payload(decode=True).decode()


def test_window_deadline_mails_only_when_the_window_is_not_public(smtp, tmp_path, monkeypatch):
    """"First 3 h within 2 h 30 min": the callback reads the run's latency records; in time,
    nothing is sent; one step late, the real SMTP server gets the e-mail."""
    import asyncio

    from framecast.metrics.latency import write_latency
    from framecast.records import run_dir
    from framecast_airflow import alerts

    monkeypatch.setenv("FRAMECAST_DATA_ROOT", str(tmp_path))
    run = datetime(2026, 11, 23, 0, tzinfo=UTC)
    frames = run_dir(tmp_path / "frames", "icon-eu", run)
    t0 = run.timestamp()
    write_latency(frames, "+000..+001", [0, 1], run_time=run, available_at=t0 + 7200,
                  published_at=t0 + 7300)
    kwargs = {"to": ["ops@example.com"], "what": "ICON-EU +0..+003 h", "model": "icon-eu",
              "upto_step": 3, "within_s": 9000.0, "smtp_conn_id": "fc_smtp", "context": CONTEXT}
    # +2 and +3 not published yet when the deadline passes: late
    assert asyncio.run(alerts.notify_window_missed(**kwargs)).startswith("[framecast] LATE")
    assert len(smtp) == 1 and "+0..+003" in smtp[0]["Subject"]
    write_latency(frames, "+002..+003", [2, 3], run_time=run, available_at=t0 + 7900,
                  published_at=t0 + 8000)  # 2 h 13 min: in time
    assert asyncio.run(alerts.notify_window_missed(**kwargs)) is None
    assert len(smtp) == 1
    kwargs["within_s"] = 7500.0  # the same records against a 2 h 05 min window: late
    asyncio.run(alerts.notify_window_missed(**kwargs))
    assert len(smtp) == 2


def test_listing_merges_runs_in_progress_newest_first(tmp_path):
    """A run still streaming (latency records, real writer and layout, nothing stored) is
    listed above the stored runs, marked in progress, linked to its page and its DAG run."""
    from framecast.metrics.latency import in_progress_runs, write_latency
    from framecast.records import run_dir
    from framecast_airflow.metrics_view import listing, runs_table

    run = datetime(2026, 11, 23, 6, tzinfo=UTC)
    t0 = run.timestamp()
    for label, steps, at in (("+000..+001", [0, 1], 7200), ("+002..+003", [2, 3], 7500)):
        write_latency(run_dir(tmp_path, "icon-eu", run), label, steps, run_time=run,
                      available_at=t0 + at - 45, published_at=t0 + at, dag_id="icon_eu",
                      run_id="scheduled__2026-11-23T08:00:00+00:00")
    stored = [store.RunSummary("icon-eu", "2026-11-23T00:00:00+00:00", 10, 2, 5000.0, 400.0,
                               700.0, 2_000_000, 1, None, "icon_eu", "manual__1", ""),
              store.RunSummary("gfs", "2026-11-22T18:00:00+00:00", 4, 1, 100.0, 25.0, 25.0,
                               1000, 1, None)]
    progress = in_progress_runs(tmp_path, [(r.model, r.run) for r in stored], last=30)
    rows = listing(stored, progress, 30)
    assert [(r.model, r.run) for r in rows] == [
        ("icon-eu", "2026-11-23T06:00:00+00:00"), ("icon-eu", "2026-11-23T00:00:00+00:00"),
        ("gfs", "2026-11-22T18:00:00+00:00")]
    assert listing(stored, progress, 2) == rows[:2]
    html = runs_table(rows, "http://af")
    first = html[html.index('<tr class="progress">'):]
    first = first[:first.index("</tr>")]
    assert "<b>in progress</b>: 4 steps (+000..+003) in 2 chunks published" in first
    assert "newest +002..+003 public 08:05:00 UTC, 125.0 min after run time, latency 45.0 s" \
        in first
    assert 'href="runs/icon-eu/2026-11-23T06%3A00%3A00%2B00%3A00"' in first
    assert 'href="http://af/dags/icon_eu/runs/scheduled__2026-11-23T08%3A00%3A00%2B00%3A00"' \
        in first
    assert html.count("in progress") == 1 and html.count("<tr>") == 3  # header + 2 stored
