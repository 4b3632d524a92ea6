"""Publisher names and GRIB identities -> canonical names, answered by the variable catalogue.

Three ways to recognise a field, cheapest first: DWD's file name suffix (no I/O at all), a
wgrib2 ``.idx`` line (a few bytes per field) and the GRIB header (shortName/typeOfLevel/level
as ecCodes reports them). All three lead to the same canonical names (``t2m``, ``msl``,
``t850``, ``gh500``), defined in ``config/variables.yaml`` (:mod:`framecast.variables`).
Values read from the file are multiplied by the catalogue's scale: DWD publishes geopotential
(m2 s-2), which becomes geopotential height (gpm) by dividing by g.
"""

from __future__ import annotations

import re

from framecast.variables import load_catalogue

G = 9.80665

#: tp_{N}h periods listed by :meth:`RunDataset.variables` (any N works in ``field``).
LISTED_TP_PERIODS = (1, 3, 6, 12, 24)
TP_PERIOD = re.compile(r"^tp_([1-9][0-9]*)h$")

# --- DWD file names ------------------------------------------------------------------------

DWD_FILE = re.compile(
    r"^(?P<model>icon-eu_europe_regular-lat-lon|icon_global_icosahedral)_"
    r"(?:single-level_(?P<run1>\d{10})_(?P<step1>\d{3})_(?P<var1>[A-Z0-9_.]+)"
    r"|pressure-level_(?P<run2>\d{10})_(?P<step2>\d{3})_(?P<lev>\d+)_(?P<var2>[A-Z0-9_.]+)"
    r"|time-invariant_(?P<run3>\d{10})_(?P<var3>[A-Z0-9_.]+))"
    r"\.grib2(?P<bz2>\.bz2)?$")
DWD_MODELS = {"icon-eu_europe_regular-lat-lon": "icon-eu", "icon_global_icosahedral": "icon"}


def long_name_of(name: str) -> str:
    """A human description of a name (``t850`` -> ``850 hPa temperature``)."""
    return load_catalogue().long_name_of(name)


def units_of(name: str) -> str | None:
    """The units a catalogue (base, per-level or derived) name is delivered in."""
    return load_catalogue().units_of(name)


def dwd_name(suffix: str, level: int | None) -> tuple[str, float] | None:
    """Canonical name and value scale of a DWD file (None: not in the catalogue)."""
    return load_catalogue().from_dwd(suffix, level)


def idx_name(var: str, level: str) -> str | None:
    """Canonical name of a wgrib2 inventory record (``None``: not in the catalogue)."""
    return load_catalogue().from_idx(var, level)


def grib_name(short_name: str, type_of_level: str, level: int) -> tuple[str, float] | None:
    """Canonical name and value scale of a GRIB message, or None when not in the catalogue."""
    return load_catalogue().from_grib(short_name, type_of_level, level)
