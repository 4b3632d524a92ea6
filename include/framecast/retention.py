"""Retention: delete the raw downloads of old model runs, keeping the newest N.

Raw GRIB data is large (an ICON-EU run is several GB) and only needed until its charts are
published, so disks would fill within days without this. Run directories are named
``YYYYMMDDHH`` under ``<raw_root>/<model>/``; anything else in that folder is left alone. A run
is first renamed to a hidden name and then deleted, so a crash mid-delete never leaves a
half-deleted directory that looks like a usable run.
"""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

from framecast.catalog import format_run
from framecast.errors import SpecError

_RUN = re.compile(r"^\d{10}$")


def run_dirs(model_root: Path) -> list[Path]:
    """Run directories under ``model_root``, oldest first."""
    root = Path(model_root)
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and _RUN.match(p.name)),
                  key=lambda p: p.name)


def runs_to_delete(names: list[str], keep: int, protect: str | None = None) -> list[str]:
    """Pure selection: all but the newest ``keep`` run names, never ``protect``."""
    if keep < 1:
        raise SpecError(f"retention_runs must be >= 1, got {keep}")
    ordered = sorted(set(names))
    old = ordered[:-keep] if len(ordered) > keep else []
    return [n for n in old if n != protect]


def prune_runs(model_root: Path, keep: int, current: datetime | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` runs under ``model_root``; returns what was deleted.

    ``current`` (the run being processed) is never deleted, even during a backfill of runs
    older than the ones kept.
    """
    protect = format_run(current) if current is not None else None
    dirs = {p.name: p for p in run_dirs(model_root)}
    deleted = []
    for name in runs_to_delete(list(dirs), keep, protect):
        path = dirs[name]
        trash = path.with_name(f".deleting-{name}")
        if trash.exists():
            shutil.rmtree(trash)
        path.rename(trash)
        shutil.rmtree(trash)
        deleted.append(path)
    for leftover in Path(model_root).glob(".deleting-*") if Path(model_root).is_dir() else []:
        shutil.rmtree(leftover, ignore_errors=True)
    return deleted
