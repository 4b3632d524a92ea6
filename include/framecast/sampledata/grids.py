"""The real model grids, and cheap evaluation of smooth fields on them.

Regular grids are large (ICON-EU 1377x657, GFS 1440x721, about a million points), but the
sample weather is smooth, so it is evaluated on a grid four times coarser and brought to full
resolution by separable linear interpolation (two gathers per axis). That keeps a whole
ICON-EU step of all variables well under a second on one core.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from framecast.icongrid import DEFAULT_DIVISION, icosahedral_grid


@dataclass(frozen=True)
class RegularGridSpec:
    """A regular lat-lon grid in GRIB scanning order (first point, increments, direction)."""

    ni: int
    nj: int
    lat_first: float
    lat_last: float
    lon_first: float
    lon_last: float
    increment: float

    @property
    def lats(self) -> np.ndarray:
        return np.linspace(self.lat_first, self.lat_last, self.nj)

    @property
    def lons(self) -> np.ndarray:
        return np.linspace(self.lon_first, self.lon_last, self.ni)

    def grib_keys(self) -> dict[str, float | int]:
        return {
            "Ni": self.ni, "Nj": self.nj,
            "latitudeOfFirstGridPointInDegrees": self.lat_first,
            "longitudeOfFirstGridPointInDegrees": self.lon_first % 360.0,
            "latitudeOfLastGridPointInDegrees": self.lat_last,
            "longitudeOfLastGridPointInDegrees": self.lon_last % 360.0,
            "iDirectionIncrementInDegrees": self.increment,
            "jDirectionIncrementInDegrees": self.increment,
            "jScansPositively": int(self.lat_last > self.lat_first),
        }


#: DWD ICON-EU: 0.0625 deg, south to north.
ICON_EU_GRID = RegularGridSpec(1377, 657, 29.5, 70.5, -23.5, 62.5, 0.0625)
#: NCEP GFS 0.25 deg: north to south, 0..359.75 E.
GFS_GRID = RegularGridSpec(1440, 721, 90.0, -90.0, 0.0, 359.75, 0.25)


def _interp_weights(fine: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Left coarse index and weight of the right neighbour for each fine coordinate."""
    pos = (fine - coarse[0]) / (coarse[-1] - coarse[0]) * (coarse.size - 1)
    i0 = np.clip(np.floor(pos).astype(np.intp), 0, coarse.size - 2)
    return i0, (pos - i0).astype(np.float32)


@dataclass
class RegularSampler:
    """Evaluate point functions on a coarse version of a regular grid, return full-res arrays."""

    spec: RegularGridSpec
    factor: int = 4
    clats: np.ndarray = field(init=False)
    clons: np.ndarray = field(init=False)
    _y: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)
    _x: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)
    _points: tuple[np.ndarray, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        lats, lons = self.spec.lats, self.spec.lons
        self.clats = np.linspace(lats[0], lats[-1], -(-lats.size // self.factor) + 1)
        self.clons = np.linspace(lons[0], lons[-1], -(-lons.size // self.factor) + 1)
        lat2, lon2 = np.meshgrid(self.clats, self.clons, indexing="ij")
        self._points = (lat2.ravel(), lon2.ravel())
        self._y = _interp_weights(lats, self.clats)
        self._x = _interp_weights(lons, self.clons)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Coarse point coordinates (flat lat, flat lon): the same arrays on every call."""
        return self._points

    def upsample(self, coarse_flat: np.ndarray) -> np.ndarray:
        """Full-resolution (nj, ni) float32 array from values at :meth:`points`."""
        c = coarse_flat.reshape(self.clats.size, self.clons.size).astype(np.float32)
        (iy, wy), (ix, wx) = self._y, self._x
        rows = c[iy] * (1.0 - wy)[:, None] + c[iy + 1] * wy[:, None]  # (nj, coarse nx)
        return rows[:, ix] * (1.0 - wx) + rows[:, ix + 1] * wx


@lru_cache(maxsize=4)
def regular_sampler(spec: RegularGridSpec) -> RegularSampler:
    return RegularSampler(spec)


@dataclass(frozen=True)
class UnstructuredSampler:
    """ICON's icosahedral cells: functions are evaluated at every cell centre directly."""

    division: int

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        g = icosahedral_grid(self.division)
        return g.clat, g.clon

    def upsample(self, values: np.ndarray) -> np.ndarray:
        return values.astype(np.float32)


Sampler = RegularSampler | UnstructuredSampler


def sampler_for(model: str, icon_resolution: int | None = None) -> Sampler:
    """The sampler for a model's grid (``icon_resolution`` is the icosahedral root division)."""
    if model == "icon-eu":
        return regular_sampler(ICON_EU_GRID)
    if model == "gfs":
        return regular_sampler(GFS_GRID)
    return UnstructuredSampler(icon_resolution or DEFAULT_DIVISION)


def evaluate(sampler: Sampler, fn: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]],
             names: set[str]) -> dict[str, np.ndarray]:
    """Evaluate ``fn`` at the sampler's points and bring the ``names`` to full resolution."""
    lat, lon = sampler.points()
    out = fn(lat, lon)
    return {k: sampler.upsample(v) for k, v in out.items() if k in names}
