"""Independent reference values: ecCodes reading GRIB files directly, nearest point by distance.

No framecast code is used here: messages are found by iterating over files with
``codes_grib_new_from_file`` and matching shortName/typeOfLevel/level/step; grid coordinates
come from ecCodes' own ``latitudes``/``longitudes`` (regular grids) or from the CLAT/CLON files
(ICON), and the nearest point is the minimum great-circle distance over the whole grid.
"""

from __future__ import annotations

from pathlib import Path

import eccodes
import numpy as np


def messages(path: Path):
    with open(path, "rb") as fh:
        while True:
            h = eccodes.codes_grib_new_from_file(fh)
            if h is None:
                return
            try:
                yield h
            finally:
                eccodes.codes_release(h)


def read(files: list[Path], short_name: str, step: int, level: int | None = None,
         type_of_level: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, lats, lons) of the first message matching; lats/lons None for unstructured."""
    for path in files:
        for h in messages(path):
            if eccodes.codes_get(h, "shortName") != short_name:
                continue
            if int(eccodes.codes_get(h, "endStep")) != step:
                continue
            if level is not None and int(eccodes.codes_get(h, "level")) != level:
                continue
            if type_of_level and eccodes.codes_get(h, "typeOfLevel") != type_of_level:
                continue
            vals = eccodes.codes_get_values(h)
            if eccodes.codes_get(h, "gridType") == "unstructured_grid":
                return vals, None, None
            return (vals, eccodes.codes_get_array(h, "latitudes"),
                    eccodes.codes_get_array(h, "longitudes"))
    raise LookupError(f"{short_name} level {level} step {step} not in {len(files)} files")


def nearest(lats: np.ndarray, lons: np.ndarray, lat: float, lon: float) -> int:
    """Index of the grid point with the smallest great-circle distance to (lat, lon)."""
    la1, lo1 = np.deg2rad(lat), np.deg2rad(lon)
    la2, lo2 = np.deg2rad(lats), np.deg2rad(lons)
    a = (np.sin((la2 - la1) / 2) ** 2
         + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2)
    return int(np.argmin(a))


def icon_coordinates(root: Path) -> tuple[np.ndarray, np.ndarray]:
    out = []
    for name in ("clat", "clon"):
        (path,) = sorted(root.rglob(f"*time-invariant*_{name.upper()}.grib2"))
        (vals,) = [eccodes.codes_get_values(h) for h in messages(path)]
        out.append(vals)
    return out[0], out[1]
