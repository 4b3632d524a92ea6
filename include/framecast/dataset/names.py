"""One naming table for ICON-EU, ICON and GFS: publisher names and GRIB identities -> canonical.

Three ways to recognise a field, cheapest first: DWD's file name suffix (no I/O at all), a
wgrib2 ``.idx`` line (a few bytes per field) and the GRIB header (shortName/typeOfLevel/level
as ecCodes reports them). All three lead to the same canonical names, e.g. ``t2m``, ``msl``,
``t850``, ``gh500``. Values read from the file are multiplied by a scale: DWD publishes
geopotential (m2 s-2), which becomes geopotential height (gpm) by dividing by g.
"""

from __future__ import annotations

import re

G = 9.80665

#: Canonical base variables and the units strings (cfgrib's spelling) fields carry.
BASE_UNITS: dict[str, str] = {
    "t2m": "K", "msl": "Pa", "tp": "kg m**-2", "gust10": "m s**-1", "tcc": "%",
    "u10": "m s**-1", "v10": "m s**-1", "cape": "J kg**-1",
    "u850": "m s**-1", "v850": "m s**-1", "t850": "K", "t500": "K",
    "gh500": "gpm", "gh850": "gpm", "gh1000": "gpm",
    # point forecasts (meteograms): dew point, cloud layers, weather code
    "td2m": "K", "clcl": "%", "clcm": "%", "clch": "%", "ww": "1",
}
#: Units of per-level families, for levels beyond the canonical ones (e.g. t700).
LEVEL_FAMILY_UNITS = {"u": "m s**-1", "v": "m s**-1", "t": "K", "gh": "gpm", "r": "%"}

DERIVED_UNITS = {"wind10": "m s**-1", "wind850": "m s**-1", "thick_500_1000": "gpm"}
#: Derived names and the base names each needs.
DERIVED_INPUTS = {"wind10": ("u10", "v10"), "wind850": ("u850", "v850"),
                  "thick_500_1000": ("gh500", "gh1000")}
#: tp_{N}h periods listed by :meth:`RunDataset.variables` (any N works in ``field``).
LISTED_TP_PERIODS = (1, 3, 6, 12, 24)
TP_PERIOD = re.compile(r"^tp_([1-9][0-9]*)h$")


#: Descriptions for CF ``long_name`` attributes (xarray view of a run).
LONG_NAMES: dict[str, str] = {
    "t2m": "2 metre temperature", "msl": "mean sea level pressure",
    "tp": "total precipitation since the run start", "gust10": "10 metre wind gust",
    "tcc": "total cloud cover", "u10": "10 metre U wind component",
    "v10": "10 metre V wind component", "cape": "convective available potential energy",
    "wind10": "10 metre wind speed", "wind850": "850 hPa wind speed",
    "thick_500_1000": "500-1000 hPa thickness",
    "td2m": "2 metre dew point temperature", "clcl": "low cloud cover",
    "clcm": "medium cloud cover", "clch": "high cloud cover",
    "ww": "present weather (WMO code table 4677)",
}
LEVEL_FAMILY_NAMES = {"u": "U wind component", "v": "V wind component", "t": "temperature",
                      "gh": "geopotential height", "r": "relative humidity"}


def long_name_of(name: str) -> str:
    """A human description of a canonical name (``t850`` -> ``850 hPa temperature``)."""
    if name in LONG_NAMES:
        return LONG_NAMES[name]
    m = TP_PERIOD.match(name)
    if m:
        return f"total precipitation over the last {m.group(1)} h"
    m = re.match(r"^(gh|u|v|t|r)([0-9]+)$", name)
    if m:
        return f"{int(m.group(2))} hPa {LEVEL_FAMILY_NAMES[m.group(1)]}"
    return name


def units_of(name: str) -> str | None:
    """The units a canonical (base, per-level or derived) name is delivered in."""
    if name in BASE_UNITS:
        return BASE_UNITS[name]
    if name in DERIVED_UNITS:
        return DERIVED_UNITS[name]
    if TP_PERIOD.match(name):
        return BASE_UNITS["tp"]
    m = re.match(r"^(gh|u|v|t|r)([0-9]+)$", name)
    return LEVEL_FAMILY_UNITS[m.group(1)] if m else None


# --- DWD file names ------------------------------------------------------------------------

#: DWD single-level file suffix -> canonical name.
DWD_SINGLE = {"T_2M": "t2m", "PMSL": "msl", "TOT_PREC": "tp", "VMAX_10M": "gust10",
              "CLCT": "tcc", "CAPE_ML": "cape", "U_10M": "u10", "V_10M": "v10",
              "TD_2M": "td2m", "CLCL": "clcl", "CLCM": "clcm", "CLCH": "clch", "WW": "ww"}
