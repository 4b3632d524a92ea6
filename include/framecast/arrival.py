"""When a run's files appear upstream: per-model arrival tables and release schedules.

Upstream servers publish a model run progressively, step by step. ``config/arrival.yaml``
describes that pattern as offsets from the run time at a few steps (linear in between).
:func:`release_schedule` turns it into the wall-clock instant at which each file of a run
becomes visible, compressed by a speed-up factor, which the local upstream
(:mod:`framecast.upstream`) uses to replay a cycle as it really arrives.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from framecast.catalog import RemoteFile, parse_duration
from framecast.errors import SpecError

ARRIVAL_FILE = Path(__file__).with_name("config") / "arrival.yaml"


@dataclass(frozen=True)
class ArrivalTable:
    """Offsets from the run time at which steps appear, as increasing (step, seconds) points."""

    model: str
    points: tuple[tuple[int, float], ...]

    def offset(self, step: int | None) -> timedelta:
        """When ``step`` appears after the run time (None, time-invariant files: with step 0).

        Linear between the table's points; before the first point the first offset, after the
        last point the last offset (the table says when the run is complete).
        """
        steps = [s for s, _ in self.points]
        if step is None or step <= steps[0]:
            return timedelta(seconds=self.points[0][1])
        if step >= steps[-1]:
            return timedelta(seconds=self.points[-1][1])
        i = bisect.bisect_right(steps, step)
        (s0, t0), (s1, t1) = self.points[i - 1], self.points[i]
        return timedelta(seconds=t0 + (t1 - t0) * (step - s0) / (s1 - s0))


def parse_table(model: str, rows: Any, where: str) -> ArrivalTable:
    """``[[step, "2h"], ...]`` -> table; steps and offsets must both increase."""
    if not isinstance(rows, list) or not rows:
        raise SpecError(f"{where}: expected a list of [step, offset] pairs, got {rows!r}")
    points: list[tuple[int, float]] = []
    for i, row in enumerate(rows):
        if not (isinstance(row, list | tuple) and len(row) == 2 and isinstance(row[0], int)
                and not isinstance(row[0], bool) and row[0] >= 0):
            raise SpecError(f"{where}[{i}]: expected [step, offset] with a step >= 0, got {row!r}")
        seconds = parse_duration(row[1], f"{where}[{i}]").total_seconds()
        if points and (row[0] <= points[-1][0] or seconds < points[-1][1]):
            raise SpecError(f"{where}[{i}]: steps must increase and offsets must not decrease "
                            f"({list(points[-1])} then {row!r})")
        points.append((row[0], seconds))
    return ArrivalTable(model, tuple(points))


def load_arrival(model: str, path: Path | None = None) -> ArrivalTable:
    """The arrival table of ``model`` from ``arrival.yaml`` (or ``path``)."""
    path = path or ARRIVAL_FILE
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh) or {}
    if not isinstance(doc, Mapping) or model not in doc:
        known = sorted(doc) if isinstance(doc, Mapping) else []
        raise SpecError(f"{path}: no arrival table for model {model!r}; known: {known}")
    return parse_table(model, doc[model], f"{path}: {model}")


def release_schedule(
    files: Iterable[RemoteFile], table: ArrivalTable, *, start: float, speedup: float = 1.0,
) -> dict[str, float]:
    """``url_path`` -> the instant (``time.time()`` scale) at which the file becomes visible.

    The first step appears at ``start``; every later file ``(offset(step) - offset(first)) /
    speedup`` seconds after it. GFS ``.idx`` files appear with their GRIB file.
    """
    if speedup <= 0:
        raise SpecError(f"arrival speed-up must be positive, got {speedup}")
    files = list(files)
    if not files:
        return {}
    first = min(table.offset(f.step) for f in files)
    out: dict[str, float] = {}
    for f in files:
        at = start + (table.offset(f.step) - first).total_seconds() / speedup
        out[f.url_path] = at
        if f.fields:  # ranged downloads read the index first
            out[f.url_path + ".idx"] = at
    return out
