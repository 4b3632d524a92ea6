"""Sampling a source grid at fixed target points, with the geometry computed once.

The expensive part of drawing model data on a projected map is working out, for every output
pixel, where it falls on the model grid. That depends only on the grid and the map, so it is
done once per worker; each frame is then a handful of array gathers (:meth:`Sampler.sample`).

Regular lat-lon grids use bilinear interpolation (what contouring does between grid points);
unstructured grids (ICON's icosahedral cells) use the nearest cell centre via a k-d tree on the
unit sphere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framecast.errors import RenderError
from framecast.field import Grid


@dataclass
class Sampler:
    """Gathers field values at a fixed set of target points.

    ``valid`` marks targets inside the source grid's domain; :meth:`sample` returns NaN
    elsewhere. ``index``/``weights`` hold 4 neighbours for bilinear, 1 for nearest.
    """

    grid_key: str
    n_targets: int
    valid: np.ndarray  # (n_targets,) bool
    index: np.ndarray  # (k, n_valid) int64 flat indices into the source values
    weights: np.ndarray  # (k, n_valid) float32

    def sample(self, values: np.ndarray) -> np.ndarray:
        """Values at all targets as float32 (NaN outside the domain or where the source is NaN)."""
        flat = np.ravel(values)
        acc = flat.take(self.index[0]) * self.weights[0]
        for k in range(1, self.index.shape[0]):
            acc += flat.take(self.index[k]) * self.weights[k]
        out = np.full(self.n_targets, np.nan, dtype=np.float32)
        out[self.valid] = acc
        return out


def _regular(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> Sampler:
    lats = np.asarray(grid.lats, dtype=np.float64)
    lons = np.asarray(grid.lons, dtype=np.float64)
    ny, nx = lats.size, lons.size
    if ny < 2 or nx < 2:
        raise RenderError(f"grid {grid.key}: needs at least 2x2 points, got {ny}x{nx}")
    dlat = (lats[-1] - lats[0]) / (ny - 1)
    dlon = (lons[-1] - lons[0]) / (nx - 1)
    fy = (lat - lats[0]) / dlat
    rel = lon - lons[0]
    if grid.is_global:
        rel = np.mod(rel, 360.0)
    else:
        # Bring target longitudes into the grid's range (a grid may be 0..360 or -180..180).
        rel = np.where(rel < 0, rel + 360.0, rel)
        rel = np.where(rel > (nx - 1) * abs(dlon) + 1e-9, rel - 360.0, rel)
    fx = rel / dlon
    finite = np.isfinite(fx) & np.isfinite(fy)
    if grid.is_global:
        valid = finite & (fy >= 0) & (fy <= ny - 1)
    else:
        valid = finite & (fy >= 0) & (fy <= ny - 1) & (fx >= 0) & (fx <= nx - 1)
    fx, fy = fx[valid], fy[valid]
    x0 = np.floor(fx).astype(np.int64)
    y0 = np.floor(fy).astype(np.int64)
    wx = (fx - x0).astype(np.float32)
    wy = (fy - y0).astype(np.float32)
    y0 = np.clip(y0, 0, ny - 1)
    y1 = np.clip(y0 + 1, 0, ny - 1)
    if grid.is_global:
        x0 = np.mod(x0, nx)
        x1 = np.mod(x0 + 1, nx)
    else:
        x0 = np.clip(x0, 0, nx - 1)
        x1 = np.clip(x0 + 1, 0, nx - 1)
    index = np.stack([y0 * nx + x0, y0 * nx + x1, y1 * nx + x0, y1 * nx + x1])
    weights = np.stack([(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy])
    return Sampler(grid.key, lon.size, valid, index, weights.astype(np.float32))


def _unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lo, la = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def _unstructured(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> Sampler:
    from scipy.spatial import cKDTree

    finite = np.isfinite(lon) & np.isfinite(lat)
    tree = cKDTree(_unit_vectors(np.asarray(grid.lons), np.asarray(grid.lats)))
    _, idx = tree.query(_unit_vectors(lon[finite], lat[finite]), workers=1)
    index = idx.astype(np.int64)[None, :]
    weights = np.ones_like(index, dtype=np.float32)
    return Sampler(grid.key, lon.size, finite, index, weights)


def build_sampler(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> Sampler:
    """A sampler of ``grid`` at the target points ``lon``/``lat`` (1-D, degrees, NaN allowed)."""
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    if grid.kind == "regular":
        return _regular(grid, lon, lat)
    if grid.kind == "unstructured":
        return _unstructured(grid, lon, lat)
    raise RenderError(f"grid {grid.key}: unsupported grid kind {grid.kind!r}")
