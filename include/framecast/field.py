"""Grids and fields: the data objects passed from the dataset layer to the renderer.

A :class:`Field` is one 2-D (or unstructured 1-D) array for one variable at one step, with the
grid it lives on and its times. The renderer caches everything geometric per ``Grid.key`` so a
grid's coordinates are projected once per worker, never per frame.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np

from framecast.errors import DataError


@dataclass(frozen=True, eq=False)
class Grid:
    """Horizontal grid.

    ``regular``: ``lats`` (ny,) and ``lons`` (nx,) are the 1-D axes of a regular lat-lon grid
    (either direction; longitudes in [-180, 360)). ``unstructured``: ``lats`` and ``lons`` are
    per-point coordinates (n,), as for ICON's native icosahedral grid.
    """

    kind: Literal["regular", "unstructured"]
    lats: np.ndarray
    lons: np.ndarray
    _key: str = field(default="", repr=False)

    @property
    def key(self) -> str:
        """A stable digest of the coordinates, used to cache projections per grid."""
        if not self._key:
            h = hashlib.sha1(self.kind.encode())
            for a in (self.lats, self.lons):
                arr = np.ascontiguousarray(a, dtype=np.float64)
                h.update(str(arr.shape).encode())
                h.update(arr.tobytes())
            object.__setattr__(self, "_key", h.hexdigest()[:16])
        return self._key

    @property
    def shape(self) -> tuple[int, ...]:
        if self.kind == "regular":
            return (self.lats.size, self.lons.size)
        return (self.lats.size,)

    @property
    def is_global(self) -> bool:
        """True when a regular grid wraps around in longitude (0..360 or -180..180)."""
        if self.kind != "regular" or self.lons.size < 2:
            return False
        d = abs(float(self.lons[1] - self.lons[0]))
        span = abs(float(self.lons[-1] - self.lons[0])) + d
        return span >= 360.0 - 1e-6


# Unit conversions: (from, to) -> (scale, offset) with new = old * scale + offset.
_CONVERSIONS: dict[tuple[str, str], tuple[float, float]] = {
    ("K", "degC"): (1.0, -273.15),
    ("Pa", "hPa"): (0.01, 0.0),
    ("m s**-1", "km/h"): (3.6, 0.0),
    ("m s**-1", "kt"): (1.0 / 0.514444, 0.0),
    ("m s**-1", "m/s"): (1.0, 0.0),
    ("kg m**-2", "mm"): (1.0, 0.0),
    ("m", "mm"): (1000.0, 0.0),
    ("(0 - 1)", "%"): (100.0, 0.0),
    ("%", "%"): (1.0, 0.0),
    ("gpm", "dam"): (0.1, 0.0),
    ("m", "dam"): (0.1, 0.0),
    ("J kg**-1", "J/kg"): (1.0, 0.0),
    ("m", "cm"): (100.0, 0.0),
    ("s**-1", "1e-5 s**-1"): (1e5, 0.0),  # vorticity, divergence: the usual chart unit
}
_ALIASES = {"m/s": "m s**-1", "C": "degC", "°C": "degC", "kg m-2": "kg m**-2", "m s-1": "m s**-1",
            "J kg-1": "J kg**-1", "1": "(0 - 1)", "Fraction": "(0 - 1)"}


def _canon(unit: str) -> str:
    return _ALIASES.get(unit, unit)


def convert_units(values: np.ndarray, src: str, dst: str, *, what: str = "field") -> np.ndarray:
    """Convert ``values`` from unit ``src`` to ``dst``; DataError names both when unknown."""
    s, d = _canon(src), _canon(dst)
    if s == d:
        return values
    try:
        scale, offset = _CONVERSIONS[(s, d)]
    except KeyError:
        raise DataError(f"{what}: cannot convert units {src!r} to {dst!r}") from None
    return values * np.float32(scale) + np.float32(offset)


@dataclass
class Field:
    """One variable at one step on one grid."""

    name: str
    units: str
    values: np.ndarray
    grid: Grid
    run_time: datetime
    step: int
    valid_time: datetime
    attrs: dict[str, str] = field(default_factory=dict)

    def to(self, units: str | None) -> Field:
        """This field in ``units`` (None keeps the native unit)."""
        if not units or _canon(units) == _canon(self.units):
            return self
        vals = convert_units(self.values, self.units, units, what=f"field {self.name!r}")
        return Field(self.name, units, vals.astype(np.float32, copy=False), self.grid,
                     self.run_time, self.step, self.valid_time, dict(self.attrs))
