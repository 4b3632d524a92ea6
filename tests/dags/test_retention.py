"""Retention of raw model data: newest N runs kept, the current run never deleted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from framecast.errors import SpecError
from framecast.retention import prune_runs, run_dirs, runs_to_delete


def _make(root, names):
    for n in names:
        (root / n / "00" / "t_2m").mkdir(parents=True)
        (root / n / "00" / "t_2m" / "f.grib2").write_bytes(b"x")


def test_keeps_newest_runs_and_ignores_other_folders(tmp_path):
    _make(tmp_path, ["2026112218", "2026112300", "2026112306", "2026112312"])
    (tmp_path / "notes").mkdir()
    deleted = prune_runs(tmp_path, keep=2)
    assert [p.name for p in deleted] == ["2026112218", "2026112300"]
    assert [p.name for p in run_dirs(tmp_path)] == ["2026112306", "2026112312"]
    assert (tmp_path / "notes").is_dir()
    assert not list(tmp_path.glob(".deleting-*"))


def test_backfilled_old_run_is_protected(tmp_path):
    _make(tmp_path, ["2026112000", "2026112300", "2026112306"])
    deleted = prune_runs(tmp_path, keep=2, current=datetime(2026, 11, 20, 0, tzinfo=UTC))
    assert deleted == []
    assert (tmp_path / "2026112000").is_dir()


def test_selection_is_pure_and_validated():
    assert runs_to_delete(["b", "a", "c"], 1) == ["a", "b"]
    assert runs_to_delete(["a"], 3) == []
    with pytest.raises(SpecError, match="retention_runs must be >= 1, got 0"):
        runs_to_delete(["a"], 0)


def test_missing_model_folder_is_nothing_to_do(tmp_path):
    assert prune_runs(tmp_path / "absent", keep=1) == []
