"""Per-frame records: what was rendered, where it is, and how long each stage took.

Every rendered frame yields one :class:`FrameRecord`. A render chunk (one product, one region,
a run of steps) writes its records as one JSON-lines file under ``<run_dir>/_records/`` with an
atomic rename, so publishing, metrics and reports can read what exists without re-parsing file
names, and a re-run of the same chunk replaces its own file instead of adding duplicates.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

RECORDS_DIR = "_records"
REPORT_DIR = "_report"  # the run's timing report (framecast.metrics.report)


@dataclass
class FrameRecord:
    """One rendered frame. ``path`` is relative to the run directory."""

    model: str
    run: str  # model run time, ISO 8601 UTC, e.g. "2026-11-23T00:00:00+00:00"
    product: str
    region: str
    step: int
    path: str
    load_ms: float = 0.0
    render_ms: float = 0.0
    encode_ms: float = 0.0
    upload_ms: float = 0.0
    bytes: int = 0
    host: str = ""
    try_number: int = 0
    valid_time: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        """Identity of a frame: a retried task produces a record with the same key."""
        return (self.model, self.run, self.product, self.region, self.step)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FrameRecord:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


def run_dir(out_root: Path, model: str, run_time: datetime) -> Path:
    """``<out_root>/<model>/<YYYYMMDDHH>``: where one model run's frames live."""
    return Path(out_root) / model / run_time.strftime("%Y%m%d%H")


def chunk_name(product: str, region: str, steps: list[int]) -> str:
    return f"{product}__{region}__{min(steps):03d}-{max(steps):03d}"


def write_records(run_path: Path, name: str, records: list[FrameRecord]) -> Path:
    """Atomically (re)write the records file ``name`` of a chunk; returns its path."""
    d = Path(run_path) / RECORDS_DIR
    d.mkdir(parents=True, exist_ok=True)
    target = d / f"{name}.jsonl"
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            for r in records:
                fh.write(json.dumps(r.to_dict(), sort_keys=True) + "\n")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_records(run_path: Path) -> list[FrameRecord]:
    """All frame records of a run, de-duplicated by frame key (latest file wins), sorted."""
    d = Path(run_path) / RECORDS_DIR
    by_key: dict[tuple, FrameRecord] = {}
    if d.is_dir():
        for f in sorted(d.glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
            for line in f.read_text().splitlines():
                if line.strip():
                    rec = FrameRecord.from_dict(json.loads(line))
                    by_key[rec.key] = rec
    return sorted(by_key.values(), key=lambda r: (r.product, r.region, r.step))
