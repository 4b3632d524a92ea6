"""Local-folder publishing of one run's frames: copy, then swap in atomically, manifest last.

Readers of the publish folder (a web server, a sync job) must never see a half-copied run, and
a re-publish must not lose the previous copy if it fails midway. So the run is copied into a
hidden staging folder beside its final place, swapped in with renames, and ``latest.json`` is
rewritten last. Publishing to remote servers (FTP/SFTP) is done by ``framecast.publish``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from framecast.errors import PublishError

MANIFEST = "latest.json"


def _write_json_atomic(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish_local(frames_dir: Path, publish_root: Path, model: str, run: str) -> Path:
    """Copy ``frames_dir`` to ``<publish_root>/<model>/<run>`` and point ``latest.json`` at it."""
    src = Path(frames_dir)
    pngs = sorted(p.relative_to(src).as_posix() for p in src.rglob("*.png")) if src.is_dir() else []
    if not pngs:
        raise PublishError(f"{src}: no frames to publish for {model} {run}")
    model_dir = Path(publish_root) / model
    model_dir.mkdir(parents=True, exist_ok=True)
    final = model_dir / run
    staging = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{run}.staging-"))
    try:
        for rel in pngs:
            dst = staging / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / rel, dst)
        old = None
        if final.exists():
            old = model_dir / f".{run}.old-{os.getpid()}"
            final.rename(old)
        staging.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise PublishError(f"publishing {src} to {final} failed: {exc}") from exc
    _write_json_atomic(model_dir / MANIFEST, {
        "model": model,
        "run": run,
        "path": run,
        "frames": pngs,
        "published": datetime.now(UTC).isoformat(timespec="seconds"),
    })
    return final
