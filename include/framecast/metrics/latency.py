"""Publish latency per step: when a chunk's inputs were upstream, when its charts were public.

Users judge a streaming cycle by how soon each forecast hour is online, so every chunk of steps
leaves one small record in ``<run_dir>/_latency/<label>.json`` when its increment is published:
the time its files were seen upstream (the chunk's wait) and the time its charts went public.
The run report shows them by step, and per-window deadlines (``publish_windows`` in
models.yaml) are checked against them. Records are written atomically (temp + rename), one
file per chunk, so chunks published in parallel or re-published after a clear never collide.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from framecast.errors import DataError

LATENCY_DIR = "_latency"


@dataclass(frozen=True)
class StepLatency:
    """One step's times, in seconds (epoch for the instants)."""

    step: int
    chunk: str
    available_at: float | None  # inputs seen upstream (None: not known, e.g. a manual run)
    published_at: float
    run_time: float

    @property
    def latency_s(self) -> float | None:
        """From the inputs upstream to the charts public."""
        return None if self.available_at is None else self.published_at - self.available_at

    @property
    def since_run_s(self) -> float:
        """From the model's nominal run time to the charts public (what deadlines measure)."""
        return self.published_at - self.run_time


def write_latency(run_dir: Path | str, label: str, steps: list[int], *, run_time: datetime,
                  available_at: float | None, published_at: float) -> Path:
    """Record one chunk's times; a re-published chunk replaces its own record."""
    if run_time.tzinfo is None:
        raise DataError(f"latency record {label!r}: run time {run_time} has no time zone")
    d = Path(run_dir) / LATENCY_DIR
    d.mkdir(parents=True, exist_ok=True)
    safe = label.replace("+", "").replace(".", "_")
    target = d / f"{safe}.json"
    doc = {"chunk": label, "steps": [int(s) for s in steps], "available_at": available_at,
           "published_at": published_at, "run_time": run_time.timestamp()}
    fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{safe}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_latency(run_dir: Path | str) -> list[StepLatency]:
    """Every recorded step of the run, by step; a malformed record names its file."""
    d = Path(run_dir) / LATENCY_DIR
    out: dict[int, StepLatency] = {}
    if not d.is_dir():
        return []
    for f in sorted(d.glob("*.json")):
        try:
            doc = json.loads(f.read_text())
            for step in doc["steps"]:
                out[int(step)] = StepLatency(
                    int(step), str(doc["chunk"]),
                    None if doc["available_at"] is None else float(doc["available_at"]),
                    float(doc["published_at"]), float(doc["run_time"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{f}: not a latency record ({exc})") from exc
    return [out[s] for s in sorted(out)]


def window_published_s(rows: list[StepLatency], upto_step: int,
                       expected_steps: list[int]) -> float | None:
    """Seconds after run time by which every expected step up to ``upto_step`` was public;
    None while any of them is not published yet."""
    want = [s for s in expected_steps if s <= upto_step]
    have = {r.step: r for r in rows}
    if not want or any(s not in have for s in want):
        return None
    return max(have[s].since_run_s for s in want)
