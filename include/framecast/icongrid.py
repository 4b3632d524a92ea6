"""A true icosahedral triangulation of the sphere, like the native grid of DWD's ICON model.

ICON's global grid starts from an icosahedron whose 20 faces are split into ``n**2`` spherical
triangles (ICON calls the root division ``R{n}``, followed by bisections ``B{k}``). Data live at
the triangle (cell) centres, so a field is a 1-D array over cells, and a map needs the cell
centre coordinates (DWD's CLAT/CLON files) plus a triangulation or a remap. This module builds
that geometry in code so sample data and tests need no multi-gigabyte grid file.

Everything here is vectorised: a grid of ~80k cells is built in a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: Default root division: 20 * 48**2 = 46,080 cells, about 110 km spacing (tests stay fast).
DEFAULT_DIVISION = 48


@dataclass(frozen=True)
class IcosahedralGrid:
    """Cell centres (degrees) and the triangles' vertices of an icosahedral grid.

    ``clat``/``clon`` (n_cells,) are the cell centres; ``vertices`` (n_vertices, 3) unit vectors
    and ``cells`` (n_cells, 3) vertex indices describe each triangle (shared vertices are
    duplicated per face edge, which is harmless for plotting and remapping).
    """

    division: int
    clat: np.ndarray
    clon: np.ndarray
    vertices: np.ndarray
    cells: np.ndarray

    @property
    def n_cells(self) -> int:
        return int(self.clat.size)


def _icosahedron() -> tuple[np.ndarray, np.ndarray]:
    """The 12 unit vertices and 20 faces of a regular icosahedron (with vertices at the poles)."""
    upper = np.arctan(0.5)  # latitude of the two rings: ~26.57 deg
    verts = [(0.0, 0.0, 1.0)]
    for k in range(5):
        lon = np.deg2rad(72.0 * k)
        verts.append((np.cos(upper) * np.cos(lon), np.cos(upper) * np.sin(lon), np.sin(upper)))
    for k in range(5):
        lon = np.deg2rad(72.0 * k + 36.0)
        verts.append((np.cos(upper) * np.cos(lon), np.cos(upper) * np.sin(lon), -np.sin(upper)))
    verts.append((0.0, 0.0, -1.0))
    faces = []
    for k in range(5):
        a, b = 1 + k, 1 + (k + 1) % 5
        c, d = 6 + k, 6 + (k + 1) % 5
        faces += [(0, a, b), (a, c, b), (b, c, d), (11, d, c)]
    return np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int64)


def _face_lattice(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Barycentric lattice points of one face split into n**2 triangles, and those triangles.

    Returns ``bary`` (m, 3) weights of the face's corners and ``tris`` (n**2, 3) indices into
    ``bary``: n(n+1)/2 upward triangles and n(n-1)/2 downward ones.
    """
    ij = [(i, j) for i in range(n + 1) for j in range(n + 1 - i)]
    index = {p: k for k, p in enumerate(ij)}
    bary = np.array([(n - i - j, i, j) for i, j in ij], dtype=np.float64) / n
    tris = []
    for i in range(n):
        for j in range(n - i):
            tris.append((index[(i, j)], index[(i + 1, j)], index[(i, j + 1)]))
            if j < n - i - 1:
                tris.append((index[(i + 1, j)], index[(i + 1, j + 1)], index[(i, j + 1)]))
    return bary, np.asarray(tris, dtype=np.int64)


@lru_cache(maxsize=4)
def icosahedral_grid(division: int = DEFAULT_DIVISION) -> IcosahedralGrid:
    """The icosahedral grid with ``20 * division**2`` triangular cells.

    Cached because sample generation and tests ask for the same grid many times.
    """
    if division < 1:
        raise ValueError(f"icosahedral division must be >= 1, got {division}")
    ico_v, ico_f = _icosahedron()
    bary, tris = _face_lattice(division)
    # Lattice points of every face: (20, m, 3) -> unit vectors on the sphere.
    pts = np.einsum("mk,fkc->fmc", bary, ico_v[ico_f])
    pts /= np.linalg.norm(pts, axis=-1, keepdims=True)
    m = bary.shape[0]
    vertices = pts.reshape(-1, 3)
    cells = (tris[None, :, :] + (np.arange(20) * m)[:, None, None]).reshape(-1, 3)
    centre = vertices[cells].sum(axis=1)
    centre /= np.linalg.norm(centre, axis=-1, keepdims=True)
    clat = np.rad2deg(np.arcsin(np.clip(centre[:, 2], -1.0, 1.0)))
    clon = np.rad2deg(np.arctan2(centre[:, 1], centre[:, 0]))
    return IcosahedralGrid(division, clat, clon, vertices, cells)


def division_for_cells(n_cells: int) -> int:
    """The root division whose grid has exactly ``n_cells`` cells (ValueError otherwise)."""
    d = int(round(np.sqrt(n_cells / 20.0)))
    if d < 1 or 20 * d * d != n_cells:
        raise ValueError(f"{n_cells} cells is not 20*n**2 for an icosahedral grid")
    return d
