"""GRIB test files written with ecCodes: editions, scanning modes, bitmaps, times, grids.

Each helper returns the bytes of one complete message; tests concatenate them into files.
Values are given in geographic order (rows south to north, columns west to east) and are
written in the message's own scanning order, so a reader that ignores the scanning mode
puts features in the wrong place.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from framecast.dataset.grib import eccodes


def regular(values: np.ndarray, lats: np.ndarray, lons: np.ndarray, *, edition: int = 2,
            short_name: str = "2t", type_of_level: str | None = None, level: int | None = None,
            run: datetime, step: int = 0, centre: str = "ecmf", north_first: bool = True,
            missing: np.ndarray | None = None) -> bytes:
    """A regular lat-lon message; ``lats`` ascending (south to north), ``lons`` ascending.

    ``north_first`` is scanning mode 0 (rows north to south, as ECMWF/NCEP); False is
    scanning mode 64 (jScansPositively, rows south to north, as DWD). ``missing`` marks
    points written as missing through a bitmap.
    """
    sample = "regular_ll_sfc_grib2" if edition == 2 else "regular_ll_sfc_grib1"
    h = eccodes.codes_grib_new_from_samples(sample)
    try:
        eccodes.codes_set(h, "centre", centre)
        rows = values[::-1] if north_first else values
        la = lats[::-1] if north_first else lats
        keys = {"Ni": lons.size, "Nj": lats.size,
                "latitudeOfFirstGridPointInDegrees": float(la[0]),
                "latitudeOfLastGridPointInDegrees": float(la[-1]),
                "longitudeOfFirstGridPointInDegrees": float(lons[0]) % 360.0,
                "longitudeOfLastGridPointInDegrees": float(lons[-1]) % 360.0,
                "iDirectionIncrementInDegrees": float(abs(lons[1] - lons[0])),
                "jDirectionIncrementInDegrees": float(abs(lats[1] - lats[0])),
                "jScansPositively": 0 if north_first else 1}
        for k, v in keys.items():
            eccodes.codes_set(h, k, v)
        _identity(h, short_name, type_of_level, level, run, step)
        flat = np.asarray(rows, dtype=np.float64).ravel().copy()
        if missing is not None:
            m = (missing[::-1] if north_first else missing).ravel()
            eccodes.codes_set(h, "bitmapPresent", 1)
            eccodes.codes_set(h, "missingValue", 9999.0)
            flat[m] = 9999.0
        eccodes.codes_set(h, "bitsPerValue", 16)
        eccodes.codes_set_values(h, flat)
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


def _identity(h, short_name: str, type_of_level: str | None, level: int | None,
              run: datetime, step: int) -> None:
    if type_of_level is not None:
        eccodes.codes_set(h, "typeOfLevel", type_of_level)
    if level is not None:
        eccodes.codes_set(h, "level", level)
    eccodes.codes_set_string(h, "shortName", short_name)
    eccodes.codes_set(h, "dataDate", int(run.strftime("%Y%m%d")))
    eccodes.codes_set(h, "dataTime", run.hour * 100)
    eccodes.codes_set(h, "stepUnits", 1)
    eccodes.codes_set(h, "step", step)


def lambert(nx: int, ny: int, *, run: datetime, short_name: str = "2t",
            fn=None) -> bytes:
    """A GRIB2 Lambert conformal message over central Europe (10 km); ``fn(lat, lon)`` gives
    values (default a warm spot at 48N 11E)."""
    h = eccodes.codes_grib_new_from_samples("GRIB2")
    try:
        eccodes.codes_set(h, "centre", "lfpw")
        eccodes.codes_set(h, "gridDefinitionTemplateNumber", 30)
        for k, v in {"Nx": nx, "Ny": ny, "latitudeOfFirstGridPointInDegrees": 43.0,
                     "longitudeOfFirstGridPointInDegrees": 2.0, "LaDInDegrees": 48.0,
                     "LoVInDegrees": 11.0, "Latin1InDegrees": 48.0, "Latin2InDegrees": 48.0,
                     "DxInMetres": 10000, "DyInMetres": 10000,
                     "latitudeOfSouthernPoleInDegrees": -90.0,
                     "longitudeOfSouthernPoleInDegrees": 0.0}.items():
            eccodes.codes_set(h, k, v)
        eccodes.codes_set(h, "iScansNegatively", 0)
        eccodes.codes_set(h, "jScansPositively", 1)
        _identity(h, short_name, "heightAboveGround", 2, run, 0)
        eccodes.codes_set(h, "bitsPerValue", 16)
        eccodes.codes_set_values(h, np.zeros(nx * ny))
        lats = eccodes.codes_get_array(h, "latitudes")
        lons = eccodes.codes_get_array(h, "longitudes")
        lons = (lons + 180.0) % 360.0 - 180.0
        vals = fn(lats, lons) if fn is not None else warm_spot(lats, lons)
        eccodes.codes_set_values(h, np.asarray(vals, dtype=np.float64))
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


def warm_spot(lat, lon, lat0: float = 48.0, lon0: float = 11.0, radius: float = 2.0):
    """280 K with a 30 K Gaussian warm spot at (lat0, lon0)."""
    d2 = (np.asarray(lat) - lat0) ** 2 + ((np.asarray(lon) - lon0) * np.cos(np.radians(lat0))) ** 2
    return 280.0 + 30.0 * np.exp(-d2 / (2 * radius ** 2))
