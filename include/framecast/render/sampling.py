"""Sampling a source grid at fixed target points, with the geometry computed once.

The expensive part of drawing model data on a projected map is working out, for every output
pixel, where it falls on the model grid. That depends only on the grid and the map, so it is
done once per worker; each frame is then a handful of array gathers (:meth:`Sampler.sample`).

Regular lat-lon grids use bilinear interpolation (what contouring does between grid points);
unstructured grids (ICON's icosahedral cells, and any grid given as per-point coordinates)
use linear (barycentric) interpolation on a Delaunay triangulation of the cell centres, so
fills have smooth edges and isobars do not zig-zag at cell scale. Both are 3-4 gathers per
target point per frame; the triangulation is computed once per grid and region.

Triangulating all 2.9 million cells of ICON's R3B7 grid would take far longer than a worker
should spend on set-up, and most cells would never be read: only the cells nearest to the
map's target points are triangulated (the three nearest of each where targets are denser
than cells, as on a zoomed region; the nearest of each where a target covers several cells,
as on a global map, where the result is the linear interpolation of the cells the pixels
see). Regional maps are triangulated in a gnomonic projection centred on the region (great
circles are straight lines there, so the triangles are the spherical ones); a global map in
longitude/latitude, in overlapping longitude sectors (the date line is a sector edge). Targets
outside the triangulation (beyond the outermost cell centres near the poles) take the
nearest cell. ``method="nearest"`` keeps the nearest-cell sampling for comparison.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
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
    index: np.ndarray  # (k, n_valid) flat indices into the source values (int32)
    weights: np.ndarray  # (k, n_valid) float32

    def __post_init__(self) -> None:
        # Each frame gathers k values per target: 32-bit indices and single-precision values
        # halve the memory traffic of those gathers, which dominate a frame's sampling time.
        # float32 keeps 7 significant digits, far below a chart's contour or colour steps.
        if self.index.size and int(self.index.max()) >= 2**31:
            raise RenderError(f"grid {self.grid_key}: more than 2**31 points")
        self.index = np.ascontiguousarray(self.index, dtype=np.int32)
        self.weights = np.ascontiguousarray(self.weights, dtype=np.float32)

    def sample(self, values: np.ndarray) -> np.ndarray:
        """Values at all targets as float32 (NaN outside the domain or where the source is NaN)."""
        flat = np.ravel(values).astype(np.float32, copy=False)
        acc = flat.take(self.index[0])
        acc *= self.weights[0]
        if self.index.shape[0] > 1:
            tmp = np.empty_like(acc)
            for k in range(1, self.index.shape[0]):
                flat.take(self.index[k], out=tmp)
                tmp *= self.weights[k]
                acc += tmp
        if acc.size == self.n_targets:
            return acc
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


_TREES: dict[str, object] = {}


def _cell_tree(grid: Grid):
    """k-d tree of the cell centres on the unit sphere, one per grid (kept for the worker)."""
    from scipy.spatial import cKDTree

    tree = _TREES.get(grid.key)
    if tree is None:
        tree = cKDTree(_unit_vectors(np.asarray(grid.lons, dtype=np.float64),
                                     np.asarray(grid.lats, dtype=np.float64)),
                       balanced_tree=False, compact_nodes=False)
        _TREES.clear()  # one grid per worker at a time: do not hold several big trees
        _TREES[grid.key] = tree
    return tree


def _unstructured_nearest(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> Sampler:
    finite = np.isfinite(lon) & np.isfinite(lat)
    _, idx = _cell_tree(grid).query(_unit_vectors(lon[finite], lat[finite]), workers=1)
    index = idx.astype(np.int64)[None, :]
    weights = np.ones_like(index, dtype=np.float32)
    return Sampler(grid.key, lon.size, finite, index, weights)


#: Regions whose targets lie within this angle (degrees) of their centre are triangulated in
#: a gnomonic projection; wider ones (global maps) in longitude/latitude.
GNOMONIC_MAX_DEG = 60.0
#: Global maps are triangulated in this many longitude sectors, each with the cells within
#: ``WRAP_DEG`` beyond its edges (the date line is just another edge). Delaunay triangles are
#: local, so a sector's inner triangles are those of one whole-band triangulation, while the
#: peak memory is a sector's (qhull takes about 700 bytes per point: R3B7's global map sees
#: 390,000 cells, 270 MB in one piece).
SECTORS = 4
#: Least overlap (degrees of longitude) of the global sectors.
WRAP_DEG = 5.0


def _gnomonic(xyz: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Gnomonic plane coordinates of unit vectors around ``centre`` (all within 90 deg)."""
    ref = np.array([0.0, 0.0, 1.0]) if abs(centre[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(ref, centre)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(centre, e1)
    d = xyz @ centre
    return np.column_stack([(xyz @ e1) / d, (xyz @ e2) / d])


#: Simplices around a vertex tried per target before falling back to a walk (Delaunay
#: vertices of near-regular cell centres have about 6).
MAX_STAR = 12
#: Targets handled per vectorised block (bounds the temporary arrays to a few tens of MB).
BLOCK = 16384


def _transforms(points: np.ndarray, simplices: np.ndarray) -> np.ndarray:
    """Barycentric transforms (m, 3, 2) in scipy's layout: ``T @ (x - r)`` gives the first
    two weights. Closed-form 2x2 inverses: scipy's ``Delaunay.transform`` does a LAPACK
    call per simplex, tens of seconds for a million triangles."""
    r = points[simplices[:, 2]]
    a = points[simplices[:, 0]] - r
    b = points[simplices[:, 1]] - r
    det = a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / det
    inv[~np.isfinite(inv) | (np.abs(det) < 1e-300)] = np.nan  # degenerate: never a hit
    out = np.empty((simplices.shape[0], 3, 2))
    out[:, 0, 0] = b[:, 1] * inv
    out[:, 0, 1] = -b[:, 0] * inv
    out[:, 1, 0] = -a[:, 1] * inv
    out[:, 1, 1] = a[:, 0] * inv
    out[:, 2, :] = r
    return out


def _weights(trans: np.ndarray, cand: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Barycentric weights (m, k, 3) of points (m, 2) in candidate simplices (m, k)."""
    t = trans[cand]
    d = pts[:, None, :] - t[:, :, 2, :]
    w2 = np.einsum("mkij,mkj->mki", t[:, :, :2, :], d)
    return np.concatenate([w2, 1.0 - w2.sum(axis=2, keepdims=True)], axis=2)


def _locate(tri, tpts: np.ndarray, start: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Containing simplex and barycentric weights of each target point.

    ``start`` is a triangulation vertex near each target (its nearest cell). The simplex
    holding a point almost always has that vertex, so only the few simplices around it are
    tested, vectorised; the rest are tested against the simplices with the nearest
    centroids. (scipy's ``find_simplex`` walks from one fixed simplex: about the square
    root of the triangulation size per point.) Points found in none get simplex -1.
    """
    from scipy.spatial import cKDTree

    simplices = tri.simplices
    trans = _transforms(tri.points, simplices)
    nverts = tri.points.shape[0]
    vert = simplices.ravel()
    order = np.argsort(vert, kind="stable").astype(np.int32)
    counts = np.bincount(vert, minlength=nverts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    star_of = (order // 3).astype(np.int32)  # the simplex of each sorted corner
    del order
    n = tpts.shape[0]
    found = np.full(n, -1, np.int64)
    bary = np.zeros((n, 3), np.float64)
    slot = np.arange(MAX_STAR)
    for a in range(0, n, BLOCK):
        b = min(n, a + BLOCK)
        v = start[a:b]
        cnt = np.minimum(counts[v], MAX_STAR)
        pos = first[v][:, None] + slot[None, :]
        valid = slot[None, :] < cnt[:, None]
        cand = np.where(valid, star_of[np.minimum(pos, star_of.size - 1)], 0)
        w = _weights(trans, cand, tpts[a:b])
        ok = valid & (w.min(axis=2) >= -1e-9)
        hit = ok.any(axis=1)
        k = np.argmax(ok, axis=1)
        rows = np.flatnonzero(hit)
        found[a + rows] = cand[rows, k[rows]]
        bary[a + rows] = w[rows, k[rows]]
    rest = np.flatnonzero(found < 0)
    if rest.size:
        centroids = tri.points[simplices].mean(axis=1)
        k = min(MAX_STAR * 2, simplices.shape[0])
        _, cand = cKDTree(centroids).query(tpts[rest], k=k, workers=1)
        cand = cand.reshape(rest.size, k)
        w = _weights(trans, cand, tpts[rest])
        ok = w.min(axis=2) >= -1e-9
        hit = ok.any(axis=1)
        j = np.argmax(ok, axis=1)
        rows = np.flatnonzero(hit)
        found[rest[rows]] = cand[rows, j[rows]]
        bary[rest[rows]] = w[rows, j[rows]]
    return found, bary


#: Triangulations up to this many triangles locate points with matplotlib's trapezoid map
#: (O(log n) per point, C++); larger ones (global maps of fine grids, where pixels are
#: sparser than cells) search the triangles around each pixel's nearest cell instead.
TRAPEZOID_MAX = 50_000


def _locate_trapezoid(tri, tpts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Containing simplex (-1 outside) and barycentric weights, via a trapezoid map."""
    from matplotlib.tri import Triangulation

    t = Triangulation(tri.points[:, 0], tri.points[:, 1], triangles=tri.simplices)
    found = np.asarray(t.get_trifinder()(tpts[:, 0], tpts[:, 1]), dtype=np.int64)
    bary = np.zeros((tpts.shape[0], 3))
    inside = found >= 0
    trans = _transforms(tri.points, tri.simplices[found[inside]])
    w2 = np.einsum("mij,mj->mi", trans[:, :2, :], tpts[inside] - trans[:, 2, :])
    bary[inside] = np.column_stack([w2, 1.0 - w2.sum(axis=1)])
    return found, bary


#: Global maps: targets poleward of this latitude are triangulated in a gnomonic projection
#: around the pole (longitude/latitude triangles degenerate there).
POLAR_LAT = 60.0


def _zone(index: np.ndarray, weights: np.ndarray, rows: np.ndarray, tpts: np.ndarray,
          pts: np.ndarray, owner: np.ndarray, nearest: np.ndarray) -> None:
    """Triangulate ``pts`` (cells ``owner``) and fill the weights of targets ``rows``."""
    from scipy.spatial import Delaunay

    if rows.size == 0 or owner.size < 3:
        return
    tri = Delaunay(pts)
    if tri.simplices.shape[0] <= TRAPEZOID_MAX:
        simplex, bary = _locate_trapezoid(tri, tpts)
    else:
        position = np.zeros(int(max(owner.max(), nearest.max())) + 1, np.int64)
        position[owner[::-1]] = np.arange(owner.size)[::-1]  # first copy of a cell wins
        start = position[nearest[rows]]
        start = np.where(owner[start] == nearest[rows], start, 0)
        simplex, bary = _locate(tri, tpts, start)
    inside = simplex >= 0
    hit = rows[inside]
    b = np.clip(bary[inside], 0.0, 1.0)
    b /= b.sum(axis=1, keepdims=True)
    index[:, hit] = owner[tri.simplices[simplex[inside]]].T
    weights[:, hit] = b.T.astype(np.float32)


#: The last linear sampler per grid, with its targets sorted for lookup: a map's contour
#: grid (every 2nd pixel) is a subset of its fill grid, so its weights are a selection.
_LAST: dict[str, tuple[np.ndarray, np.ndarray, Sampler]] = {}


def _target_keys(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return (np.ascontiguousarray(np.column_stack([lon, lat]))
            .view(np.dtype((np.void, 16))).ravel())


def _reuse(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> Sampler | None:
    """A sampler selected from the previous one when every target is one of its targets."""
    last = _LAST.get(grid.key)
    if last is None:
        return None
    keys, order, prev = last
    finite = np.isfinite(lon) & np.isfinite(lat)
    want = _target_keys(lon[finite], lat[finite])
    pos = np.searchsorted(keys, want)
    pos = np.minimum(pos, keys.size - 1)
    if keys.size == 0 or not np.array_equal(keys[pos], want):
        return None
    rows = order[pos]  # rows of the previous sampler's valid targets
    return Sampler(grid.key, lon.size, finite, prev.index[:, rows].copy(),
                   prev.weights[:, rows].copy())


def _remember(grid: Grid, lon: np.ndarray, lat: np.ndarray, sampler: Sampler) -> None:
    keys = _target_keys(lon[sampler.valid], lat[sampler.valid])
    order = np.argsort(keys, kind="stable")
    _LAST.clear()
    _LAST[grid.key] = (keys[order], order, sampler)


def _unstructured_linear(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> Sampler:
    reused = _reuse(grid, lon, lat)
    if reused is not None:
        return reused
    sampler = _triangulated(grid, lon, lat)
    _remember(grid, lon, lat, sampler)
    return sampler


def _triangulated(grid: Grid, lon: np.ndarray, lat: np.ndarray) -> Sampler:
    finite = np.isfinite(lon) & np.isfinite(lat)
    tlon, tlat = lon[finite], lat[finite]
    n = tlon.size
    if n == 0:
        return Sampler(grid.key, lon.size, finite, np.zeros((1, 0), np.int64),
                       np.ones((1, 0), np.float32))
    txyz = _unit_vectors(tlon, tlat)
    tree = _cell_tree(grid)
    _, nearest = tree.query(txyz, k=1, workers=2)
    nearest = nearest.astype(np.int64)
    cells_seen = np.unique(nearest)
    if cells_seen.size * 2 < n:
        # Targets denser than cells (a zoomed region): every cell near the map, including
        # those just beyond its edges, so edge pixels lie inside the triangulation.
        _, near3 = tree.query(txyz, k=3, workers=2)
        subset = np.unique(near3)
    else:
        subset = cells_seen
    # The tree (about 250 MB for R3B7) is not needed while triangulating: free it first so
    # the worker's peak is the larger of the two phases, not their sum.
    del tree
    _TREES.pop(grid.key, None)
    clon = np.asarray(grid.lons, dtype=np.float64)[subset]
    clat = np.asarray(grid.lats, dtype=np.float64)[subset]
    cxyz = _unit_vectors(clon, clat)
    index = np.empty((3, n), np.int64)
    weights = np.zeros((3, n), np.float32)
    index[:] = nearest  # targets outside every triangulation: the nearest cell
    weights[0] = 1.0
    centre = txyz.mean(axis=0)
    norm = np.linalg.norm(centre)
    spread = 180.0
    if norm > 1e-6:
        centre = centre / norm
        spread = float(np.degrees(np.arccos(np.clip((txyz @ centre).min(), -1.0, 1.0))))
    if spread <= GNOMONIC_MAX_DEG:
        keep = cxyz @ centre > np.cos(np.radians(min(89.0, spread + 10.0)))
        _zone(index, weights, np.arange(n), _gnomonic(txyz, centre),
              _gnomonic(cxyz[keep], centre), subset[keep], nearest)
        return Sampler(grid.key, lon.size, finite, index, weights)
    # Global: longitude/latitude between the polar circles, in overlapping longitude sectors.
    rows = np.flatnonzero(np.abs(tlat) <= POLAR_LAT)
    band = np.abs(clat) <= POLAR_LAT + 10.0
    blon, blat, bown = clon[band], clat[band], subset[band]
    width = 360.0 / SECTORS
    # Overlap: at least WRAP_DEG, and three cell spacings on coarse grids (41,253 square
    # degrees over the cells), so every target near an edge has its whole triangle.
    margin = max(WRAP_DEG, 3.0 * float(np.sqrt(41253.0 / max(np.size(grid.lons), 1))))
    sector = np.minimum((((tlon[rows] + 180.0) % 360.0) // width).astype(np.int64), SECTORS - 1)

    def triangulate_sector(k: int) -> None:
        centre_lon = -180.0 + (k + 0.5) * width
        mine = rows[sector == k]
        rel = (blon - centre_lon + 180.0) % 360.0 - 180.0  # continuous across the date line
        near = np.abs(rel) <= width / 2 + margin
        trel = (tlon[mine] - centre_lon + 180.0) % 360.0 - 180.0
        _zone(index, weights, mine, np.column_stack([trel, tlat[mine]]),
              np.column_stack([rel[near], blat[near]]), bown[near], nearest)

    def triangulate_cap(sign: float) -> None:  # gnomonic around the pole
        pole = np.array([0.0, 0.0, sign])
        polar = np.flatnonzero(sign * tlat > POLAR_LAT)
        cap = sign * clat > POLAR_LAT - 10.0
        _zone(index, weights, polar, _gnomonic(txyz[polar], pole), _gnomonic(cxyz[cap], pole),
              subset[cap], nearest)

    # qhull releases the GIL: two zones at a time (disjoint targets, so disjoint writes).
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(triangulate_sector, k) for k in range(SECTORS)]
        jobs += [pool.submit(triangulate_cap, sign) for sign in (1.0, -1.0)]
        for job in jobs:
            job.result()
    return Sampler(grid.key, lon.size, finite, index, weights)


#: Sampling methods for unstructured grids.
METHODS = ("linear", "nearest")


def build_sampler(grid: Grid, lon: np.ndarray, lat: np.ndarray,
                  method: str = "linear") -> Sampler:
    """A sampler of ``grid`` at the target points ``lon``/``lat`` (1-D, degrees, NaN allowed).

    ``method`` applies to unstructured grids: ``linear`` (barycentric on the triangulated
    cell centres, the default) or ``nearest`` (the nearest cell centre).
    """
    if method not in METHODS:
        raise RenderError(f"unknown sampling method {method!r}; choose from {METHODS}")
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    if grid.kind == "regular":
        return _regular(grid, lon, lat)
    if grid.kind == "unstructured":
        if method == "nearest":
            return _unstructured_nearest(grid, lon, lat)
        return _unstructured_linear(grid, lon, lat)
    raise RenderError(f"grid {grid.key}: unsupported grid kind {grid.kind!r}")