#: DWD pressure-level file suffix -> family (name = family + level in hPa).
DWD_PRESSURE = {"FI": "gh", "T": "t", "U": "u", "V": "v", "RELHUM": "r"}

DWD_FILE = re.compile(
    r"^(?P<model>icon-eu_europe_regular-lat-lon|icon_global_icosahedral)_"
    r"(?:single-level_(?P<run1>\d{10})_(?P<step1>\d{3})_(?P<var1>[A-Z0-9_]+)"
    r"|pressure-level_(?P<run2>\d{10})_(?P<step2>\d{3})_(?P<lev>\d+)_(?P<var2>[A-Z0-9_]+)"
    r"|time-invariant_(?P<run3>\d{10})_(?P<var3>[A-Z0-9_]+))"
    r"\.grib2(?P<bz2>\.bz2)?$")
DWD_MODELS = {"icon-eu_europe_regular-lat-lon": "icon-eu", "icon_global_icosahedral": "icon"}


# --- wgrib2 inventory (.idx) lines ---------------------------------------------------------

IDX_SINGLE = {
    ("TMP", "2 m above ground"): "t2m", ("PRMSL", "mean sea level"): "msl",
    ("APCP", "surface"): "tp", ("GUST", "surface"): "gust10",
    ("TCDC", "entire atmosphere"): "tcc", ("UGRD", "10 m above ground"): "u10",
    ("VGRD", "10 m above ground"): "v10", ("CAPE", "surface"): "cape",
    ("DPT", "2 m above ground"): "td2m", ("LCDC", "low cloud layer"): "clcl",
    ("MCDC", "middle cloud layer"): "clcm", ("HCDC", "high cloud layer"): "clch",
}
IDX_PRESSURE = {"HGT": "gh", "TMP": "t", "UGRD": "u", "VGRD": "v", "RH": "r"}
IDX_MB = re.compile(r"^(\d+) mb$")


def idx_name(var: str, level: str) -> str | None:
    """Canonical name of a wgrib2 inventory record (``None``: not a field framecast uses)."""
    if (var, level) in IDX_SINGLE:
        return IDX_SINGLE[(var, level)]
    m = IDX_MB.match(level)
    if m and var in IDX_PRESSURE:
        return f"{IDX_PRESSURE[var]}{int(m.group(1))}"
    return None


# --- GRIB headers (ecCodes shortName / typeOfLevel / level) -------------------------------

#: shortName -> (canonical, allowed typeOfLevel values or None for any).
GRIB_SINGLE: dict[str, tuple[str, frozenset[str] | None]] = {
    "2t": ("t2m", None), "t2m": ("t2m", None),
    "msl": ("msl", None), "prmsl": ("msl", None),
    "tp": ("tp", frozenset({"surface"})),
    "10fg": ("gust10", None), "fg10": ("gust10", None), "i10fg": ("gust10", None),
    "max_i10fg": ("gust10", None), "gust": ("gust10", frozenset({"surface",
                                                                  "heightAboveGround"})),
    "tcc": ("tcc", frozenset({"atmosphere", "surface", "entireAtmosphere"})),
    "CLCT": ("tcc", None),
    "cape": ("cape", frozenset({"surface", "unknown", "mixedLayer"})),
    "CAPE_ML": ("cape", None), "cape_ml": ("cape", None),
    "10u": ("u10", None), "10v": ("v10", None),
    "2d": ("td2m", None), "d2m": ("td2m", None),
    "lcc": ("clcl", None), "CLCL": ("clcl", None), "mcc": ("clcm", None),
    "CLCM": ("clcm", None), "hcc": ("clch", None), "CLCH": ("clch", None),
    "ww": ("ww", None), "WW": ("ww", None),
}
#: shortName on isobaric levels -> (family, scale applied to the values).
GRIB_PRESSURE: dict[str, tuple[str, float]] = {
    "u": ("u", 1.0), "v": ("v", 1.0), "t": ("t", 1.0), "gh": ("gh", 1.0), "z": ("gh", 1.0 / G),
    "r": ("r", 1.0),
}


def grib_name(short_name: str, type_of_level: str, level: int) -> tuple[str, float] | None:
    """Canonical name and value scale of a GRIB message, or None when framecast has no use."""
    if type_of_level == "isobaricInhPa" and short_name in GRIB_PRESSURE:
        family, scale = GRIB_PRESSURE[short_name]
        return f"{family}{int(level)}", scale
    entry = GRIB_SINGLE.get(short_name)
    if entry is None:
        return None
    name, levels = entry
    if levels is not None and type_of_level not in levels:
        return None
    return name, 1.0
