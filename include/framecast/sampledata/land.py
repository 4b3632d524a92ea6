"""Land or sea at arbitrary points, from the preseeded Natural Earth land polygons (110m).

The sample weather uses it for the contrasts a map reader expects: larger diurnal cycle and
rougher (slower, gustier) winds over land, relatively warm seas in the cold season, heights
of terrain only on land. 110m is plenty: the weather is evaluated on a coarse grid anyway.
Without the shapefile (no preseeded ``CARTOPY_DATA_DIR``) every point counts as sea; nothing
is downloaded.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from framecast.errors import DataError
from framecast.geo import natural_earth_path


@lru_cache(maxsize=1)
def _land_geometry():
    """The prepared union of Natural Earth land polygons, or None when not preseeded."""
    try:
        path = natural_earth_path("physical", "land", "110m")
    except DataError:
        return None
    import shapely
    from cartopy.io import shapereader

    land = shapely.union_all(list(shapereader.Reader(str(path)).geometries()))
    shapely.prepare(land)
    return land


def land_mask(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """1.0 over land, 0.0 over sea (float64, same shape as ``lat``)."""
    land = _land_geometry()
    if land is None:
        return np.zeros_like(lat, dtype=np.float64)
    import shapely

    wrapped = (np.asarray(lon) + 180.0) % 360.0 - 180.0
    return shapely.contains_xy(land, wrapped, np.asarray(lat)).astype(np.float64)
