"""Publishing to a real SFTP server (asyncssh, own process, on 127.0.0.1), including the
server being killed in the middle of an upload."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import paramiko
import pytest

from framecast.errors import PublishAuthError, PublishError
from framecast.publish import SftpTarget, publish_product, publish_run, target_from_url

RUN_A = datetime(2026, 11, 23, 0, tzinfo=UTC)
RUN_B = datetime(2026, 11, 23, 6, tzinfo=UTC)


def sftp_target(srv, **kw):
    opts = {"password": srv.password, "known_hosts": srv.known_hosts}
    opts.update(kw)
    return target_from_url(srv.url(), **opts)


def latest_intact(www: Path, run_id: str, local_run: Path) -> None:
    latest = json.loads((www / "icon-eu" / "latest.json").read_text())
    assert latest["run_id"] == run_id
    manifest = json.loads((www / "icon-eu" / latest["manifest"]).read_text())
    for rel in manifest["files"]:
        assert (www / "icon-eu" / run_id / rel).read_bytes() == (local_run / rel).read_bytes()


def test_sftp_receives_full_run_with_latest_symlink(run_path, sftp_server, check_published):
    srv = sftp_server()
    report = publish_run(run_path, sftp_target(srv), model="icon-eu", run_time=RUN_A, workers=3)
    www = srv.root / "charts"
    check_published(www, "icon-eu", run_path)
    assert len(report.uploaded) == 16
    assert report.symlink is True
    link = www / "icon-eu" / "latest"
    assert link.is_symlink() and os.readlink(link) == "2026112300"
    assert (link / "manifest.json").is_file()
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert runs["latest"] == "2026112300"

    again = publish_run(run_path, sftp_target(srv), model="icon-eu", run_time=RUN_A)
    assert again.uploaded == [] and len(again.skipped) == 16


def test_sftp_key_authentication(run_path, sftp_server, check_published):
    srv = sftp_server()
    target = target_from_url(srv.url(), key_file=srv.client_key, known_hosts=srv.known_hosts)
    publish_run(run_path, target, model="icon-eu", run_time=RUN_A, workers=2)
    check_published(srv.root / "charts", "icon-eu", run_path)


def test_sftp_from_an_open_paramiko_client(run_path, sftp_server, check_published):
    """What the Airflow hook hands over: an already-connected client; workers get their own
    SFTP channels on its SSH connection."""
    srv = sftp_server()
    ssh = paramiko.SSHClient()
    ssh.load_host_keys(str(srv.known_hosts))
    ssh.connect("127.0.0.1", srv.port, username=srv.user, password=srv.password,
                look_for_keys=False, allow_agent=False)
    try:
        target = SftpTarget(client=ssh.open_sftp(), root="/charts")
        report = publish_run(run_path, target, model="icon-eu", run_time=RUN_A, workers=3)
    finally:
        ssh.close()
    assert len(report.uploaded) == 16
    check_published(srv.root / "charts", "icon-eu", run_path)


def test_sftp_wrong_password_and_unknown_host_key(run_path, sftp_server):
    srv = sftp_server()
    with pytest.raises(PublishAuthError, match="authentication failed for user 'pub'"):
        publish_run(run_path, sftp_target(srv, password="nope"), model="icon-eu",
                    run_time=RUN_A)
    with pytest.raises(PublishAuthError, match="unknown host key"):
        publish_run(run_path, sftp_target(srv, known_hosts=None), model="icon-eu",
                    run_time=RUN_A)
    assert list(srv.root.iterdir()) == []


def test_products_published_early_then_run_completed(
    tmp_path, sftp_server, make_run_dir, check_published
):
    """Early products appear (run marked in progress) while latest stays on the previous run."""
    srv = sftp_server()
    www = srv.root / "charts"
    run_a = make_run_dir(tmp_path / "a", run_time=RUN_A, products=("t2m",))
    run_b = make_run_dir(tmp_path / "b", run_time=RUN_B, products=("t2m", "pmsl", "precip"))
    publish_run(run_a, sftp_target(srv), model="icon-eu", run_time=RUN_A)

    first = publish_product(run_b, sftp_target(srv), "t2m", model="icon-eu", run_time=RUN_B)
    assert first.complete is False and first.latest == "2026112300"
    manifest = json.loads((www / "icon-eu" / "2026112306" / "manifest.json").read_text())
    assert manifest["complete"] is False and manifest["product_names"] == ["t2m"]
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert [(r["run_id"], r["complete"]) for r in runs["runs"]] == [
        ("2026112306", False), ("2026112300", True)]
    latest_intact(www, "2026112300", run_a)

    publish_product(run_b, sftp_target(srv), "precip", model="icon-eu", run_time=RUN_B)
    manifest = json.loads((www / "icon-eu" / "2026112306" / "manifest.json").read_text())
    assert manifest["product_names"] == ["precip", "t2m"]
    latest_intact(www, "2026112300", run_a)

    final = publish_run(run_b, sftp_target(srv), model="icon-eu", run_time=RUN_B, retention=1)
    assert len(final.skipped) == 16 and len(final.uploaded) == 8  # only pmsl was missing
    assert final.removed_runs == ["2026112300"]
    check_published(www, "icon-eu", run_b)
    latest_intact(www, "2026112306", run_b)
    assert not (www / "icon-eu" / "2026112300").exists()
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert [r["run_id"] for r in runs["runs"]] == ["2026112306"]


def _watch_progress(www: Path, run_a: Path, seen: list[int]):
    """Progress callback checking, while the publish is in flight, that viewers still get
    the previous run whole."""

    def progress(done: int, total: int, path: str) -> None:
        latest_intact(www, "2026112300", run_a)
        seen.append(done)

    return progress


def test_server_killed_mid_upload_publisher_reconnects_when_it_is_back(
    tmp_path, sftp_server, make_run_dir, check_published
):
    srv = sftp_server()
    www = srv.root / "charts"
    run_a = make_run_dir(tmp_path / "a", run_time=RUN_A, products=("t2m",), regions=("europe",))
    run_b = make_run_dir(tmp_path / "b", run_time=RUN_B, size=(400, 300), noise=True)
    publish_run(run_a, sftp_target(srv), model="icon-eu", run_time=RUN_A)
    srv.stop()
    srv.start(die_after_bytes=400_000)  # dies a few frames into run B
    dead = srv.proc

    def restart_when_dead() -> None:
        dead.wait(60)
        srv.start()  # same port, same folder

    watcher = threading.Thread(target=restart_when_dead)
    watcher.start()
    seen: list[int] = []
    try:
        report = publish_run(run_b, sftp_target(srv), model="icon-eu", run_time=RUN_B,
                             workers=2, retries=8, backoff=0.25,  # rides out a slow restart
                             progress=_watch_progress(www, run_a, seen))
    finally:
        watcher.join(60)
    assert dead.returncode == 17  # it really crashed mid-upload
    assert report.retries >= 1 and seen
    check_published(www, "icon-eu", run_b)
    latest_intact(www, "2026112306", run_b)
    assert not [p for p in www.rglob("*") if p.name.endswith(".part")]


def test_server_killed_task_fails_cleanly_and_retried_task_completes(
    tmp_path, sftp_server, make_run_dir, check_published
):
    srv = sftp_server()
    www = srv.root / "charts"
    run_a = make_run_dir(tmp_path / "a", run_time=RUN_A, products=("t2m",), regions=("europe",))
    run_b = make_run_dir(tmp_path / "b", run_time=RUN_B, size=(400, 300), noise=True)
    publish_run(run_a, sftp_target(srv), model="icon-eu", run_time=RUN_A)
    srv.stop()
    srv.start(die_after_bytes=400_000)
    seen: list[int] = []
    with pytest.raises(PublishError, match="failed after 3 attempts"):
        publish_run(run_b, sftp_target(srv), model="icon-eu", run_time=RUN_B, workers=1,
                    retries=2, backoff=0.05, progress=_watch_progress(www, run_a, seen))
    assert srv.proc.wait(5) == 17
    latest_intact(www, "2026112300", run_a)
    assert not (www / "icon-eu" / "2026112306" / "manifest.json").exists()
    for remote in (www / "icon-eu" / "2026112306").rglob("*.png"):
        rel = remote.relative_to(www / "icon-eu" / "2026112306")
        assert remote.read_bytes() == (run_b / rel).read_bytes(), f"corrupt {rel}"

    srv.start()  # the retried task finds the server back
    report = publish_run(run_b, sftp_target(srv), model="icon-eu", run_time=RUN_B, workers=2)
    assert len(report.skipped) == len(seen) > 0
    assert len(report.skipped) + len(report.uploaded) == 16
    check_published(www, "icon-eu", run_b)
    latest_intact(www, "2026112306", run_b)
    assert not [p for p in www.rglob("*") if p.name.endswith(".part")]
