"""Lazy access to one model run's fields: ``RunDataset.open(dir).field("t2m", 6)``.

A run is hundreds of files (DWD: one per variable, level and step) or a few large multi-field
files (GFS). Opening a run only indexes which bytes hold which (variable, step) and checks each
file's GRIB framing; values are decoded when a frame asks for them, one message at a time, and
a small LRU keeps the last few fields (a precipitation difference or a wind speed needs two).

Names are canonical across models (see :mod:`framecast.dataset.names`): ``t2m``, ``msl``,
``tp``, ``gust10``, ``tcc``, ``u10``, ``v10``, ``u850``, ``v850``, ``t850``, ``gh850``, ``t500``,
``gh500``, ``gh1000``, ``cape``; derived ``wind10``, ``wind850``, ``tp_{N}h`` and
``thick_500_1000``. Values are float32 in the units cfgrib reports ('K', 'Pa', 'kg m**-2',
'm s**-1', '%', 'gpm', 'J kg**-1'); :meth:`framecast.field.Field.to` converts.

Decoding uses ecCodes (the library under cfgrib) directly on the indexed message bytes: xarray
and cfgrib would re-scan whole multi-field files and build a dataset per open, which costs more
than the frame needs; cfgrib stays the independent reference decoder in the tests.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType

import numpy as np

from framecast.dataset.grib import Message, message_from_bytes, read_bytes, validate_grib
from framecast.dataset.index import Entry, RunIndex, build_index, find_files
from framecast.dataset.names import (
    BASE_UNITS,
    DERIVED_INPUTS,
    LISTED_TP_PERIODS,
    TP_PERIOD,
    grib_name,
    units_of,
)
from framecast.errors import DataError, GribError
from framecast.field import Field, Grid

__all__ = ["RunDataset", "ReadStats", "validate_grib"]

#: Fields kept decoded (about 3.6 MB each for ICON-EU): enough for tp(step) - tp(step - N)
#: and u/v pairs of consecutive frames.
LRU_SIZE = 6


@dataclass
class ReadStats:
    """Counters of real work done: what laziness promises is checkable."""

    messages_decoded: int = 0
    bytes_read: int = 0
    cache_hits: int = 0


class RunDataset:
    """One model run, opened lazily. Use :meth:`open`; close (or ``with``) when done."""

    def __init__(self, index: RunIndex, source: str, model: str) -> None:
        self._index = index
        self._source = source
        self.model = model
        self.run_time: datetime = next(iter(index.run_times))
        self.steps: list[int] = sorted({s for _, s in index.entries})
        self._names = {n for n, _ in index.entries}
        self._cache: OrderedDict[tuple[str, int], Field] = OrderedDict()
        self._grids: dict[tuple, Grid] = {}
        self.stats = ReadStats()
        self._closed = False

    # -- opening --------------------------------------------------------------------------

    @classmethod
    def open(cls, source: Path | Sequence[Path], *, model: str | None = None) -> RunDataset:
        """Index a run directory (searched recursively) or an explicit list of files.

        Reads no values: only file names, ``.idx`` inventories and GRIB headers. Raises
        GribError for a file that is not (complete) GRIB2 and DataError when nothing usable
        is found, the files mix several runs or models, or ``model`` does not match.
        """
        src = source if isinstance(source, (str, Path)) else [Path(p) for p in source]
        files = find_files(src)
        where = str(source) if isinstance(source, (str, Path)) else f"{len(files)} files"
        index = build_index(files)
        if not index.entries:
            raise DataError(f"{where}: no fields framecast knows in {len(files)} GRIB file(s)")
        if len(index.run_times) > 1:
            runs = ", ".join(f"{t:%Y%m%d%H} ({p.name})" for t, p in sorted(index.run_times.items()))
            raise DataError(f"{where}: files of several runs ({runs}); open one run at a time")
        if len(index.models) > 1:
            raise DataError(f"{where}: files of several models ({', '.join(sorted(index.models))})")
        found = next(iter(index.models), None)
        if model is not None and found is not None and model != found:
            raise DataError(f"{where}: holds {found} files, not {model}")
        return cls(index, where, model or found or "grib")

    def __enter__(self) -> RunDataset:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Drop cached fields and grids (the dataset holds no open file handles)."""
        self._cache.clear()
        self._grids.clear()
        self._closed = True

    def __repr__(self) -> str:
        return (f"RunDataset({self.model} {self.run_time:%Y-%m-%d %HZ}, {len(self.steps)} steps, "
                f"{len(self._names)} variables, from {self._source})")

    # -- what is there --------------------------------------------------------------------

    def variables(self) -> list[str]:
        """Canonical names available: base names present plus the derivable ones."""
        names = set(self._names)
        for derived, inputs in DERIVED_INPUTS.items():
            if all(i in self._names for i in inputs):
                names.add(derived)
        if "tp" in self._names:
            names.update(f"tp_{n}h" for n in LISTED_TP_PERIODS)
        return sorted(names)

    def files(self) -> list[Path]:
        """Every data file indexed (e.g. for a manifest or clean-up)."""
        return sorted({e.path for e in self._index.entries.values()})

    # -- fields ---------------------------------------------------------------------------

    def field(self, name: str, step: int) -> Field:
        """``name`` at forecast hour ``step``, decoded now (or from the small LRU)."""
        if self._closed:
            raise DataError(f"{self._source}: dataset is closed")
        step = int(step)
        m = TP_PERIOD.match(name)
        if m:
            return self._tp_period(name, int(m.group(1)), step)
        if name in DERIVED_INPUTS:
            return self._derived(name, step)
        return self._base(name, step)

    def _missing(self, name: str, step: int) -> DataError:
        if name not in self._names and units_of(name) is None:
            return DataError(f"unknown variable {name!r} (step {step}) in {self._source}: "
                             f"available {', '.join(self.variables())}")
        if name not in self._names:
            return DataError(f"variable {name!r} (step {step}) not found in {self._source} "
                             f"({self.model} run {self.run_time:%Y%m%d%H}); available: "
                             f"{', '.join(self.variables())}")
        return DataError(f"variable {name!r} has no step {step} in {self._source} "
                         f"({self.model} run {self.run_time:%Y%m%d%H}); steps present: "
                         f"{_ranges(self._steps_of(name))}")

    def _steps_of(self, name: str) -> list[int]:
        return sorted(s for n, s in self._index.entries if n == name)

    def _base(self, name: str, step: int) -> Field:
        key = (name, step)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.stats.cache_hits += 1
            return cached
        entry = self._index.entries.get(key)
        if entry is None:
            if name == "tp" and step == 0 and "tp" in self._names:
                return self._tp_zero()
            raise self._missing(name, step)
        fld = self._decode(entry)
        self._cache[key] = fld
        while len(self._cache) > LRU_SIZE:
            self._cache.popitem(last=False)
        return fld

    def _decode(self, entry: Entry) -> Field:
        raw = read_bytes(entry.path, entry.offset, entry.length)
        self.stats.bytes_read += len(raw)
        msg = message_from_bytes(raw, entry.path)
        try:
            found = grib_name(str(msg.get("shortName")), str(msg.get("typeOfLevel")),
                              int(msg.get("level") or 0))
            if found is None or found[0] != entry.name:
                raise GribError(f"{entry.path}: expected {entry.name!r} at byte {entry.offset}, "
                                f"found shortName={msg.get('shortName')!r} "
                                f"typeOfLevel={msg.get('typeOfLevel')!r} level={msg.get('level')}")
            self._check_times(msg, entry)
            grid = self._grid(msg, entry)
            units = units_of(entry.name) or str(msg.get("units"))
            values = msg.values()
            self.stats.messages_decoded += 1
        finally:
            msg.close()
        if values.size != int(np.prod(grid.shape)):
            raise GribError(f"{entry.path}: {values.size} values for a grid of {grid.shape}")
        values = values.astype(np.float32)
        if found[1] != 1.0:
            values *= np.float32(found[1])
        values.flags.writeable = False  # cached and shared: callers must not change it
        return Field(entry.name, units, values.reshape(grid.shape), grid, self.run_time,
                     entry.step, self.run_time + timedelta(hours=entry.step),
                     {"model": self.model, "source": str(entry.path)})

    def _check_times(self, msg: Message, entry: Entry) -> None:
        run = datetime.strptime(f"{msg.get('dataDate'):08d}{msg.get('dataTime'):04d}",
                                "%Y%m%d%H%M").replace(tzinfo=UTC)
        step = int(msg.get("endStep"))
        if run != self.run_time or step != entry.step:
            raise GribError(f"{entry.path}: holds run {run:%Y%m%d%H} step {step}, the file "
                            f"name/index says run {self.run_time:%Y%m%d%H} step {entry.step}")
        if entry.name == "tp" and int(msg.get("startStep")) != 0:
            raise DataError(f"{entry.path}: tp at step {step} is accumulated from step "
                            f"{msg.get('startStep')}, not from the run start")

    # -- grids ----------------------------------------------------------------------------

    def _grid(self, msg: Message, entry: Entry) -> Grid:
        kind = msg.get("gridType")
        if kind == "regular_ll":
            key = tuple(msg.get(k) for k in (
                "Ni", "Nj", "latitudeOfFirstGridPointInDegrees",
                "latitudeOfLastGridPointInDegrees", "longitudeOfFirstGridPointInDegrees",
                "longitudeOfLastGridPointInDegrees", "iScansNegatively", "jPointsAreConsecutive"))
            if key not in self._grids:
                self._grids[key] = _regular_grid(*key, path=entry.path)
            return self._grids[key]
        if kind == "unstructured_grid":
            n = int(msg.get("numberOfDataPoints"))
            uuid = msg.get("uuidOfHGrid")
            key = ("unstructured", n, str(uuid))
            if key not in self._grids:
                self._grids[key] = self._icon_grid(n, uuid, entry.path)
            return self._grids[key]
        raise GribError(f"{entry.path}: grid type {kind!r} is not supported "
                        f"(regular_ll and unstructured_grid are)")

    def _icon_grid(self, n: int, uuid: object, data_path: Path) -> Grid:
        coords = {}
        for name in ("CLAT", "CLON"):
            path = self._index.invariants.get(name)
            if path is None:
                raise DataError(f"{data_path}: unstructured grid needs the {name} file "
                                f"(icon_global_icosahedral_time-invariant_*_{name}.grib2[.bz2]) "
                                f"in {self._source}, none found")
            msg = message_from_bytes(read_bytes(path, 0, None), path)
            try:
                values = msg.values()
                c_uuid = msg.get("uuidOfHGrid")
            finally:
                msg.close()
            self.stats.messages_decoded += 1
            if values.size != n:
                raise DataError(f"{path}: {values.size} cells, but {data_path} has {n}: "
                                f"coordinates of a different grid")
            if uuid and c_uuid and str(uuid) != str(c_uuid):
                raise DataError(f"{path}: grid uuid {c_uuid} differs from {data_path}'s {uuid}")
            coords[name] = values
        return Grid("unstructured", coords["CLAT"], coords["CLON"])

    # -- derived --------------------------------------------------------------------------

    def _derived(self, name: str, step: int) -> Field:
        a, b = (self._base(n, step) for n in DERIVED_INPUTS[name])
        thickness = name == "thick_500_1000"
        values = a.values - b.values if thickness else np.hypot(a.values, b.values)
        return Field(name, units_of(name) or a.units, values.astype(np.float32), a.grid,
                     a.run_time, step, a.valid_time, dict(a.attrs))

    def _tp_zero(self) -> Field:
        """tp at step 0 where the file lacks it (GFS f000): nothing has accumulated yet."""
        first = self._steps_of("tp")[0]
        like = self._base("tp", first)
        return Field("tp", like.units, np.zeros_like(like.values), like.grid, self.run_time, 0,
                     self.run_time, dict(like.attrs, synthesized="zero at the run start"))

    def _tp_period(self, name: str, hours: int, step: int) -> Field:
        """Precipitation over the last ``hours`` h: tp(step) - tp(step - hours).

        Steps within the first ``hours`` use the accumulation since the start. Small negative
        differences (packing noise in real data) are clipped to zero.
        """
        now = self._base("tp", step)
        before = step - hours
        if before <= 0:
            values = now.values.copy()
        else:
            if ("tp", before) not in self._index.entries:
                raise DataError(f"{name} at step {step} needs tp at step {before}, which is not "
                                f"in {self._source} (tp steps: {_ranges(self._steps_of('tp'))})")
            values = np.maximum(now.values - self._base("tp", before).values, np.float32(0))
        attrs = dict(now.attrs, period_hours=str(hours))
        return Field(name, BASE_UNITS["tp"], values.astype(np.float32), now.grid, now.run_time,
                     step, now.valid_time, attrs)


