"""A place's forecast as a table of documented columns: what CSV, JSON and the charts show.

Derivations happen here once: units a reader expects (°C, hPa, mm), precipitation per step
from the run's accumulation, its rain/snow split, wind speed and direction, and the weather
code. Column names, units and meanings are in :data:`COLUMNS` (and docs/points.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framecast.points.extract import PointSeries
from framecast.points.symbols import derived_weather_code

#: Snow rather than rain where the 2 m temperature is at or below this (°C), when the model
#: gives no rain/snow split of its own.
SNOW_BELOW_C = 1.0

#: column -> (unit, meaning)
COLUMNS: dict[str, tuple[str, str]] = {
    "valid_time": ("UTC", "valid time, ISO 8601"),
    "step": ("h", "forecast hour"),
    "t2m": ("degC", "2 m temperature"),
    "td2m": ("degC", "2 m dew point"),
    "precip": ("mm", "precipitation since the previous step"),
    "rain": ("mm", "rain since the previous step"),
    "snow": ("mm", "snow (water equivalent) since the previous step: the model's snowfall "
                   "where it has one, else all precipitation at or below 1 degC"),
    "precip_total": ("mm", "precipitation since the run start"),
    "wind10": ("m/s", "10 m wind speed"),
    "wind10_dir": ("deg", "10 m wind direction (from, clockwise from north)"),
    "gust10": ("m/s", "10 m gust (maximum since the previous step)"),
    "msl": ("hPa", "mean sea level pressure"),
    "cloud_total": ("%", "total cloud cover"),
    "cloud_low": ("%", "low cloud cover"),
    "cloud_mid": ("%", "medium cloud cover"),
    "cloud_high": ("%", "high cloud cover"),
    "ww": ("code", "present weather, WMO 4677 (model's, or derived from cloud and "
                   "precipitation)"),
    "cape": ("J/kg", "convective available potential energy (model's)"),
}
#: Pressure-level column families: name{level} -> (unit, meaning)
LEVEL_COLUMNS = {"t": ("degC", "temperature at {} hPa"), "r": ("%", "relative humidity at {} hPa"),
                 "u": ("m/s", "eastward wind at {} hPa"), "v": ("m/s", "northward wind at {} hPa")}


@dataclass
class PlaceTable:
    """Columns (name -> values over the steps) of one place, NaN where not available."""

    place_number: int
    columns: dict[str, np.ndarray]
    units: dict[str, str]
    meaning: dict[str, str]
    ww_source: str  # "model", "derived" or "none"
    split_source: str  # "model" or "t2m"

    def available(self, *names: str) -> bool:
        return all(n in self.columns and np.isfinite(self.columns[n]).any() for n in names)


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def place_table(series: PointSeries, i: int) -> PlaceTable:
    """The documented columns of place number ``i`` of ``series``."""
    n = len(series.steps)

    def get(name: str) -> np.ndarray:
        return series.get(name, i).astype(np.float64) if name in series.values else _nan(n)

    cols: dict[str, np.ndarray] = {"step": np.asarray(series.steps, dtype=np.float64)}
    cols["t2m"] = get("t2m") - 273.15
    cols["td2m"] = get("td2m") - 273.15
    total = get("tp")
    starts_at_zero = bool(series.steps) and series.steps[0] == 0
    if starts_at_zero and np.isnan(total[0]) and "tp" in series.values:
        total[0] = 0.0  # nothing has accumulated at the run start (GFS f000 has no APCP)
    before = np.concatenate([[0.0 if starts_at_zero else np.nan], total[:-1]])
    per_step = total - before
    per_step = np.where(np.isfinite(per_step), np.maximum(per_step, 0.0), np.nan)
    cols["precip"] = per_step
    snow_total = _accumulated_sum(series, i, ("snow_gsp", "snow_con"))
    if snow_total is not None:  # the model's own split: its snowfall, the rest is rain
        split = "model"
        snow_before = np.concatenate([[0.0 if starts_at_zero else np.nan], snow_total[:-1]])
        cols["snow"] = np.clip(snow_total - snow_before, 0.0, None)
        cols["snow"] = np.minimum(cols["snow"], per_step)
    else:
        split = "t2m"
        snow_frac = np.where(cols["t2m"] <= SNOW_BELOW_C, 1.0, 0.0)
        cols["snow"] = np.where(np.isfinite(cols["t2m"]), per_step * snow_frac, np.nan)
    cols["rain"] = np.where(np.isfinite(cols["snow"]), per_step - cols["snow"], per_step)
    cols["precip_total"] = total
    u, v = get("u10"), get("v10")
    cols["wind10"] = np.hypot(u, v)
    cols["wind10_dir"] = np.mod(270.0 - np.rad2deg(np.arctan2(v, u)), 360.0)
    cols["gust10"] = get("gust10")
    cols["msl"] = get("msl") / 100.0
    cols["cloud_total"] = get("tcc")
    cols["cloud_low"], cols["cloud_mid"], cols["cloud_high"] = (get(n) for n in
                                                                ("lcc", "mcc", "hcc"))
    ww = get("ww")
    ww_source = "model" if np.isfinite(ww).any() else "none"
    if ww_source == "none" and np.isfinite(cols["cloud_total"]).any():
        hours = np.diff(cols["step"], prepend=cols["step"][:1] - 1)
        rate = per_step / np.maximum(hours, 1.0)
        ww = derived_weather_code(cols["cloud_total"], cols["t2m"], get("cape"), rate)
        ww_source = "derived"
    cols["ww"] = ww
    cols["cape"] = get("cape")
    units = {k: COLUMNS[k][0] for k in cols}
    meaning = {k: COLUMNS[k][1] for k in cols}
    for fam, (unit, text) in LEVEL_COLUMNS.items():
        for lev in series.levels(fam):
            vals = get(f"{fam}{lev}")
            cols[f"{fam}{lev}"] = vals - 273.15 if fam == "t" else vals
            units[f"{fam}{lev}"] = unit
            meaning[f"{fam}{lev}"] = text.format(lev)
    ordered = {k: cols[k] for k in list(COLUMNS) if k in cols}
    ordered.update({k: v for k, v in cols.items() if k not in ordered})
    return PlaceTable(i, ordered, units, meaning, ww_source, split)


def _accumulated_sum(series: PointSeries, i: int, names: tuple[str, ...]) -> np.ndarray | None:
    """Sum of accumulations ``names`` (NaN-free where all present), None when none exist."""
    have = [n for n in names if series.has(n)]
    if not have:
        return None
    total = sum(series.get(n, i).astype(np.float64) for n in have)
    if series.steps[:1] == [0]:
        total[0] = 0.0 if np.isnan(total[0]) else total[0]
    return total
