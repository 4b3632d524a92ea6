"""Point series of a run: every GRIB message read once, for all places at the same time.

The point index (:mod:`framecast.points.index`) is computed once from the grid; then each
(variable, step) message is read, identified and only the values at the places' grid
indexes are unpacked (:meth:`framecast.dataset.RunDataset.values_at`). No field is kept: a
run of 93 steps x 48 fields for 100 places ends up as a few megabytes of series.
Several workers split the steps between them (each reads different messages).
"""

from __future__ import annotations

import re
import resource
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from framecast.dataset import RunDataset
from framecast.dataset.names import units_of
from framecast.errors import DataError
from framecast.points.index import PointIndex, point_index
from framecast.points.places import Place

#: Single-level variables a point forecast uses (each optional: panels say what is missing).
SURFACE_VARIABLES = ("t2m", "td2m", "msl", "tp", "snow_gsp", "snow_con", "gust10", "u10",
                     "v10", "tcc", "lcc", "mcc", "hcc", "ww", "cape")
#: Pressure-level families of the time-height section and the sounding.
PROFILE_FAMILIES = ("t", "r", "u", "v")
#: Levels used for sections and soundings (hPa): those of 1000-300 present in the data.
PROFILE_RANGE = (300, 1000)


def default_levels() -> tuple[int, ...]:
    """Levels asked for by default (downloads): the variable catalogue's within the range."""
    from framecast.variables import load_catalogue

    lo, hi = PROFILE_RANGE
    return tuple(lev for lev in load_catalogue().levels if lo <= lev <= hi)
_LEVEL = re.compile(r"^(t|r|u|v|gh)(\d+)$")


@dataclass
class PointSeries:
    """Values (n_steps, n_places) per variable for one run, in the dataset's units."""

    model: str
    run_time: datetime
    steps: list[int]
    places: tuple[Place, ...]
    values: dict[str, np.ndarray]
    units: dict[str, str]
    grid_lat: np.ndarray
    grid_lon: np.ndarray
    method: str = "nearest"
    messages: int = field(default=0, compare=False)
    worker_rss_mb: list[float] = field(default_factory=list, compare=False)

    def has(self, name: str) -> bool:
        """Whether ``name`` has at least one value (some variables lack a few steps)."""
        v = self.values.get(name)
        return v is not None and bool(np.isfinite(v).any())

    def get(self, name: str, place: int) -> np.ndarray:
        """The series of ``name`` at place number ``place`` (NaN where missing)."""
        return self.values[name][:, place]

    def levels(self, family: str = "t") -> list[int]:
        """Pressure levels (hPa, descending: bottom first) holding ``family`` values."""
        lo, hi = PROFILE_RANGE
        return sorted((int(m.group(2)) for n in self.values if (m := _LEVEL.match(n))
                       and m.group(1) == family and lo <= int(m.group(2)) <= hi
                       and self.has(n)), reverse=True)

    @property
    def valid_times(self) -> list[datetime]:
        return [self.run_time + timedelta(hours=s) for s in self.steps]

    def subset(self, place_numbers: Sequence[int]) -> PointSeries:
        """The same series for some of the places (for batches)."""
        idx = list(place_numbers)
        return PointSeries(self.model, self.run_time, list(self.steps),
                           tuple(self.places[i] for i in idx),
                           {k: v[:, idx] for k, v in self.values.items()}, dict(self.units),
                           self.grid_lat[idx], self.grid_lon[idx], self.method, self.messages)


def candidate_variables(levels: Sequence[int] | None = None) -> list[str]:
    """Every name a point forecast can use, profiles at ``levels`` (default_levels())."""
    levels = default_levels() if levels is None else levels
    return list(SURFACE_VARIABLES) + [f"{f}{lev}" for lev in levels for f in PROFILE_FAMILIES]


def wanted_variables(available: Sequence[str]) -> list[str]:
    """The base variables of ``available`` a point forecast reads."""
    names = [n for n in SURFACE_VARIABLES if n in available]
    lo, hi = PROFILE_RANGE
    for n in available:
        m = _LEVEL.match(n)
        if m and m.group(1) in PROFILE_FAMILIES and lo <= int(m.group(2)) <= hi:
            names.append(n)
    return names


