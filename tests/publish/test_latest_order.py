"""``latest`` never moves backwards: a backfill or re-run of an older cycle is published beside
the newer run on every kind of target (folder, real FTP server, real SFTP server), and only an
explicit ``force_latest`` points ``latest`` back at it."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.cli import main as cli_main
from framecast.publish import LocalTarget, publish_run, target_from_url

NEW = datetime(2026, 11, 30, 0, tzinfo=UTC)
OLD_1 = datetime(2026, 11, 29, 12, tzinfo=UTC)
OLD_2 = datetime(2026, 11, 29, 18, tzinfo=UTC)


def _target(kind: str, tmp_path: Path, ftp_server, sftp_server):
    """(a fresh target factory, the folder on the server where the runs land, symlinks?)"""
    if kind == "local":
        www = tmp_path / "www"
        return (lambda: LocalTarget(www)), www, True
    if kind == "ftp":
        srv = ftp_server()
        url = f"ftp://{srv.user}:{srv.password}@127.0.0.1:{srv.port}/charts"
        return (lambda: target_from_url(url)), srv.root / "charts", False
    srv = sftp_server()
    return ((lambda: target_from_url(srv.url(), password=srv.password,
                                     known_hosts=srv.known_hosts)),
            srv.root / "charts", True)


def _pointers(www: Path) -> tuple[str, str, str | None]:
    latest = json.loads((www / "icon-eu" / "latest.json").read_text())["run_id"]
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())["latest"]
    link = www / "icon-eu" / "latest"
    return latest, runs, (os.readlink(link) if link.is_symlink() else None)


@pytest.mark.parametrize("kind", ["local", "ftp", "sftp"])
def test_backfill_of_older_cycles_leaves_latest_on_the_newer_run(
    kind, tmp_path, make_run_dir, check_published, ftp_server, sftp_server, caplog,
):
    """Guards the comparison in ``_switch_pointers``: without it, publishing 2026112912 after
    2026113000 switches latest.json, runs.json and the symlink back to the older run."""
    new_target, www, symlinks = _target(kind, tmp_path, ftp_server, sftp_server)
    runs = {t: make_run_dir(tmp_path / t.strftime("%Y%m%d%H"), run_time=t, products=("t2m",),
                            regions=("eu",), steps=(0, 1), tag=t.strftime("%H"))
            for t in (NEW, OLD_1, OLD_2)}
    first = publish_run(runs[NEW], new_target(), model="icon-eu", run_time=NEW)
    assert first.latest == "2026113000" and not first.kept_newer_latest
    # a backfill of two past cycles, oldest first, as `airflow backfill create` runs them
    for t in (OLD_1, OLD_2):
        with caplog.at_level(logging.INFO, logger="framecast.publish.publisher"):
            report = publish_run(runs[t], new_target(), model="icon-eu", run_time=t,
                                 retention=4)
        assert (f"run {t:%Y%m%d%H} is older than latest 2026113000: published beside it, "
                "latest stays (force_latest moves it back)") in caplog.text
        assert report.latest == "2026113000" and report.kept_newer_latest, report.summary()
        assert "(newer, kept)" in report.summary()
        check_published(www, "icon-eu", runs[t])  # the older run is complete beside it
    latest, in_runs, link = _pointers(www)
    assert latest == in_runs == "2026113000"
    if symlinks:
        assert link == "2026113000"
    listed = json.loads((www / "icon-eu" / "runs.json").read_text())["runs"]
    assert [r["run_id"] for r in listed] == ["2026113000", "2026112918", "2026112912"]
    check_published(www, "icon-eu", runs[NEW])

    # only an explicit request moves latest back
    forced = publish_run(runs[OLD_1], new_target(), model="icon-eu", run_time=OLD_1,
                         force_latest=True)
    assert forced.latest == "2026112912" and not forced.kept_newer_latest
    latest, in_runs, link = _pointers(www)
    assert latest == in_runs == "2026112912"
    if symlinks:
        assert link == "2026112912"
    # and a newer run still moves it forward again
    again = publish_run(runs[NEW], new_target(), model="icon-eu", run_time=NEW)
    assert again.latest == "2026113000"
    assert _pointers(www)[:2] == ("2026113000", "2026113000")


def test_cli_force_latest(tmp_path, make_run_dir, capsys):
    """The CLI keeps latest on the newer run unless --force-latest is given."""
    www = tmp_path / "www"
    new = make_run_dir(tmp_path / "n", run_time=NEW, products=("t2m",), regions=("eu",),
                       steps=(0,))
    old = make_run_dir(tmp_path / "o", run_time=OLD_1, products=("t2m",), regions=("eu",),
                       steps=(0,))
    target = f"file://{www}"
    assert cli_main(["publish", str(new), "--target", target, "--quiet"]) == 0
    assert cli_main(["publish", str(old), "--target", target, "--quiet"]) == 0
    assert "latest=2026113000 (newer, kept)" in capsys.readouterr().out
    assert _pointers(www)[0] == "2026113000"
    assert cli_main(["publish", str(old), "--target", target, "--quiet", "--force-latest"]) == 0
    assert _pointers(www) == ("2026112912", "2026112912", "2026112912")
