"""Sample fields for point forecasts: dew point, cloud layers, weather code, pressure levels.

Derived from the base weather state (:meth:`framecast.sampledata.weather.Weather.state`) so
they stay consistent with it: cloud layers follow the humidity of their levels, the weather
code follows cloud, precipitation, temperature and CAPE, and the profiles of temperature,
humidity and wind on 1000-300 hPa pass through the 850 and 500 hPa fields.
"""

from __future__ import annotations

import numpy as np

from framecast.sampledata.weather import Weather

#: Pressure levels (hPa) of the time-height sections and soundings.
PROFILE_LEVELS = (1000, 950, 925, 850, 700, 600, 500, 400, 300)
#: Fields besides the pressure levels.
SURFACE_EXTRAS = ("td2m", "clcl", "clcm", "clch", "ww")
#: Everything point forecasts read beyond the chart variables.
POINT_VARIABLES = SURFACE_EXTRAS + tuple(f"{fam}{lev}" for lev in PROFILE_LEVELS
                                         for fam in ("t", "r", "u", "v")
                                         if f"{fam}{lev}" not in ("u850", "v850", "t850", "t500"))


def dewpoint(t_k: np.ndarray, rh_pct: np.ndarray) -> np.ndarray:
    """Dew point (K) from temperature (K) and relative humidity (%), Magnus formula."""
    tc = t_k - 273.15
    g = np.log(np.clip(rh_pct, 1.0, 100.0) / 100.0) + 17.62 * tc / (243.12 + tc)
    return 243.12 * g / (17.62 - g) + 273.15


def extra_state(weather: Weather, lat: np.ndarray, lon: np.ndarray, hours: float,
                base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Continuous extra fields at the points, from the base state ``base``."""
    out: dict[str, np.ndarray] = {}
    t850, t500 = base["t850"], base["t500"]
    u850, v850 = base["u850"], base["v850"]
    p, _, _, warm = weather.pressure(lat, lon, hours)
    q = weather.moisture(lat, lon, hours, p, warm)
    static = weather.static_texture(lat, lon)
    for lev in PROFILE_LEVELS:
        x = np.log(850.0 / lev) / np.log(850.0 / 500.0)  # 0 at 850, 1 at 500 hPa
        out[f"t{lev}"] = t850 + (t500 - t850) * x
        shear = 1.0 + 0.8 * x
        out[f"u{lev}"] = u850 * shear + 6.0 * max(x, 0.0)
        out[f"v{lev}"] = v850 * shear
        # Moist low levels near lows, a second moist layer aloft in warm sectors.
        layer = np.cos(np.pi * (x + 0.25 * static))
        rh = 68.0 + 40.0 * np.tanh(1.5 * q) * (0.6 + 0.4 * layer) - 10.0 * max(x, 0.0)
        out[f"r{lev}"] = np.clip(rh, 3.0, 100.0)
    out["td2m"] = np.minimum(dewpoint(base["t2m"], base["rh2m"]), base["t2m"])
    for name, lev in (("clcl", 925), ("clcm", 700), ("clch", 400)):
        out[name] = np.clip((out[f"r{lev}"] - 70.0) / 28.0, 0.0, 1.0) * 100.0
    out["prate"] = weather.precip_rate(lat, lon, hours)
    return out


def weather_code(tcc: np.ndarray, t2m: np.ndarray, cape: np.ndarray,
                 prate: np.ndarray) -> np.ndarray:
    """WMO 4677 present-weather code from cloud (%), 2 m temperature (K), CAPE and rain rate.

    Computed after interpolation to full resolution: a code is a category, not a quantity.
    """
    ww = np.select([tcc < 12.5, tcc < 50.0, tcc < 87.5], [0.0, 1.0, 2.0], 3.0)
    snow = t2m < 274.15
    for limit, rain, snw in ((0.1, 61.0, 71.0), (1.0, 63.0, 73.0), (4.0, 65.0, 75.0)):
        ww = np.where(prate >= limit, np.where(snow, snw, rain), ww)
    ww = np.where((prate >= 0.5) & (cape > 800.0) & ~snow, 95.0, ww)
    return ww.astype(np.float32)
