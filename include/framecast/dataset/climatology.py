"""Long-term monthly means from a GRIB file, interpolated onto any model grid.

Anomaly charts (``t2m_anomaly = t2m - climatology(t2m, valid month)``) need the normal value
of a field for the frame's calendar month, on the model's own grid. The climatology is one
GRIB file (GRIB1 or GRIB2, e.g. ERA5 monthly means averaged over 1991-2020) named in
``models.yaml`` (``climatology:``) or given with ``framecast render --climatology``:

* one message per (variable, calendar month) on a regular lat-lon grid; the month is the
  month of the message's ``dataDate`` (the year is ignored), the variable is identified
  through the variable catalogue like forecast fields (``2t``/``t2m``, ``gh`` or ``z`` at
  500 hPa -> ``gh500`` with geopotential divided by g, ``msl``/``prmsl``), so values are in
  the catalogue's units;
* opening reads headers only; a month's field is decoded when a frame asks for it and
  interpolated bilinearly (scipy's ``RegularGridInterpolator`` on latitude/longitude, with
  the longitude wrapped on a global file) at the model's grid points: the axes of ICON-EU and
  GFS, ICON's cell centres. The result is cached per (variable, month, grid), so every frame
  of a run in one month costs one interpolation.

Every problem is a :class:`~framecast.errors.ClimatologyError` naming the file and the
variable or month: no file, not GRIB, a variable or month it lacks, two messages for one
month, a grid that is not regular lat-lon.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from framecast.dataset.grib import iter_file_messages, message_from_bytes, read_bytes
from framecast.errors import ClimatologyError, GribError
from framecast.field import Grid

MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")

#: Decoded and interpolated fields kept (ICON-EU: 3.6 MB each; an ERA5 0.25 degree month
#: 8 MB): a few variables of a month or two, bounded in a long-lived worker.
CACHE_SIZE = 8


@dataclass(frozen=True)
class _Entry:
    offset: int
    length: int
    scale: float


class Climatology:
    """Monthly means of one file: :meth:`open`, then :meth:`on_grid` per frame."""

    def __init__(self, path: Path, entries: dict[tuple[str, int], _Entry]) -> None:
        self.path = path
        self._entries = entries
        self._axes: OrderedDict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] \
            = OrderedDict()
        self._cache: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()

    @classmethod
    def open(cls, path: str | Path) -> Climatology:
        """Index the file's messages (headers only), cached per path and modification time."""
        p = Path(path).expanduser()
        try:
            mtime = p.stat().st_mtime_ns
        except FileNotFoundError:
            raise ClimatologyError(f"climatology file {p} does not exist (configured as "
                                   f"models.<model>.climatology.path or --climatology)") from None
        except OSError as exc:
            raise ClimatologyError(f"climatology file {p}: cannot read: {exc.strerror}") from None
        return _open(str(p.resolve()), mtime)

    def variables(self) -> list[str]:
        """Canonical names with at least one month in the file."""
        return sorted({n for n, _ in self._entries})

    def months(self, name: str) -> list[int]:
        return sorted(m for n, m in self._entries if n == name)

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self._entries)

    def _entry(self, name: str, month: int) -> _Entry:
        entry = self._entries.get((name, month))
        if entry is not None:
            return entry
        if not self.has(name):
            raise ClimatologyError(f"climatology file {self.path} has no variable {name!r} "
                                   f"(it holds: {', '.join(self.variables()) or 'nothing known'})")
        have = ", ".join(MONTH_NAMES[m - 1] for m in self.months(name))
        raise ClimatologyError(f"climatology file {self.path} has no {MONTH_NAMES[month - 1]} "
                               f"(month {month}) for {name!r} (months present: {have})")

    def monthly(self, name: str, month: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lats ascending, lons ascending, values [lat, lon]) of one month, catalogue units."""
        key = (name, month)
        if key in self._axes:
            self._axes.move_to_end(key)
        else:
            entry = self._entry(name, month)
            msg = message_from_bytes(read_bytes(self.path, entry.offset, entry.length),
                                     self.path)
            try:
                lats, lons, values = _regular_values(msg, self.path, name, month)
            finally:
                msg.close()
            if entry.scale != 1.0:
                values = values * entry.scale
            self._axes[key] = (lats, lons, values)
            while len(self._axes) > CACHE_SIZE:
                self._axes.popitem(last=False)
        return self._axes[key]

    def on_grid(self, name: str, valid_time: datetime, grid: Grid) -> np.ndarray:
        """The mean of ``name`` for ``valid_time``'s calendar month at ``grid``'s points.

        Float32 in the catalogue's units, shaped like the grid; NaN outside a regional file.
        """
        month = valid_time.month
        key = (name, month, grid.key)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        lats, lons, values = self.monthly(name, month)
        out = interpolate(lats, lons, values, grid)
        out.flags.writeable = False
        self._cache[key] = out
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return out


@lru_cache(maxsize=4)
def _open(path: str, _mtime: int) -> Climatology:
    from framecast.dataset.grib import eccodes  # noqa: F401  (ecCodes after cartopy)
    from framecast.dataset.names import grib_name

    p = Path(path)
    entries: dict[tuple[str, int], _Entry] = {}
    try:
        for offset, raw in iter_file_messages(p):
            msg = message_from_bytes(raw, p)
            try:
                found = grib_name(str(msg.get("shortName")), str(msg.get("typeOfLevel")),
                                  int(msg.get("level") or 0))
                month = int(msg.get("dataDate")) // 100 % 100
            finally:
                msg.close()
            if found is None:
                continue  # a field the catalogue does not know: not usable for anomalies
            name, scale = found
            if (name, month) in entries:
                raise ClimatologyError(
                    f"climatology file {p}: two messages for {name!r} in "
                    f"{MONTH_NAMES[month - 1]} (bytes {entries[name, month].offset} and "
                    f"{offset}); keep one long-term mean per variable and calendar month")
            entries[(name, month)] = _Entry(offset, len(raw), scale)
    except GribError as exc:
        raise ClimatologyError(f"climatology file {p} is not readable GRIB: {exc}") from None
    if not entries:
        raise ClimatologyError(f"climatology file {p}: no variable of the catalogue in it")
    return Climatology(p, entries)


def _regular_values(msg, path: Path, name: str, month: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kind = msg.get("gridType")
    if kind != "regular_ll":
        raise ClimatologyError(f"climatology file {path}: {name!r} ({MONTH_NAMES[month - 1]}) "
                               f"is on a {kind!r} grid; a regular lat-lon grid is needed")
    ni, nj = int(msg.get("Ni")), int(msg.get("Nj"))
    lat1 = float(msg.get("latitudeOfFirstGridPointInDegrees"))
    lat2 = float(msg.get("latitudeOfLastGridPointInDegrees"))
    lon1 = float(msg.get("longitudeOfFirstGridPointInDegrees"))
    lon2 = float(msg.get("longitudeOfLastGridPointInDegrees"))
    values = np.asarray(msg.values(), dtype=np.float64)
    if msg.get("jPointsAreConsecutive"):
        values = values.reshape(ni, nj).T
    values = values.reshape(nj, ni)
    if msg.get("iScansNegatively"):
        lon1, lon2 = lon2, lon1
        values = values[:, ::-1]
    if lon2 < lon1:
        lon1 -= 360.0
    lats, lons = np.linspace(lat1, lat2, nj), np.linspace(lon1, lon2, ni)
    if lats[0] > lats[-1]:
        lats, values = lats[::-1], values[::-1]
    return lats, lons, np.ascontiguousarray(values)


def interpolate(lats: np.ndarray, lons: np.ndarray, values: np.ndarray, grid: Grid
                ) -> np.ndarray:
    """Bilinear interpolation of a regular lat-lon field (ascending axes) at ``grid``'s points.

    A global field gets its first column repeated at +360 degrees so points between the last
    and first meridian interpolate across the seam; target longitudes are taken modulo 360
    into the field's range. Points outside a regional field are NaN.
    """
    from scipy.interpolate import RegularGridInterpolator

    step = float(lons[1] - lons[0]) if lons.size > 1 else 360.0
    is_global = lons.size > 1 and (lons[-1] - lons[0]) + step >= 360.0 - 1e-6
    if is_global:
        lons = np.append(lons, lons[0] + 360.0)
        values = np.concatenate([values, values[:, :1]], axis=1)
    interp = RegularGridInterpolator((lats, lons), values, method="linear", bounds_error=False,
                                     fill_value=np.nan)
    if grid.kind == "regular":
        glon, glat = np.meshgrid(np.asarray(grid.lons, dtype=np.float64),
                                 np.asarray(grid.lats, dtype=np.float64))
    else:
        glat = np.asarray(grid.lats, dtype=np.float64)
        glon = np.asarray(grid.lons, dtype=np.float64)
    glon = lons[0] + np.mod(glon - lons[0], 360.0)
    if is_global:  # poles: a global file may stop half a cell short of +-90
        glat = np.clip(glat, lats[0], lats[-1])
    pts = np.stack([glat.ravel(), glon.ravel()], axis=-1)
    return interp(pts).reshape(glat.shape).astype(np.float32)
