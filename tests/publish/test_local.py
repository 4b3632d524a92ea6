"""Publishing to a local folder: retention, bad input, URL parsing and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from framecast.cli import main as cli_main
from framecast.errors import DataError, PublishError
from framecast.publish import FtpTarget, LocalTarget, SftpTarget, publish_run, target_from_url
from framecast.records import FrameRecord, write_records

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


def test_retention_keeps_newest_runs_and_never_the_latest_one(tmp_path, make_run_dir):
    www = tmp_path / "www"
    runs = [RUN + timedelta(hours=6 * i) for i in range(4)]
    paths = [make_run_dir(tmp_path / f"r{i}", run_time=t, products=("t2m",), regions=("eu",),
                          steps=(0, 1)) for i, t in enumerate(runs)]
    removed = []
    for p, t in zip(paths, runs, strict=True):
        removed += publish_run(p, LocalTarget(www), model="icon-eu", run_time=t,
                               retention=2).removed_runs
    assert removed == ["2026112300", "2026112306"]
    on_server = sorted(p.name for p in (www / "icon-eu").iterdir() if p.name.isdigit())
    assert on_server == ["2026112312", "2026112318"]
    doc = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert [r["run_id"] for r in doc["runs"]] == ["2026112318", "2026112312"]

    # an operator forces an older run back to latest: it survives retention
    old = make_run_dir(tmp_path / "old", run_time=RUN - timedelta(days=1), products=("t2m",),
                       regions=("eu",), steps=(0,))
    report = publish_run(old, LocalTarget(www), model="icon-eu", run_time=RUN - timedelta(days=1),
                         retention=1, force_latest=True)
    assert report.latest == "2026112200"
    assert report.removed_runs == ["2026112312"]
    on_server = sorted(p.name for p in (www / "icon-eu").iterdir() if p.name.isdigit())
    assert on_server == ["2026112200", "2026112318"]
    assert os.readlink(www / "icon-eu" / "latest") == "2026112200"
    doc = json.loads((www / "icon-eu" / "runs.json").read_text())
    assert doc["latest"] == "2026112200"
    assert [r["run_id"] for r in doc["runs"]] == ["2026112318", "2026112200"]


def test_only_recorded_frames_are_published(tmp_path, run_path, check_published):
    (run_path / "t2m" / "europe" / "stray.png").write_bytes(b"not a frame")
    (run_path / "t2m" / "europe" / ".t2m_000.png.tmp").write_bytes(b"half")
    publish_run(run_path, LocalTarget(tmp_path / "www"), model="icon-eu", run_time=RUN)
    check_published(tmp_path / "www", "icon-eu", run_path)  # also: no extra files


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("no-records", r"_records: no frame records"),
        ("missing-frame", r"recorded file t2m/europe/t2m_europe_001.png is missing"),
        ("empty-frame", r"t2m_europe_002.png: file is empty"),
        ("bad-product", r"product '\.\./evil' is not a safe name"),
        ("escaping-path", r"frame path '../../etc/passwd' is not inside the run directory"),
    ],
)
def test_bad_run_folders_are_refused_before_anything_is_written(
    tmp_path, run_path, breakage, message
):
    if breakage == "no-records":
        for f in (run_path / "_records").iterdir():
            f.unlink()
    elif breakage == "missing-frame":
        (run_path / "t2m/europe/t2m_europe_001.png").unlink()
    elif breakage == "empty-frame":
        (run_path / "t2m/europe/t2m_europe_002.png").write_bytes(b"")
    else:
        product, path = ("../evil", "x.png") if breakage == "bad-product" else (
            "t2m", "../../etc/passwd")
        write_records(run_path, "zz", [FrameRecord(model="icon-eu", run=RUN.isoformat(),
                                                   product=product, region="europe", step=9,
                                                   path=path)])
    www = tmp_path / "www"
    with pytest.raises(DataError, match=message):
        publish_run(run_path, LocalTarget(www), model="icon-eu", run_time=RUN)
    assert not www.exists()


def test_bad_arguments(tmp_path, run_path):
    with pytest.raises(DataError, match="model 'icon eu' is not a safe name"):
        publish_run(run_path, LocalTarget(tmp_path / "w"), model="icon eu", run_time=RUN)
    with pytest.raises(PublishError, match="retention must be at least 1 run, got 0"):
        publish_run(run_path, LocalTarget(tmp_path / "w"), model="icon-eu", run_time=RUN,
                    retention=0)
    with pytest.raises(DataError, match=r"frames belong to run 2026112300, not 2026112306"):
        publish_run(run_path, LocalTarget(tmp_path / "w"), model="icon-eu",
                    run_time=RUN + timedelta(hours=6))
    with pytest.raises(DataError, match=r"no frames recorded for product\(s\) \['wind'\]"):
        publish_run(run_path, LocalTarget(tmp_path / "w"), model="icon-eu", run_time=RUN,
                    products=["wind"])


def test_a_foreign_file_in_place_of_runs_json_is_reported(tmp_path, run_path):
    www = tmp_path / "www"
    (www / "icon-eu").mkdir(parents=True)
    (www / "icon-eu" / "runs.json").write_text("<html>oops</html>")
    with pytest.raises(PublishError, match=r"icon-eu/runs.json: not valid JSON"):
        publish_run(run_path, LocalTarget(www), model="icon-eu", run_time=RUN)
    assert [p.name for p in (www / "icon-eu").iterdir()] == ["runs.json"]  # nothing uploaded


def test_target_urls():
    t = target_from_url("ftp://u:p%40ss@host.example:2121/charts/eu")
    assert isinstance(t, FtpTarget) and (t.host, t.port, t.user, t.password, t.root, t.tls) == (
        "host.example", 2121, "u", "p@ss", "charts/eu", False)
    assert "p@ss" not in t.description
    assert target_from_url("ftp://h//abs/dir").root == "/abs/dir"
    assert target_from_url("ftps://u@h/x", password="pw").tls is True
    s = target_from_url("sftp://me@h:2222/srv/www", key_file="/k")
    assert isinstance(s, SftpTarget) and (s.port, s.user, s.root, s.key_file) == (
        2222, "me", "/srv/www", "/k")
    assert target_from_url("sftp://me@h/~/public_html").root == "public_html"
    assert target_from_url("sftp://me@h").port == 22
    local = target_from_url("file:///srv/www")
    assert isinstance(local, LocalTarget) and local.root == Path("/srv/www")
    assert isinstance(target_from_url("/plain/path"), LocalTarget)
    with pytest.raises(PublishError, match=r"'http://u:\*\*\*@h/': scheme must be one of"):
        target_from_url("http://u:secret@h/")
    with pytest.raises(PublishError, match="bad port"):
        target_from_url("ftp://h:99999/")
    with pytest.raises(PublishError, match="file URLs must be local"):
        target_from_url("file://otherhost/x")


def test_cli_publish_with_videos(tmp_path, run_path, capsys, check_published):
    www = tmp_path / "www"
    rc = cli_main(["publish", str(run_path), "--target", f"file://{www}", "--video",
                   "--retention", "3", "--workers", "2", "--quiet"])
    assert rc == 0
    assert "24 uploaded, 0 unchanged" in capsys.readouterr().out  # 16 frames + 8 videos
    manifest = check_published(www, "icon-eu", run_path)
    assert len(manifest["files"]) == 24
    assert manifest["run"] == RUN.isoformat()


def test_cli_errors_are_one_line_with_exit_code(tmp_path, run_path):
    exe = Path(sys.executable).parent / "framecast"
    proc = subprocess.run([str(exe), "publish", str(run_path), "--target", "gopher://x/"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == PublishError.exit_code
    assert proc.stderr.strip() == (
        "framecast: error: publish target 'gopher://x/': scheme must be one of "
        "file, ftp, ftps, sftp")
    proc = subprocess.run([str(exe), "publish", str(tmp_path / "nope"), "--target",
                           f"file://{tmp_path}/www"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == DataError.exit_code
    assert "does not exist" in proc.stderr


def test_republishing_a_product_of_a_finished_run_keeps_it_finished(tmp_path, run_path):
    from framecast.publish import publish_product

    www = tmp_path / "www"
    publish_run(run_path, LocalTarget(www), model="icon-eu", run_time=RUN)
    frame = run_path / "t2m/alps/t2m_alps_001.png"
    frame.write_bytes(frame.read_bytes() + b"\0")
    report = publish_product(run_path, LocalTarget(www), "t2m", model="icon-eu", run_time=RUN)
    assert report.uploaded == ["t2m/alps/t2m_alps_001.png"] and report.complete is True
    manifest = json.loads((www / "icon-eu/2026112300/manifest.json").read_text())
    assert manifest["complete"] is True and manifest["product_names"] == ["pmsl", "t2m"]
    assert manifest["files"]["t2m/alps/t2m_alps_001.png"]["size"] == frame.stat().st_size
    runs = json.loads((www / "icon-eu/runs.json").read_text())
    assert runs["runs"][0]["complete"] is True and runs["latest"] == "2026112300"


def test_the_run_report_is_published_with_the_charts(tmp_path, run_path, check_published):
    from framecast.metrics.report import write_report

    index = write_report(run_path)
    target = tmp_path / "www"
    publish_run(run_path, LocalTarget(target), model="icon-eu", run_time=RUN)
    manifest = check_published(target, "icon-eu", run_path)
    run_dir = target / "icon-eu" / RUN.strftime("%Y%m%d%H")
    assert "_report/index.html" in manifest["report"]
    for rel, meta in manifest["report"].items():
        published = run_dir / rel
        assert published.read_bytes() == (run_path / rel).read_bytes()
        assert meta["size"] == published.stat().st_size
    assert (run_dir / "_report" / index.name).is_file()
    assert set(manifest["products"]) == {"t2m", "pmsl"}  # the report is not a product
