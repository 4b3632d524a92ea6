"""Publishing to real FTP and FTPS servers (pyftpdlib on 127.0.0.1), including dropped
connections in the middle of an upload."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.errors import PublishAuthError, PublishError
from framecast.publish import publish_run, target_from_url

RUN_A = datetime(2026, 11, 23, 0, tzinfo=UTC)
RUN_B = datetime(2026, 11, 23, 6, tzinfo=UTC)


def ftp_url(srv, scheme: str = "ftp", password: str | None = None) -> str:
    pw = srv.password if password is None else password
    return f"{scheme}://{srv.user}:{pw}@127.0.0.1:{srv.port}/charts"


def no_partials(root: Path) -> None:
    leftovers = [p for p in root.rglob("*") if p.name.endswith(".part")]
    assert not leftovers, f"temporary files left on the server: {leftovers}"


def test_ftp_receives_full_run_and_skips_it_when_republished(
    tmp_path, run_path, ftp_server, check_published
):
    srv = ftp_server()
    report = publish_run(run_path, target_from_url(ftp_url(srv)), model="icon-eu",
                         run_time=RUN_A, workers=3)
    www = srv.root / "charts"
    manifest = check_published(www, "icon-eu", run_path)
    assert len(report.uploaded) == 16 and not report.skipped
    assert manifest["product_names"] == ["pmsl", "t2m"]
    assert manifest["regions"] == ["alps", "europe"] and manifest["steps"] == [0, 1, 2, 3]
    frames = manifest["products"]["t2m"]["regions"]["alps"]["frames"]
    assert [f["step"] for f in frames] == [0, 1, 2, 3]
    assert frames[2]["valid_time"] == "2026-11-23T02:00:00+00:00"
    latest = json.loads((www / "icon-eu" / "latest.json").read_text())
    assert latest["run_id"] == "2026112300" and latest["manifest"] == "2026112300/manifest.json"
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert [r["run_id"] for r in runs["runs"]] == ["2026112300"] and runs["latest"] == "2026112300"
    for name in ("index.html", "viewer.js", "viewer.css"):
        assert (www / "icon-eu" / name).stat().st_size > 100
    assert report.symlink is False  # FTP has no symlinks; latest.json is the pointer
    no_partials(srv.root)

    again = publish_run(run_path, target_from_url(ftp_url(srv)), model="icon-eu",
                        run_time=RUN_A, workers=2)
    assert again.uploaded == [] and len(again.skipped) == 16

    # a re-rendered frame (new content) is uploaded again, the others are not
    frame = run_path / "t2m" / "europe" / "t2m_europe_002.png"
    frame.write_bytes(frame.read_bytes() + b"\0")  # trailing bytes: a different file
    third = publish_run(run_path, target_from_url(ftp_url(srv)), model="icon-eu",
                        run_time=RUN_A)
    assert third.uploaded == ["t2m/europe/t2m_europe_002.png"]
    check_published(www, "icon-eu", run_path)


def test_ftps_with_verified_self_signed_certificate(run_path, ftp_server, check_published):
    srv = ftp_server(tls=True)
    target = target_from_url(ftp_url(srv, "ftps"), ca_file=srv.cafile)
    report = publish_run(run_path, target, model="icon-eu", run_time=RUN_A, workers=2)
    assert len(report.uploaded) == 16
    check_published(srv.root / "charts", "icon-eu", run_path)


def test_ftps_untrusted_certificate_is_refused_before_anything_is_sent(run_path, ftp_server):
    srv = ftp_server(tls=True)
    with pytest.raises(PublishAuthError, match="certificate"):
        publish_run(run_path, target_from_url(ftp_url(srv, "ftps")), model="icon-eu",
                    run_time=RUN_A)
    assert list(srv.root.iterdir()) == []


def test_ftp_wrong_password_is_a_clear_error_and_publishes_nothing(run_path, ftp_server):
    srv = ftp_server()
    with pytest.raises(PublishAuthError, match=r"login rejected for user 'pub'") as info:
        publish_run(run_path, target_from_url(ftp_url(srv, password="wrong")),
                    model="icon-eu", run_time=RUN_A)
    assert "wrong" not in str(info.value)  # the password is never echoed
    assert list(srv.root.iterdir()) == []


def _latest_is_intact(www: Path, run_id: str, local_run: Path) -> None:
    """latest.json points to ``run_id`` and each of its files is whole and unchanged."""
    latest = json.loads((www / "icon-eu" / "latest.json").read_text())
    assert latest["run_id"] == run_id
    manifest = json.loads((www / "icon-eu" / latest["manifest"]).read_text())
    for rel, meta in manifest["files"].items():
        remote = www / "icon-eu" / run_id / rel
        assert remote.read_bytes() == (local_run / rel).read_bytes(), rel
        assert remote.stat().st_size == meta["size"]


@pytest.mark.parametrize("tls", [False, True], ids=["ftp", "ftps"])
def test_connection_cut_mid_upload_is_resumed_and_latest_stays_intact(
    tmp_path, ftp_server, make_run_dir, check_published, make_fault, tls
):
    """The server drops the session twice in the middle of a file; the publisher reconnects,
    re-sends that file and finishes. While the cut happens the previous run is served whole."""
    www_fault_checks: list[str] = []
    run_a = make_run_dir(tmp_path / "a", run_time=RUN_A, products=("t2m",), regions=("europe",))
    run_b = make_run_dir(tmp_path / "b", run_time=RUN_B, size=(400, 300), noise=True)
    big = max(p.stat().st_size for p in run_b.rglob("*.png"))
    assert big > 100_000

    def check_while_cut() -> None:
        _latest_is_intact(srv.root / "charts", "2026112300", run_a)
        assert not (srv.root / "charts" / "icon-eu" / "2026112306" / "manifest.json").exists()
        www_fault_checks.append("ok")

    fault = make_fault(after_bytes=70_000, times=2, on_fault=check_while_cut)
    srv = ftp_server(tls=tls, fault=fault)
    extra = {"ca_file": srv.cafile} if tls else {}
    publish_run(run_a, target_from_url(ftp_url(srv, "ftps" if tls else "ftp"), **extra),
                model="icon-eu", run_time=RUN_A)
    assert fault.fired == 0  # run A's small frames never reach the threshold

    report = publish_run(run_b, target_from_url(ftp_url(srv, "ftps" if tls else "ftp"), **extra),
                         model="icon-eu", run_time=RUN_B, workers=2, retries=4, backoff=0.05)
    assert fault.fired == 2 and not fault.errors and www_fault_checks == ["ok", "ok"]
    assert report.retries >= 2
    www = srv.root / "charts"
    check_published(www, "icon-eu", run_b)
    _latest_is_intact(www, "2026112306", run_b)
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert [r["run_id"] for r in runs["runs"]] == ["2026112306", "2026112300"]
    no_partials(srv.root)


def test_publish_that_gives_up_leaves_latest_alone_and_a_retry_completes(
    tmp_path, ftp_server, make_run_dir, check_published, make_fault
):
    """Like an Airflow task failing and being retried: the first attempt runs out of
    reconnects, the second (server healthy again) uploads only what is missing."""
    run_a = make_run_dir(tmp_path / "a", run_time=RUN_A, products=("t2m",), regions=("europe",))
    run_b = make_run_dir(tmp_path / "b", run_time=RUN_B, size=(400, 300), noise=True)
    fault = make_fault(after_bytes=70_000, times=0)
    srv = ftp_server(fault=fault)
    publish_run(run_a, target_from_url(ftp_url(srv)), model="icon-eu", run_time=RUN_A)

    fault.remaining = 5  # after a few files, every upload attempt is cut
    www = srv.root / "charts"
    uploaded_before_failure: list[str] = []

    def on_progress(done: int, total: int, path: str) -> None:
        uploaded_before_failure.append(path)
        if len(uploaded_before_failure) == 3:
            fault.after_bytes = 70_000

    fault.after_bytes = 10**12  # not yet: let three files through first
    with pytest.raises(PublishError, match="failed after 3 attempts"):
        publish_run(run_b, target_from_url(ftp_url(srv)), model="icon-eu", run_time=RUN_B,
                    workers=1, retries=2, backoff=0.01, progress=on_progress)
    _latest_is_intact(www, "2026112300", run_a)
    assert not (www / "icon-eu" / "2026112306" / "manifest.json").exists()
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert [r["run_id"] for r in runs["runs"]] == ["2026112300"]
    # every file that exists under its final name is complete and correct
    for remote in (www / "icon-eu" / "2026112306").rglob("*.png"):
        rel = remote.relative_to(www / "icon-eu" / "2026112306")
        assert remote.read_bytes() == (run_b / rel).read_bytes(), rel

    fault.remaining = 0  # the server is healthy again: the retried task completes
    report = publish_run(run_b, target_from_url(ftp_url(srv)), model="icon-eu",
                         run_time=RUN_B, workers=2)
    assert len(report.skipped) == 3 and len(report.uploaded) == 13
    check_published(www, "icon-eu", run_b)
    _latest_is_intact(www, "2026112306", run_b)
    no_partials(srv.root)
