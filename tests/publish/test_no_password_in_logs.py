"""No password appears in any error or log line, whatever fails.

One known password goes into every URL and login framecast handles (upstream mirror, metrics
database, choropleth source, FTP, SFTP, the deployment's database roles); every failure path is
driven for real (closed ports, a real 404, real servers refusing the login). Every error
message, log record and CLI output is written to one log file, which is then grepped for the
password.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.catalog import HttpSpec, get_model, run_files
from framecast.errors import FramecastError
from framecast.upstream import UpstreamServer

ROOT = Path(__file__).resolve().parents[2]
RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
SECRET = f"Pw{uuid.uuid4().hex}"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def _cli(*args: str, env: dict | None = None) -> str:
    proc = subprocess.run([sys.executable, "-m", "framecast.cli", *args], capture_output=True,
                          text=True, timeout=180, env={**os.environ, **(env or {})})
    assert proc.returncode != 0, proc.stdout[-500:]
    return f"$ framecast {args[0]} ...\n{proc.stdout}\n{proc.stderr}\n"  # output only


def test_no_password_in_any_error_or_log_line(tmp_path, caplog, run_path, ftp_server,
                                               sftp_server):
    caplog.set_level(logging.DEBUG)
    out: list[str] = []

    def expect_error(fn, *args, **kwargs) -> None:
        with pytest.raises((FramecastError, OSError)) as info:
            fn(*args, **kwargs)
        out.append(f"{type(info.value).__name__}: {info.value}")

    port = _closed_port()
    # upstream mirror with credentials: a real 404, then an unreachable server (retried, logged)
    from framecast.fetch import fetch_file, missing_files

    rf = run_files(get_model("icon-eu"), RUN, ["t2m"], steps=[0])[0]
    fast = HttpSpec(timeout=2, retries=2, backoff=0.01, deadline=20)
    with UpstreamServer(tmp_path / "empty-upstream") as server:
        (tmp_path / "empty-upstream").mkdir(exist_ok=True)
        mirror = server.url.replace("http://", f"http://mirror:{SECRET}@")
        expect_error(fetch_file, mirror, rf, tmp_path / "raw", http=fast)
        out.append(f"missing: {missing_files(mirror, [rf], timeout=5)}")
    expect_error(fetch_file, f"http://mirror:{SECRET}@127.0.0.1:{port}", rf, tmp_path / "raw",
                 http=fast, sleep=lambda s: None)

    # metrics database: unreachable, and a malformed URL
    from framecast.metrics import store

    expect_error(store.recent_runs, f"postgresql+psycopg://fc:{SECRET}@127.0.0.1:{port}/m")
    expect_error(store.get_engine, f"postgresql+psycopg://fc:{SECRET}@127.0.0.1:bad/m")

    # choropleth source: malformed URL, unreachable database
    from framecast.choropleth.source import SourceSpec, make_engine, value_range
    from framecast.choropleth.timeline import Timeline, parse_interval

    expect_error(make_engine, f"postgresql+psycopg2://fc:{SECRET}@127.0.0.1:bad/x")
    url = f"postgresql+psycopg2://fc:{SECRET}@127.0.0.1:{port}/x"
    spec = SourceSpec(url=url, table="obs", code_column="iso", time_column="ts", metric="v")
    tl = Timeline(datetime(2021, 3, 1), datetime(2021, 3, 3), parse_interval("day"))
    expect_error(value_range, make_engine(url, timeout_s=5), spec, tl)

    # the CLIs, as an operator runs them
    out.append(_cli("metrics", "runs", "--db",
                    f"postgresql+psycopg://fc:{SECRET}@127.0.0.1:{port}/m"))
    out.append(_cli("metrics", "runs", "--db", f"postgresql+psycopg://fc:{SECRET}@x:bad/m"))
    animations = ROOT / "include" / "framecast" / "config" / "animations" / "covid_daily.yaml"
    out.append(_cli("choropleth", "render", str(animations), "--url", url,
                    "--out", str(tmp_path / "anim")))

    # publish targets refusing the login
    from framecast.publish import publish_run, target_from_url

    ftp = ftp_server()
    expect_error(publish_run, run_path, target_from_url(
        f"ftp://{ftp.user}:{SECRET}@127.0.0.1:{ftp.port}/charts"), model="icon-eu",
        run_time=RUN, retries=1, backoff=0.01)
    sftp = sftp_server()
    expect_error(publish_run, run_path, target_from_url(
        f"sftp://{sftp.user}:{SECRET}@127.0.0.1:{sftp.port}/charts",
        known_hosts=sftp.known_hosts), model="icon-eu", run_time=RUN, retries=1, backoff=0.01)
    out.append(_cli("publish", str(run_path), "--target",
                    f"ftp://{ftp.user}:{SECRET}@127.0.0.1:{ftp.port}/charts"))

    # the deployment: database roles with an unreachable superuser URL, a too-short secret
    proc = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "db_roles.py")], capture_output=True, text=True,
        timeout=120, env={**os.environ,
                          "FRAMECAST_DB_ADMIN_URL": f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/postgres",
                          "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                              f"postgresql+psycopg2://airflow:{SECRET}@127.0.0.1:{port}/airflow"})
    assert proc.returncode == 1
    out.append(proc.stdout + proc.stderr)
    short = SECRET[:8]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "check_secrets.py")], capture_output=True,
        text=True, timeout=60, env={**os.environ, "AIRFLOW__CELERY__BROKER_URL":
                                    f"redis://:{short}@redis:6379/0"})
    assert proc.returncode == 1 and "REDIS_PASSWORD" in proc.stderr
    assert short not in proc.stderr + proc.stdout
    out.append(proc.stdout + proc.stderr)

    log = tmp_path / "test.log"
    log.write_text("\n".join(out) + "\n" + caplog.text)
    assert len(out) >= 14 and "127.0.0.1" in log.read_text()  # the failures were recorded
    grep = subprocess.run(["grep", "-n", "-F", SECRET, str(log)], capture_output=True,
                          text=True)
    assert grep.returncode == 1, f"password found in the logs:\n{grep.stdout[:3000]}"