def _extract_steps(source: Path, model: str | None, places: tuple[Place, ...], method: str,
                   names: list[str], steps: list[int]
                   ) -> tuple[dict[str, np.ndarray], int, float]:
    """Worker: values (len(steps), n_places) per name, reading each message once."""
    with RunDataset.open(source, model=model) as ds:
        idx = point_index(ds.grid(names[0]), places, method, ds.model)
        out = {n: np.full((len(steps), len(places)), np.nan, dtype=np.float32) for n in names}
        for i, step in enumerate(steps):
            for n in names:
                if ds.has(n, step):
                    out[n][i] = idx.combine(ds.values_at(n, step, idx.unique))
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        return out, ds.stats.messages_decoded, rss


def extract(source: Path, places: Sequence[Place], *, model: str | None = None,
            method: str = "nearest", names: Sequence[str] | None = None,
            steps: Sequence[int] | None = None, workers: int = 1) -> PointSeries:
    """Point series of ``places`` from the run at ``source`` (a directory of GRIB files).

    ``names`` default: :func:`wanted_variables` of what the run holds. ``workers`` > 1 splits
    the steps over processes. PlaceError (before anything is read) for a place outside the
    grid; DataError when none of the names is in the run.
    """
    places = tuple(places)
    with RunDataset.open(source, model=model) as ds:
        available = ds.variables()
        wanted = list(names) if names is not None else wanted_variables(available)
        missing = [n for n in wanted if n not in available]
        if names is not None and missing:
            raise DataError(f"{source}: variable(s) {', '.join(missing)} not in the "
                            f"{ds.model} run {ds.run_time:%Y%m%d%H}; available: "
                            f"{', '.join(available)}")
        if not wanted:
            raise DataError(f"{source}: none of the point-forecast variables "
                            f"({', '.join(SURFACE_VARIABLES)}) in the {ds.model} run")
        step_list = sorted(int(s) for s in (steps if steps is not None else ds.steps))
        grid = ds.grid(wanted[0])
        index: PointIndex = point_index(grid, places, method, ds.model)  # errors early
        run_time, found_model = ds.run_time, ds.model
    workers = max(1, min(int(workers), len(step_list)))
    parts = [step_list[k::workers] for k in range(workers)]  # interleaved: even shares
    if workers == 1:
        results = [_extract_steps(source, model, places, method, wanted, step_list)]
    else:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_extract_steps, [source] * workers, [model] * workers,
                                    [places] * workers, [method] * workers,
                                    [wanted] * workers, parts))
    values = {n: np.full((len(step_list), len(places)), np.nan, dtype=np.float32)
              for n in wanted}
    pos = {s: i for i, s in enumerate(step_list)}
    for part, (vals, _, _) in zip(parts, results, strict=True):
        rows = [pos[s] for s in part]
        for n in wanted:
            values[n][rows] = vals[n]
    units = {n: units_of(n) or "1" for n in wanted}
    return PointSeries(found_model, run_time, step_list, places, values, units,
                       index.grid_lat, index.grid_lon, index.method,
                       sum(m for _, m, _ in results), [r for _, _, r in results])


def save_series(series: PointSeries, path: Path) -> Path:
    """Store ``series`` (one ``.npz``, written atomically) for tasks that draw from it."""
    import json
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": series.model, "run_time": series.run_time.isoformat(),
            "steps": series.steps, "places": [p.to_dict() for p in series.places],
            "units": series.units, "method": series.method, "messages": series.messages}
    arrays = {f"v_{k}": v for k, v in series.values.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, meta=np.array(json.dumps(meta)), grid_lat=series.grid_lat,
                 grid_lon=series.grid_lon, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_series(path: Path) -> PointSeries:
    """A series stored by :func:`save_series`."""
    import json

    try:
        with np.load(Path(path)) as z:
            meta = json.loads(str(z["meta"]))
            values = {k[2:]: z[k] for k in z.files if k.startswith("v_")}
            glat, glon = z["grid_lat"], z["grid_lon"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: cannot read stored point series: {exc}") from None
    return PointSeries(meta["model"], datetime.fromisoformat(meta["run_time"]), meta["steps"],
                       tuple(Place(**p) for p in meta["places"]), values, meta["units"],
                       glat, glon, meta["method"], meta["messages"])
