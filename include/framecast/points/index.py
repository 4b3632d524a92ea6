"""Which grid values make each place's value: computed once per grid, used for every field.

Regular lat-lon grids (ICON-EU, GFS): the nearest grid point, or the four surrounding points
with bilinear weights. ICON's icosahedral grid: the nearest cell centre (great-circle
distance, via a k-d tree on unit vectors). A place outside a regional grid is an error naming
the place and the domain; nothing is extrapolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from framecast.field import Grid
from framecast.points.places import Place, PlaceError

METHODS = ("nearest", "bilinear")


@dataclass(frozen=True)
class PointIndex:
    """Flat grid indexes (n_places, k) and weights (n_places, k) of each place's value.

    ``unique`` is the sorted set of flat indexes to read from a message; ``take`` maps each
    (place, k) to its position in ``unique``. ``grid_lat``/``grid_lon`` are the coordinates of
    each place's nearest grid point (reported with the data).
    """

    places: tuple[Place, ...]
    method: str
    indexes: np.ndarray
    weights: np.ndarray
    unique: np.ndarray
    take: np.ndarray
    grid_lat: np.ndarray
    grid_lon: np.ndarray
    n_points: int

    def combine(self, values_at_unique: np.ndarray) -> np.ndarray:
        """Per-place values (n_places,) from the values at :attr:`unique`."""
        vals = np.asarray(values_at_unique, dtype=np.float64)[self.take]
        return (vals * self.weights).sum(axis=1)

    def sample(self, field_values: np.ndarray) -> np.ndarray:
        """Per-place values from a whole decoded field (any shape, flattened in GRIB order)."""
        return self.combine(np.asarray(field_values).ravel()[self.unique])


def _domain_text(grid: Grid) -> str:
    la, lo = grid.lats, grid.lons
    return (f"{min(la[0], la[-1]):.2f}..{max(la[0], la[-1]):.2f} N, "
            f"{min(lo[0], lo[-1]):.2f}..{max(lo[0], lo[-1]):.2f} E")


def _axis(coord: float, axis: np.ndarray, wrap: bool) -> tuple[float, float]:
    """Fractional index of ``coord`` along a uniform ``axis`` and the axis step."""
    step = float(axis[1] - axis[0])
    return (coord - float(axis[0])) / step, step


def _regular(grid: Grid, places: Sequence[Place], method: str, model: str
             ) -> tuple[np.ndarray, np.ndarray]:
    lats, lons = np.asarray(grid.lats, float), np.asarray(grid.lons, float)
    ny, nx = lats.size, lons.size
    wrap = grid.is_global
    rows_idx, rows_w = [], []
    for p in places:
        lon = float(lons[0]) + (p.lon - float(lons[0])) % 360.0  # into the grid's range
        fy, _ = _axis(p.lat, lats, False)
        fx, _ = _axis(lon, lons, wrap)
        tol = 0.5
        inside_y = -tol <= fy <= ny - 1 + tol
        inside_x = wrap or -tol <= fx <= nx - 1 + tol
        if not (inside_y and inside_x):
            raise PlaceError(f"place {p.name!r} ({p.lat:.3f} N, {p.lon:.3f} E) is outside the "
                             f"{model} domain ({_domain_text(grid)})")
        if method == "nearest":
            iy = int(np.clip(np.rint(fy), 0, ny - 1))
            ix = int(np.rint(fx)) % nx if wrap else int(np.clip(np.rint(fx), 0, nx - 1))
            rows_idx.append([iy * nx + ix] * 4)
            rows_w.append([1.0, 0.0, 0.0, 0.0])
            continue
        y0 = int(np.clip(np.floor(fy), 0, ny - 2))
        wy = float(np.clip(fy - y0, 0.0, 1.0))
        if wrap:
            x0 = int(np.floor(fx)) % nx
            x1 = (x0 + 1) % nx
            wx = float(fx - np.floor(fx))
        else:
            x0 = int(np.clip(np.floor(fx), 0, nx - 2))
            x1 = x0 + 1
            wx = float(np.clip(fx - x0, 0.0, 1.0))
        rows_idx.append([y0 * nx + x0, y0 * nx + x1, (y0 + 1) * nx + x0, (y0 + 1) * nx + x1])
        rows_w.append([(1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx])
    return np.asarray(rows_idx, dtype=np.int64), np.asarray(rows_w, dtype=np.float64)


def _unit(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)


def _unstructured(grid: Grid, places: Sequence[Place], model: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    from scipy.spatial import cKDTree

    cells = _unit(np.asarray(grid.lats, float), np.asarray(grid.lons, float))
    tree = cKDTree(cells)
    pts = _unit(np.array([p.lat for p in places]), np.array([p.lon for p in places]))
    dist, idx = tree.query(pts, k=1)
    # A cell's centre is never farther than a few spacings from a point inside the grid;
    # farther means a regional grid that does not cover the place.
    spacing = np.sqrt(4.0 * np.pi / cells.shape[0])  # chord of a cell's mean size
    for p, d in zip(places, dist, strict=True):
        if d > 3.0 * spacing:
            raise PlaceError(f"place {p.name!r} ({p.lat:.3f} N, {p.lon:.3f} E) is outside the "
                             f"{model} grid (nearest cell {np.rad2deg(d):.1f} deg away)")
    idx = np.asarray(idx, dtype=np.int64)[:, None]
    return np.repeat(idx, 4, axis=1), np.tile([1.0, 0.0, 0.0, 0.0], (len(places), 1))


def point_index(grid: Grid, places: Sequence[Place], method: str = "nearest",
                model: str = "model") -> PointIndex:
    """The :class:`PointIndex` of ``places`` on ``grid`` (PlaceError for a place outside).

    ICON's icosahedral grid supports ``nearest`` only (a cell's value is its area mean).
    """
    if method not in METHODS:
        raise PlaceError(f"interpolation {method!r}: expected one of {', '.join(METHODS)}")
    if not places:
        raise PlaceError("no places")
    if grid.kind == "regular":
        idx, w = _regular(grid, places, method, model)
    else:
        idx, w = _unstructured(grid, places, model)
        method = "nearest"
    unique, inverse = np.unique(idx.ravel(), return_inverse=True)
    take = inverse.reshape(idx.shape)
    near = idx[np.arange(len(places)), np.argmax(w, axis=1)]
    if grid.kind == "regular":
        nx = grid.lons.size
        glat = np.asarray(grid.lats, float)[near // nx]
        glon = np.asarray(grid.lons, float)[near % nx]
    else:
        glat = np.asarray(grid.lats, float)[near]
        glon = np.asarray(grid.lons, float)[near]
    glon = (glon + 180.0) % 360.0 - 180.0
    return PointIndex(tuple(places), method, idx, w, unique, take, glat, glon,
                      int(np.prod(grid.shape)))
