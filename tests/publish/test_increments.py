"""A run published chunk by chunk while it is still arriving upstream, on every kind of target
(folder, real FTP server, real SFTP server): each increment's manifest lists exactly the files
that are on the server byte for byte, increments add up in any order, ``latest`` moves to the
new run only once its first steps are all there, and the final publish marks a run that lacks
steps ``incomplete`` with the steps it is missing."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from framecast.publish import (
    LocalTarget,
    publish_increment,
    publish_product,
    publish_run,
    target_from_url,
)
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


def _frames(run: Path, product: str, steps) -> list[dict]:
    """The manifest entries of a run's frames, from the files themselves (stat, hashlib)."""
    out = []
    for step in steps:
        rel = f"{product}/eu/{product}_eu_{step:03d}.png"
        data = (run / rel).read_bytes()
        out.append({"step": step, "valid_time": (NEW + timedelta(hours=step)).isoformat(),
                    "file": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return out


def _doc(run: Path, frames: dict[str, tuple[int, ...]], published_at: str, **state) -> dict:
    """The manifest of ``run`` listing ``frames`` (product -> steps), written out key by key."""
    products = {p: {"regions": {"eu": {"frames": _frames(run, p, s), "videos": {}}}}
                for p, s in sorted(frames.items())}
    files = {fr["file"]: {"size": fr["size"], "sha256": fr["sha256"]}
             for p in products.values() for fr in p["regions"]["eu"]["frames"]}
    return {
        "format": 1, "model": "icon-eu", "run": "2026-11-30T00:00:00+00:00",
        "run_id": "2026113000", "complete": state["status"] == "complete",
        "published_at": published_at, "products": products, "product_names": sorted(frames),
        "regions": ["eu"], "steps": sorted({s for ss in frames.values() for s in ss}),
        "files": dict(sorted(files.items())), "report": {}, "places": {}, "places_index": "",
        **state,
    }


def _manifest(www: Path) -> dict:
    man = json.loads((www / "icon-eu" / "2026113000" / "manifest.json").read_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", man["published_at"])
    return man


def _summary(man: dict) -> dict:
    return {"run_id": man["run_id"], "run": man["run"], "complete": man["complete"],
            "status": man["status"], "missing_steps": man["missing_steps"],
            "products": man["product_names"], "manifest": f"{man['run_id']}/manifest.json",
            "published_at": man["published_at"]}


def test_increment_product_and_final_manifests_exact_documents(tmp_path, make_run_dir):
    """Every document after each kind of publish of a run still arriving, written out in full:
    the status, expected and missing steps of increments, of a product published between
    them, of the final publish with and without a step plan, and of a chunk published again
    after the run was finished; runs.json and latest.json alongside."""
    www = tmp_path / "www"
    old = make_run_dir(tmp_path / "old", run_time=OLD, products=("t2m",), regions=("eu",),
                       steps=EXPECTED, tag="old")
    publish_run(old, LocalTarget(www), model="icon-eu", run_time=OLD)
    old_summary = _summary(json.loads((www / "icon-eu/2026112918/manifest.json").read_text()))
    assert (old_summary["status"], old_summary["complete"]) == ("complete", True)
    new = make_run_dir(tmp_path / "new", run_time=NEW, products=("t2m", "pmsl"),
                       regions=("eu",), steps=(0, 1, 2, 3), tag="new")
    both = ("pmsl", "t2m")

    rep = publish_increment(new, LocalTarget(www), [2, 3], model="icon-eu", run_time=NEW,
                            expected_steps=EXPECTED, latest_after_step=3)
    man = _manifest(www)
    assert man == _doc(new, {"pmsl": (2, 3), "t2m": (2, 3)}, man["published_at"],
                       status="in_progress", expected_steps=EXPECTED, missing_steps=[0, 1, 4, 5])
    assert (rep.status, rep.complete, rep.steps, rep.missing_steps, rep.latest) == (
        "in_progress", False, [2, 3], [0, 1, 4, 5], "2026112918")
    assert rep.products == list(both) and sorted(rep.uploaded) == sorted(
        f"{p}/eu/{p}_eu_{s:03d}.png" for p in both for s in (2, 3))
    assert json.loads((www / "icon-eu/runs.json").read_text()) == {
        "format": 1, "model": "icon-eu", "latest": "2026112918",
        "runs": [_summary(man), old_summary]}

    # a whole product between increments: its frames replace the product's, the step plan
    # of the run stays, and latest (a product publish never moves it) stays
    rep = publish_product(new, LocalTarget(www), "pmsl", model="icon-eu", run_time=NEW)
    man = _manifest(www)
    assert man == _doc(new, {"pmsl": (0, 1, 2, 3), "t2m": (2, 3)}, man["published_at"],
                       status="in_progress", expected_steps=EXPECTED, missing_steps=[0, 1, 4, 5])
    assert (rep.status, rep.steps, rep.latest) == ("in_progress", [0, 1, 2, 3], "2026112918")

    rep = publish_increment(new, LocalTarget(www), [0, 1], model="icon-eu", run_time=NEW,
                            expected_steps=EXPECTED, latest_after_step=3)
    man = _manifest(www)
    assert man == _doc(new, {"pmsl": (0, 1, 2, 3), "t2m": (0, 1, 2, 3)}, man["published_at"],
                       status="in_progress", expected_steps=EXPECTED, missing_steps=[4, 5])
    assert sorted(rep.skipped) == ["pmsl/eu/pmsl_eu_000.png", "pmsl/eu/pmsl_eu_001.png"]
    assert rep.latest == "2026113000"
    assert json.loads((www / "icon-eu/latest.json").read_text()) == {
        "format": 1, "model": "icon-eu", "run_id": "2026113000",
        "run": "2026-11-30T00:00:00+00:00", "manifest": "2026113000/manifest.json",
        "published_at": man["published_at"]}
    assert json.loads((www / "icon-eu/runs.json").read_text()) == {
        "format": 1, "model": "icon-eu", "latest": "2026113000",
        "runs": [_summary(man), old_summary]}

    # finished without steps 4 and 5
    rep = publish_run(new, LocalTarget(www), model="icon-eu", run_time=NEW,
                      expected_steps=EXPECTED, latest_after_step=3)
    man = _manifest(www)
    assert man == _doc(new, {"pmsl": (0, 1, 2, 3), "t2m": (0, 1, 2, 3)}, man["published_at"],
                       status="incomplete", expected_steps=EXPECTED, missing_steps=[4, 5])
    assert (rep.status, rep.complete, rep.missing_steps) == ("incomplete", False, [4, 5])
    runs = json.loads((www / "icon-eu/runs.json").read_text())
    assert runs["runs"][0] == _summary(man) and runs["latest"] == "2026113000"

    # a chunk published again after that finish: still as complete as its frames (4, 5 lack)
    rep = publish_increment(new, LocalTarget(www), [3], model="icon-eu", run_time=NEW,
                            expected_steps=EXPECTED)
    man = _manifest(www)
    assert man == _doc(new, {"pmsl": (0, 1, 2, 3), "t2m": (0, 1, 2, 3)}, man["published_at"],
                       status="incomplete", expected_steps=EXPECTED, missing_steps=[4, 5])

    # the whole run without a step plan (the CLI): complete by definition
    rep = publish_run(new, LocalTarget(www), model="icon-eu", run_time=NEW)
    man = _manifest(www)
    assert man == _doc(new, {"pmsl": (0, 1, 2, 3), "t2m": (0, 1, 2, 3)}, man["published_at"],
                       status="complete", expected_steps=[], missing_steps=[])
    assert (rep.status, rep.complete, rep.missing_steps) == ("complete", True, [])
    assert rep.latest == "2026113000" and not rep.kept_newer_latest  # the same run: not older

    # a chunk of the complete run again, against a plan it fulfils: it stays complete
    rep = publish_increment(new, LocalTarget(www), [0], model="icon-eu", run_time=NEW,
                            expected_steps=[0, 1, 2, 3])
    man = _manifest(www)
    assert man == _doc(new, {"pmsl": (0, 1, 2, 3), "t2m": (0, 1, 2, 3)}, man["published_at"],
                       status="complete", expected_steps=[0, 1, 2, 3], missing_steps=[])
    assert rep.complete and rep.latest == "2026113000"


def test_first_product_of_a_run_without_a_step_plan(tmp_path, make_run_dir):
    """A product published before anything else, with no step plan: its own steps are the
    expected ones, so nothing is missing, and the run is in progress."""
    www = tmp_path / "www"
    new = make_run_dir(tmp_path / "new", run_time=NEW, products=("t2m", "pmsl"),
                       regions=("eu",), steps=(0, 1), tag="new")
    rep = publish_product(new, LocalTarget(www), "t2m", model="icon-eu", run_time=NEW)
    man = _manifest(www)
    assert man == _doc(new, {"t2m": (0, 1)}, man["published_at"], status="in_progress",
                       expected_steps=[0, 1], missing_steps=[])
    assert (rep.status, rep.complete, rep.latest) == ("in_progress", False, None)
    assert json.loads((www / "icon-eu/runs.json").read_text()) == {
        "format": 1, "model": "icon-eu", "latest": None, "runs": [_summary(man)]}


def test_an_increment_on_a_fresh_folder_ships_the_viewer_link_and_progress(tmp_path,
                                                                          make_run_dir):
    """The first increment of the first run: viewer files, progress per file, ``latest`` and
    its symlink once the first steps are there; an older run's increment moves ``latest``
    back only when forced."""
    www = tmp_path / "www"
    new = make_run_dir(tmp_path / "new", run_time=NEW, products=("t2m",), regions=("eu",),
                       steps=(0, 1), tag="new")
    seen = []
    rep = publish_increment(new, LocalTarget(www), [0, 1], model="icon-eu", run_time=NEW,
                            expected_steps=[0, 1, 2], latest_after_step=1, workers=1,
                            progress=lambda d, n, p: seen.append((d, n, p)))
    assert seen == [(1, 2, "t2m/eu/t2m_eu_000.png"), (2, 2, "t2m/eu/t2m_eu_001.png")]
    assert sorted(n for n in (www / "icon-eu").iterdir() if not n.name[0].isdigit()) == [
        www / "icon-eu" / n for n in ("index.html", "latest", "latest.json", "runs.json",
                                      "viewer.css", "viewer.js")]
    assert rep.latest == "2026113000" and rep.symlink is True
    assert (www / "icon-eu" / "latest").readlink() == Path("2026113000")
    assert (rep.status, rep.missing_steps) == ("in_progress", [2])
    old = make_run_dir(tmp_path / "old", run_time=OLD, products=("t2m",), regions=("eu",),
                       steps=(0, 1), tag="old")
    rep = publish_increment(old, LocalTarget(www), [0, 1], model="icon-eu", run_time=OLD,
                            expected_steps=[0, 1], latest_after_step=1)
    assert rep.latest == "2026113000" and rep.kept_newer_latest
    rep = publish_increment(old, LocalTarget(www), [0, 1], model="icon-eu", run_time=OLD,
                            expected_steps=[0, 1], latest_after_step=1, force_latest=True)
    assert rep.latest == "2026112918" and not rep.kept_newer_latest
    assert _latest(www) == "2026112918"
    assert (www / "icon-eu" / "latest").readlink() == Path("2026112918")


def test_an_increment_published_meanwhile_is_kept(tmp_path, make_run_dir):
    """Another chunk's increment lands while this one uploads (here: from this one's progress
    callback): the manifest is merged with the target's as it is when it is rewritten, so
    neither increment's frames are dropped."""
    www = tmp_path / "www"
    new = make_run_dir(tmp_path / "new", run_time=NEW, products=("t2m",), regions=("eu",),
                       steps=(0, 1), tag="new")
    inner = []

    def other_chunk(done, total, path):
        if not inner:
            inner.append(publish_increment(new, LocalTarget(www), [1], model="icon-eu",
                                           run_time=NEW, expected_steps=[0, 1], viewer=False))

    rep = publish_increment(new, LocalTarget(www), [0], model="icon-eu", run_time=NEW,
                            expected_steps=[0, 1], workers=1, progress=other_chunk)
    assert inner[0].steps == [1] and rep.steps == [0, 1] and rep.missing_steps == []
    man = _manifest(www)
    assert man == _doc(new, {"t2m": (0, 1)}, man["published_at"], status="in_progress",
                       expected_steps=[0, 1], missing_steps=[])


@pytest.mark.parametrize(("after", "latest"), [(3, "2026113000"), (None, None)])
def test_a_run_finished_incomplete_becomes_latest_by_the_latest_when_rule(
    tmp_path, make_run_dir, after, latest,
):
    """Finished without its last steps and never published in increments: ``latest`` moves
    to it when its first steps are there and the model's rule asks only for those."""
    www = tmp_path / "www"
    new = make_run_dir(tmp_path / "new", run_time=NEW, products=("t2m",), regions=("eu",),
                       steps=(0, 1, 2, 3), tag="new")
    rep = publish_run(new, LocalTarget(www), model="icon-eu", run_time=NEW,
                      expected_steps=EXPECTED, latest_after_step=after)
    assert (rep.status, rep.missing_steps, rep.latest) == ("incomplete", [4, 5], latest)
    assert (www / "icon-eu" / "latest.json").exists() is (latest is not None)