def _regular_grid(ni: int, nj: int, lat1: float, lat2: float, lon1: float, lon2: float,
                  i_neg: int, j_consecutive: int, *, path: Path) -> Grid:
    if i_neg or j_consecutive:
        raise GribError(f"{path}: scanning mode (iScansNegatively={i_neg}, "
                        f"jPointsAreConsecutive={j_consecutive}) is not supported")
    lats = np.linspace(lat1, lat2, int(nj))
    if lon2 < lon1:  # crosses the date line or Greenwich as 0..360 (ICON-EU: 336.5 .. 62.5)
        lon1 -= 360.0
    lons = np.linspace(lon1, lon2, int(ni))
    return Grid("regular", lats, lons)


def _ranges(steps: list[int]) -> str:
    """Compact step list for messages: '0-12, 15-30/3'."""
    if not steps:
        return "none"
    parts, i = [], 0
    while i < len(steps):
        j = i
        if i + 1 < len(steps):
            d = steps[i + 1] - steps[i]
            while j + 1 < len(steps) and steps[j + 1] - steps[j] == d:
                j += 1
        if j - i >= 2:
            d = steps[i + 1] - steps[i]
            parts.append(f"{steps[i]}-{steps[j]}" + (f"/{d}" if d != 1 else ""))
            i = j + 1
        else:
            parts.append(str(steps[i]))
            i += 1
    return ", ".join(parts)
