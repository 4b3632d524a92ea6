"""Where choropleth runs keep intermediate files, and how long they may stay.

Every task of one Airflow run (prepare, the render segments, finish) reads and writes the same
work folder, and those tasks can land on different workers: the folder must be on storage all
workers share. By default it is under ``$FRAMECAST_DATA_ROOT`` (the deployment's shared
``framecast-data`` volume); ``$FRAMECAST_CHOROPLETH_WORK`` / ``$FRAMECAST_CHOROPLETH_OUT``
override it. A relative path is refused: each worker would resolve it against its own current
directory and the run would break (or fill the container's own disk).

A failed run keeps its work folder (its frames), so a failed segment can be cleared and re-run;
:func:`sweep` deletes folders of other runs older than the retention
(``$FRAMECAST_CHOROPLETH_WORK_RETENTION_HOURS``, default 48) and temp leftovers of interrupted
copies in the output folders, so abandoned runs do not accumulate.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

from framecast.errors import SpecError

DEFAULT_RETENTION = timedelta(hours=48)


def _root(env: str, sub: str) -> Path:
    raw = os.environ.get(env)
    if raw:
        path = Path(raw)
        where = env
    else:
        data = os.environ.get("FRAMECAST_DATA_ROOT")
        if not data:
            raise SpecError(f"set {env} or FRAMECAST_DATA_ROOT (a folder every worker shares)")
        path = Path(data) / "choropleth" / sub
        where = "FRAMECAST_DATA_ROOT"
    if not path.is_absolute():
        raise SpecError(f"{where}={str(path)!r} is a relative path: workers would each resolve "
                        "it against their own directory; use an absolute path on shared storage")
    return path


def work_root() -> Path:
    """Parent of the per-run work folders (shared by every worker of a run)."""
    return _root("FRAMECAST_CHOROPLETH_WORK", "work")


def out_root() -> Path:
    """Parent of the finished outputs, one folder per animation."""
    return _root("FRAMECAST_CHOROPLETH_OUT", "out")


def run_work_dir(root: Path, spec_name: str, run_id: str) -> Path:
    """``root/<spec>/<run id>`` with the run id made safe as one path component."""
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in run_id).lstrip(".")
    return root / spec_name / (safe or "_")


def retention() -> timedelta:
    raw = os.environ.get("FRAMECAST_CHOROPLETH_WORK_RETENTION_HOURS", "")
    if not raw:
        return DEFAULT_RETENTION
    try:
        hours = float(raw)
    except ValueError:
        raise SpecError(f"FRAMECAST_CHOROPLETH_WORK_RETENTION_HOURS={raw!r} is not a number") from None
    if hours <= 0:
        raise SpecError("FRAMECAST_CHOROPLETH_WORK_RETENTION_HOURS must be positive")
    return timedelta(hours=hours)


def _newest_mtime(path: Path) -> float:
    """Latest modification below ``path`` (a run still writing frames is not stale)."""
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for p in path.rglob("*"):
            try:
                newest = max(newest, p.lstat().st_mtime)
            except FileNotFoundError:
                continue
    return newest


def sweep(spec_work: Path, keep: Path | None = None, out_dirs: tuple[Path, ...] = (),
          max_age: timedelta | None = None, now: float | None = None) -> list[Path]:
    """Delete run folders in ``spec_work`` (except ``keep``) untouched for ``max_age``, and
    ``.*.part`` temp leftovers of that age in ``out_dirs``; returns what was deleted."""
    max_age = retention() if max_age is None else max_age
    cutoff = (time.time() if now is None else now) - max_age.total_seconds()
    removed: list[Path] = []
    if spec_work.is_dir():
        for d in spec_work.iterdir():
            if keep is not None and d.resolve() == keep.resolve():
                continue
            if d.is_dir() and not d.is_symlink() and _newest_mtime(d) < cutoff:
                shutil.rmtree(d, ignore_errors=True)
                removed.append(d)
    for out in out_dirs:
        if not out.is_dir():
            continue
        for p in out.iterdir():
            if p.name.startswith(".") and p.name.endswith(".part") and \
                    _newest_mtime(p) < cutoff:
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def publish_dir(spec_dir: str) -> Path:
    """A spec's ``publish.dir`` as workers see it: absolute as given, a relative one under
    ``$FRAMECAST_PUBLISH_ROOT`` (the shared publish volume), never a worker's own directory."""
    path = Path(spec_dir)
    if path.is_absolute():
        return path
    root = os.environ.get("FRAMECAST_PUBLISH_ROOT")
    if not root or not Path(root).is_absolute():
        raise SpecError(f"publish.dir {spec_dir!r} is relative: set FRAMECAST_PUBLISH_ROOT to an "
                        "absolute shared folder, or give an absolute publish.dir")
    return Path(root) / path
