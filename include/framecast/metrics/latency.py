"""Publish latency per step: when a chunk's inputs were upstream, when its charts were public.

Users judge a streaming cycle by how soon each forecast hour is online, so every chunk of steps
leaves one small record in ``<run_dir>/_latency/<label>.json`` when its increment is published:
the time its files were seen upstream (the chunk's wait) and the time its charts went public.
The run report shows them by step, and per-window deadlines (``publish_windows`` in
models.yaml) are checked against them. Records are written atomically (temp + rename), one
file per chunk, so chunks published in parallel or re-published after a clear never collide.

The records also say which Airflow DAG run published the chunk, and they exist from the first
published chunk on, long before the run's frames reach the metrics database: the ops view
lists runs still streaming from them (:func:`in_progress_runs`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from framecast.errors import DataError

LATENCY_DIR = "_latency"
#: A model name as a folder name: no path separators, no dot segments.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
#: A run folder's name, as ``records.run_dir`` writes it (``YYYYMMDDHH``).
RUN_FOLDER = re.compile(r"^[0-9]{10}$")
#: Run folders without any latency record (runs rendering their first chunk, or that never
#: published one) a listing passes over per model before it stops looking further back.
EMPTY_FOLDERS = 8


@dataclass(frozen=True)
class StepLatency:
    """One step's times, in seconds (epoch for the instants)."""

    step: int
    chunk: str
    available_at: float | None  # inputs seen upstream (None: not known, e.g. a manual run)
    published_at: float
    run_time: float
    dag_id: str = ""  # the Airflow DAG run that published the chunk ("" in older records)
    run_id: str = ""

    @property
    def latency_s(self) -> float | None:
        """From the inputs upstream to the charts public."""
        return None if self.available_at is None else self.published_at - self.available_at

    @property
    def since_run_s(self) -> float:
        """From the model's nominal run time to the charts public (what deadlines measure)."""
        return self.published_at - self.run_time


def write_latency(run_dir: Path | str, label: str, steps: list[int], *, run_time: datetime,
                  available_at: float | None, published_at: float, dag_id: str = "",
                  run_id: str = "") -> Path:
    """Record one chunk's times; a re-published chunk replaces its own record.

    ``dag_id``/``run_id`` name the Airflow DAG run that published it, so a listing of runs
    in progress can link to it before the run's metrics task registers the link.
    """
    if run_time.tzinfo is None:
        raise DataError(f"latency record {label!r}: run time {run_time} has no time zone")
    d = Path(run_dir) / LATENCY_DIR
    d.mkdir(parents=True, exist_ok=True)
    safe = label.replace("+", "").replace(".", "_")
    target = d / f"{safe}.json"
    doc = {"chunk": label, "steps": [int(s) for s in steps], "available_at": available_at,
           "published_at": published_at, "run_time": run_time.timestamp(),
           "dag_id": dag_id, "run_id": run_id}
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
                    float(doc["published_at"]), float(doc["run_time"]),
                    str(doc.get("dag_id") or ""), str(doc.get("run_id") or ""))
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


@dataclass(frozen=True)
class RunProgress:
    """A run with published chunks that is not in the metrics database (yet), for listings."""

    model: str
    run: str  # ISO UTC, as the metrics database keys runs
    steps: int  # steps published so far
    chunks: int  # chunks published so far
    first_step: int | None
    last_step: int | None
    newest: StepLatency | None  # the step published last (its chunk's times)
    dag_id: str = ""
    run_id: str = ""
    error: str = ""  # an unreadable record, named; the run is still listed

    @staticmethod
    def of(model: str, run: str, rows: list[StepLatency]) -> RunProgress:
        """Summary of a run's latency records (``rows`` from :func:`read_latency`)."""
        newest = max(rows, key=lambda r: r.published_at, default=None)
        return RunProgress(
            model, run, len(rows), len({r.chunk for r in rows}),
            rows[0].step if rows else None, rows[-1].step if rows else None, newest,
            newest.dag_id if newest else "", newest.run_id if newest else "")


def _subdirs(path: Path, pattern: re.Pattern[str]) -> list[str]:
    """Names of the folders in ``path`` matching ``pattern`` ([] when ``path`` is gone)."""
    try:
        with os.scandir(path) as it:
            return [e.name for e in it if pattern.match(e.name) and e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def in_progress_runs(frames_root: Path | str, stored: Iterable[tuple[str, str]], *,
                     model: str | None = None, last: int = 30) -> list[RunProgress]:
    """Runs under ``frames_root`` with latency records that are not among ``stored``, newest
    first (then by model), at most ``last``.

    ``stored`` are the ``(model, ISO run)`` keys of the listing these runs join: the newest
    ``last`` runs of the metrics database (of ``model`` when given). A run in it is recognised
    by its folder name, without reading anything; every other run of the metrics database is
    older than the listing's oldest one whenever the listing is full, where the scan stops.

    Bounded cost, whatever the number of run folders ever written: one listing of
    ``frames_root`` (none when ``model`` is given), one listing of each model folder (names
    only), then that model's run folders newest first, stopping as soon as ``last`` of them are
    accounted for (stored, or with records: no older run of that model can be among the newest
    ``last`` listed) or the scan passes the listing's oldest stored run while the listing is
    full. Folders without any record (a run rendering its first chunk) are passed over, at most
    :data:`EMPTY_FOLDERS` of them, so at most ``last + EMPTY_FOLDERS`` run folders' records are
    read per model; in practice only today's runs are read. Model and run folder names must be plain names
    (:data:`MODEL_NAME`, :data:`RUN_FOLDER`): anything else is never joined into a path.
    """
    root = Path(frames_root)
    known = {(m, r) for m, r in stored}
    oldest = min((r for _, r in known), default="") if len(known) >= last else ""
    if model is not None:
        models = [model] if MODEL_NAME.match(model) and (root / model).is_dir() else []
    else:
        models = _subdirs(root, MODEL_NAME)
    found: list[RunProgress] = []
    for m in sorted(models):
        places = empty = 0
        for name in sorted(_subdirs(root / m, RUN_FOLDER), reverse=True):
            if places >= last or empty >= EMPTY_FOLDERS:
                break
            try:
                run = datetime.strptime(name, "%Y%m%d%H").replace(tzinfo=UTC).isoformat()
            except ValueError:  # ten digits that are no date, e.g. month 13: not a run folder
                continue
            if run < oldest:
                break
            if (m, run) in known:
                places += 1
                continue
            try:
                rows = read_latency(root / m / name)
            except DataError as exc:
                found.append(RunProgress(m, run, 0, 0, None, None, None, error=str(exc)))
                places += 1
                continue
            except FileNotFoundError:  # removed while being read (retention): not a run now
                rows = []
            if rows:
                found.append(RunProgress.of(m, run, rows))
                places += 1
            else:
                empty += 1
    found.sort(key=lambda p: p.model)
    found.sort(key=lambda p: p.run, reverse=True)
    return found[:max(last, 0)]
