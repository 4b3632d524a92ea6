"""A run published chunk by chunk while it is still arriving upstream, on every kind of target
(folder, real FTP server, real SFTP server): each increment's manifest lists exactly the files
that are on the server byte for byte, increments add up in any order, ``latest`` moves to the
new run only once its first steps are all there, and the final publish marks a run that lacks
steps ``incomplete`` with the steps it is missing."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.publish import LocalTarget, publish_increment, publish_run, target_from_url
from framecast.records import RECORDS_DIR

OLD = datetime(2026, 11, 29, 18, tzinfo=UTC)
NEW = datetime(2026, 11, 30, 0, tzinfo=UTC)
EXPECTED = [0, 1, 2, 3, 4, 5]


def _target(kind: str, tmp_path: Path, ftp_server, sftp_server):
    """(a fresh target factory, the folder on the server where the runs land)"""
    if kind == "local":
        www = tmp_path / "www"
        return (lambda: LocalTarget(www)), www
    if kind == "ftp":
        srv = ftp_server()
        url = f"ftp://{srv.user}:{srv.password}@127.0.0.1:{srv.port}/charts"
        return (lambda: target_from_url(url)), srv.root / "charts"
    srv = sftp_server()
    return ((lambda: target_from_url(srv.url(), password=srv.password,
                                     known_hosts=srv.known_hosts)), srv.root / "charts")


def _latest(www: Path) -> str:
    return json.loads((www / "icon-eu" / "latest.json").read_text())["run_id"]


def _frame_steps(manifest: dict) -> dict[str, tuple[int, ...]]:
    return {f"{p}/{r}": tuple(fr["step"] for fr in reg["frames"])
            for p, prod in manifest["products"].items() for r, reg in prod["regions"].items()}


@pytest.mark.parametrize("kind", ["local", "ftp", "sftp"])
def test_increments_add_up_and_latest_waits_for_the_first_steps(
    kind, tmp_path, make_run_dir, check_published, ftp_server, sftp_server,
):
    new_target, www = _target(kind, tmp_path, ftp_server, sftp_server)
    old = make_run_dir(tmp_path / "old", run_time=OLD, products=("t2m",), regions=("eu",),
                       steps=EXPECTED, tag="old")
    publish_run(old, new_target(), model="icon-eu", run_time=OLD)
    assert _latest(www) == "2026112918"
    # the new run: steps 0-3 rendered so far (4 and 5 never arrive upstream)
    new = make_run_dir(tmp_path / "new", run_time=NEW, products=("t2m", "pmsl"),
                       regions=("eu", "alps"), steps=(0, 1, 2, 3), tag="new")

    # the second chunk finishes first: published, listed, but not enough for `latest`
    rep = publish_increment(new, new_target(), [2, 3], model="icon-eu", run_time=NEW,
                            expected_steps=EXPECTED, latest_after_step=3)
    assert rep.latest == "2026112918" and not rep.complete
    man = check_published(www, "icon-eu", new, complete=False)
    assert man["status"] == "in_progress" and man["missing_steps"] == [0, 1, 4, 5]
    assert set(_frame_steps(man).values()) == {(2, 3)}
    assert _latest(www) == "2026112918"
    check_published(www, "icon-eu", old)  # the shown run is untouched
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert [(r["run_id"], r["status"]) for r in runs["runs"]] == [
        ("2026113000", "in_progress"), ("2026112918", "complete")]

    # the first chunk: steps 0-3 are now there for every chart, so `latest` moves
    rep = publish_increment(new, new_target(), [0, 1], model="icon-eu", run_time=NEW,
                            expected_steps=EXPECTED, latest_after_step=3)
    assert rep.latest == "2026113000"
    man = check_published(www, "icon-eu", new, complete=False)
    assert set(_frame_steps(man).values()) == {(0, 1, 2, 3)}  # nothing of chunk 2 was lost
    assert man["status"] == "in_progress" and man["missing_steps"] == [4, 5]
    assert _latest(www) == "2026113000"

    # the run is finished without steps 4-5: published as it is, flagged incomplete
    rep = publish_run(new, new_target(), model="icon-eu", run_time=NEW,
                      expected_steps=EXPECTED, latest_after_step=3)
    man = check_published(www, "icon-eu", new, complete=False)
    assert man["status"] == "incomplete" and man["missing_steps"] == [4, 5]
    assert not rep.complete and rep.latest == "2026113000"
    runs = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert runs["runs"][0]["status"] == "incomplete" and runs["runs"][0]["missing_steps"] == [4, 5]


def test_latest_waits_for_a_complete_run_under_the_complete_rule(
    tmp_path, make_run_dir, check_published,
):
    www = tmp_path / "www"
    old = make_run_dir(tmp_path / "old", run_time=OLD, products=("t2m",), regions=("eu",),
                       steps=EXPECTED, tag="old")
    publish_run(old, LocalTarget(www), model="icon-eu", run_time=OLD)
    new = make_run_dir(tmp_path / "new", run_time=NEW, products=("t2m",), regions=("eu",),
                       steps=EXPECTED, tag="new")
    for chunk in ([0, 1], [2, 3], [4, 5]):
        rep = publish_increment(new, LocalTarget(www), chunk, model="icon-eu", run_time=NEW,
                                expected_steps=EXPECTED, latest_after_step=None)
        assert rep.latest == "2026112918"
    man = json.loads((www / "icon-eu" / "2026113000" / "manifest.json").read_text())
    assert man["status"] == "in_progress" and man["missing_steps"] == []  # not final yet
    rep = publish_run(new, LocalTarget(www), model="icon-eu", run_time=NEW,
                      expected_steps=EXPECTED)
    assert rep.complete and rep.latest == "2026113000"
    man = check_published(www, "icon-eu", new)
    assert man["status"] == "complete" and man["missing_steps"] == []


def test_a_chunk_republished_after_an_incomplete_finish_completes_the_run(
    tmp_path, make_run_dir, check_published,
):
    """A missing chunk re-run alone after the run was finished: the run becomes complete."""
    www = tmp_path / "www"
    full = make_run_dir(tmp_path / "full", run_time=NEW, products=("t2m",), regions=("eu",),
                        steps=EXPECTED)
    part = tmp_path / "part" / full.relative_to(tmp_path / "full")
    shutil.copytree(full, part)
    # only the first chunk's records: what the renderer left before the last chunk failed
    records = part / RECORDS_DIR
    for f in records.iterdir():
        lines = [ln for ln in f.read_text().splitlines()
                 if json.loads(ln)["step"] in (0, 1, 2, 3)]
        f.write_text("".join(ln + "\n" for ln in lines))
    publish_run(part, LocalTarget(www), model="icon-eu", run_time=NEW, expected_steps=EXPECTED,
                latest_after_step=3)
    man = json.loads((www / "icon-eu" / "2026113000" / "manifest.json").read_text())
    assert man["status"] == "incomplete" and man["missing_steps"] == [4, 5]
    rep = publish_increment(full, LocalTarget(www), [4, 5], model="icon-eu", run_time=NEW,
                            expected_steps=EXPECTED, latest_after_step=3)
    assert rep.complete
    man = check_published(www, "icon-eu", full)
    assert man["status"] == "complete" and man["steps"] == EXPECTED
