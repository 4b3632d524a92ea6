"""Offline geography and the import order cartopy needs.

Natural Earth shapefiles are read from ``CARTOPY_DATA_DIR`` (cartopy's own layout:
``shapefiles/natural_earth/{physical,cultural}/ne_{scale}_{name}.shp``). framecast never lets
cartopy download at run time: a missing file is a clear :class:`~framecast.errors.DataError`
telling the operator which file to preseed.

pyproj/cartopy must be imported before eccodes in one process, otherwise PROJ's database path
can end up unset; :func:`ensure_cartopy` is called by every module that needs both.
"""

from __future__ import annotations

import os
from pathlib import Path

from framecast.errors import DataError

_DEFAULT_CANDIDATES = (
    Path(__file__).resolve().parents[2].parent / "shared" / "cartopy-data",
)


def data_dir() -> Path | None:
    """The Natural Earth folder in use, or None when cartopy's default would be used."""
    env = os.environ.get("CARTOPY_DATA_DIR")
    if env:
        return Path(env)
    for cand in _DEFAULT_CANDIDATES:
        if cand.is_dir():
            return cand
    return None


def ensure_cartopy() -> None:
    """Import pyproj and cartopy first and point cartopy at the preseeded data folder."""
    import cartopy
    import pyproj  # noqa: F401  (import order matters, see module docstring)

    d = data_dir()
    if d is not None:
        os.environ.setdefault("CARTOPY_DATA_DIR", str(d))
        cartopy.config["data_dir"] = str(d)
        cartopy.config["pre_existing_data_dir"] = str(d)


def natural_earth_path(category: str, name: str, scale: str) -> Path:
    """Path of a preseeded Natural Earth shapefile; raises DataError instead of downloading."""
    ensure_cartopy()
    d = data_dir()
    if d is None:
        raise DataError(
            "CARTOPY_DATA_DIR is not set: point it at a folder preseeded with Natural Earth "
            "shapefiles (see README, 'Preseed geography')"
        )
    path = d / "shapefiles" / "natural_earth" / category / f"ne_{scale}_{name}.shp"
    if not path.is_file():
        raise DataError(
            f"Natural Earth file {path} is missing: preseed it (scale {scale!r}, "
            f"{category}/{name}); framecast does not download at run time"
        )
    return path
