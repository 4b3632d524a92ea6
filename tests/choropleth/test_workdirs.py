"""Choropleth work and output folders: shared storage only, abandoned runs swept."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest

from framecast.choropleth import workdirs
from framecast.errors import SpecError


def test_roots_default_to_the_shared_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("FRAMECAST_CHOROPLETH_WORK", raising=False)
    monkeypatch.delenv("FRAMECAST_CHOROPLETH_OUT", raising=False)
    monkeypatch.setenv("FRAMECAST_DATA_ROOT", str(tmp_path))
    assert workdirs.work_root() == tmp_path / "choropleth" / "work"
    assert workdirs.out_root() == tmp_path / "choropleth" / "out"
    monkeypatch.delenv("FRAMECAST_DATA_ROOT")
    with pytest.raises(SpecError, match="FRAMECAST_DATA_ROOT"):
        workdirs.work_root()


@pytest.mark.parametrize("var", ["FRAMECAST_CHOROPLETH_WORK", "FRAMECAST_CHOROPLETH_OUT"])
def test_relative_folders_are_refused(monkeypatch, var):
    monkeypatch.setenv(var, "var/choropleth/x")
    with pytest.raises(SpecError, match="relative path"):
        (workdirs.work_root if var.endswith("WORK") else workdirs.out_root)()


def test_relative_publish_dir_lands_under_the_publish_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FRAMECAST_PUBLISH_ROOT", str(tmp_path))
    assert workdirs.publish_dir("var/publish/c") == tmp_path / "var" / "publish" / "c"
    assert workdirs.publish_dir("/srv/c") == workdirs.Path("/srv/c")
    monkeypatch.delenv("FRAMECAST_PUBLISH_ROOT")
    with pytest.raises(SpecError, match="FRAMECAST_PUBLISH_ROOT"):
        workdirs.publish_dir("var/publish/c")


def test_run_ids_become_one_safe_folder(tmp_path):
    d = workdirs.run_work_dir(tmp_path, "covid", "../../etc/passwd:2024-01-01T00:00+00:00")
    assert d.parent == tmp_path / "covid" and "/" not in d.name and not d.name.startswith(".")


def _age(path, days: float) -> None:
    t = time.time() - days * 86400
    for p in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(p, (t, t), follow_symlinks=False)


def test_sweep_removes_abandoned_runs_and_temp_leftovers_only(tmp_path):
    spec_work, out = tmp_path / "work" / "covid", tmp_path / "out"
    current, recent, old, busy = (spec_work / n for n in ("cur", "recent", "old", "busy"))
    for d in (current, recent, old, busy):
        (d / "png").mkdir(parents=True)
        (d / "png" / "f.png").write_bytes(b"x")
    out.mkdir()
    (out / "covid.mp4").write_bytes(b"video")
    (out / ".covid.mp4.part").write_bytes(b"half")
    _age(current, 5)
    _age(old, 5)
    _age(busy, 5)
    (busy / "png" / "new.png").write_bytes(b"y")  # still being written: not stale
    _age(out / ".covid.mp4.part", 5)
    _age(out / "covid.mp4", 5)
    removed = workdirs.sweep(spec_work, keep=current, out_dirs=(out,),
                             max_age=timedelta(hours=48))
    assert sorted(p.name for p in removed) == [".covid.mp4.part", "old"]
    assert current.is_dir() and recent.is_dir() and busy.is_dir() and not old.exists()
    assert (out / "covid.mp4").read_bytes() == b"video"


def test_retention_setting(monkeypatch):
    monkeypatch.setenv("FRAMECAST_CHOROPLETH_WORK_RETENTION_HOURS", "6")
    assert workdirs.retention() == timedelta(hours=6)
    monkeypatch.setenv("FRAMECAST_CHOROPLETH_WORK_RETENTION_HOURS", "-1")
    with pytest.raises(SpecError):
        workdirs.retention()
