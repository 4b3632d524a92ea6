"""A sample climatology: monthly means on a global 1 degree grid, as one GRIB2 file.

Shaped like a reanalysis' long-term monthly means (ERA5 1991-2020): one message per variable
and calendar month (``dataDate`` YYYYMM01 of a reference year), ECMWF as the centre, global
regular lat-lon from 90 N to 90 S and 0 to 359 E. The values follow the sample weather's own
background (:mod:`framecast.sampledata.weather`: temperature falling poleward, subtropical
highs and subpolar lows) plus a seasonal cycle and a wave that moves with the month, so
anomaly charts of sample runs show departures of a few kelvin or decametres and each month's
mean differs everywhere from the next one's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from framecast.errors import SpecError
from framecast.geo import ensure_cartopy

ensure_cartopy()  # pyproj/cartopy before eccodes in one process (see framecast.geo)
import eccodes  # noqa: E402

from framecast.sampledata.encode import set_parameter  # noqa: E402
from framecast.sampledata.variables import VARIABLES  # noqa: E402
from framecast.sampledata.weather import RD_G, RHO, G  # noqa: E402

#: What the sample file holds (a forecaster's usual anomaly charts).
CLIMATOLOGY_VARIABLES = ("t2m", "gh500", "t850", "msl")
#: Year written in ``dataDate`` (the middle of the 1991-2020 normal period).
REFERENCE_YEAR = 2005


def monthly_means(name: str, month: int, lat: np.ndarray, lon: np.ndarray, seed: int = 0
                  ) -> np.ndarray:
    """The sample long-term mean of ``name`` in ``month`` (1-12) at the points, GRIB units.

    The sample weather's land, sea and terrain (``seed``) shape the 2 m and 850 hPa means the
    way they shape the forecasts, so anomalies are departures of the weather systems, not
    land-sea contrasts.
    """
    shape = np.shape(lat)
    lat, lon = np.atleast_1d(lat).ravel(), np.atleast_1d(lon).ravel()
    return _means(name, month, lat, lon, *_surface(lat, lon, seed)).reshape(shape)


def _surface(lat: np.ndarray, lon: np.ndarray, seed: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Land (0/1), the static texture and the orography of the sample weather at the points."""
    from framecast.sampledata.weather import Weather

    weather = Weather(seed)
    land, static = weather.land(lat, lon), weather.static_texture(lat, lon)
    return land, static, land * np.clip(700.0 * (static + 0.3), 0.0, None)


def _means(name: str, month: int, lat: np.ndarray, lon: np.ndarray, land: np.ndarray,
           static: np.ndarray, orog: np.ndarray) -> np.ndarray:
    alat = np.abs(lat)
    hemisphere = np.where(lat >= 0.0, 1.0, -1.0)
    # Coldest in January in the north, July in the south; more seasonal away from the tropics.
    season = -2.5 * hemisphere * np.cos(2.0 * np.pi * (month - 1) / 12.0) \
        * np.clip(alat / 60.0, 0.0, 1.0)
    wave = 2.5 * np.cos(np.radians(2.0 * lon - 60.0 * month)) * np.cos(np.radians(lat))
    t850 = 291.0 - 30.0 * np.clip((alat - 22.0) / 45.0, 0.0, 1.3) + 1.2 * static + season + wave
    belts = 900.0 * np.exp(-(((alat - 33.0) / 12.0) ** 2)) \
        - 800.0 * np.exp(-(((alat - 62.0) / 10.0) ** 2))
    if name == "t850":
        return t850
    if name == "t2m":  # seas milder, terrain colder by the standard lapse rate
        return t850 + 9.0 + 2.5 * (1.0 - land) + 1.0 * static - 0.0065 * orog
    if name == "msl":
        return 101325.0 + belts
    if name == "gh500":
        gh1000 = belts / (RHO * G)
        # + 90 m: the sample weather's mean 500 hPa height over many runs
        return gh1000 + RD_G * (t850 - 4.5) * np.log(2.0) + 90.0
    raise SpecError(f"sample climatology: no variable {name!r} (choose from "
                    f"{', '.join(CLIMATOLOGY_VARIABLES)})")


def _messages(variables: Sequence[str], months: Iterable[int], resolution: float
              ) -> Iterator[bytes]:
    nlat, nlon = int(round(180.0 / resolution)) + 1, int(round(360.0 / resolution))
    lat = np.linspace(90.0, -90.0, nlat)
    lon = np.arange(nlon) * resolution
    glon, glat = np.meshgrid(lon, lat)
    glat, glon = glat.ravel(), glon.ravel()
    surface = _surface(glat, glon, 0)
    base = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
    try:
        for key, value in {"Ni": nlon, "Nj": nlat, "latitudeOfFirstGridPointInDegrees": 90.0,
                           "longitudeOfFirstGridPointInDegrees": 0.0,
                           "latitudeOfLastGridPointInDegrees": -90.0,
                           "longitudeOfLastGridPointInDegrees": float(lon[-1]),
                           "iDirectionIncrementInDegrees": resolution,
                           "jDirectionIncrementInDegrees": resolution,
                           "jScansPositively": 0}.items():
            eccodes.codes_set(base, key, value)
        eccodes.codes_set(base, "centre", "ecmf")
        for month in months:
            for name in variables:
                ident = VARIABLES[name].gfs
                h = eccodes.codes_clone(base)
                try:
                    set_parameter(h, ident)
                    eccodes.codes_set(h, "dataDate", REFERENCE_YEAR * 10000 + month * 100 + 1)
                    eccodes.codes_set(h, "dataTime", 0)
                    eccodes.codes_set(h, "bitsPerValue", 16)
                    eccodes.codes_set_values(
                        h, _means(name, month, glat, glon, *surface).astype(np.float64))
                    yield eccodes.codes_get_message(h)
                finally:
                    eccodes.codes_release(h)
    finally:
        eccodes.codes_release(base)


def generate_climatology(out: Path, *, variables: Sequence[str] = CLIMATOLOGY_VARIABLES,
                         months: Iterable[int] = range(1, 13), resolution: float = 1.0
                         ) -> Path:
    """Write the sample climatology to ``out`` (temporary name, then rename); its path."""
    from framecast.sampledata import _atomic_write

    for name in variables:
        _means(name, 1, *(np.zeros(1),) * 5)  # unknown names fail before writing
    months = list(months)
    if not months or any(not 1 <= m <= 12 for m in months):
        raise SpecError(f"sample climatology: months must be 1..12, got {months}")
    if not 0 < resolution <= 10 or (360.0 / resolution) % 1:
        raise SpecError(f"sample climatology: resolution must divide 360 degrees, got "
                        f"{resolution}")
    out = Path(out)
    _atomic_write(out, _messages(list(variables), months, resolution))
    return out
