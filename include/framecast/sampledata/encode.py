"""GRIB2 encoding of one field with ecCodes, keys set the way DWD and NCEP set them.

A base handle per grid is built once from an ecCodes sample and cloned per message, so each
message costs one clone, a handful of key sets and the 16-bit simple packing of its values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import numpy as np

from framecast.geo import ensure_cartopy

ensure_cartopy()  # pyproj/cartopy before eccodes in one process (see framecast.geo)
import eccodes  # noqa: E402

from framecast.sampledata.grids import GFS_GRID, ICON_EU_GRID  # noqa: E402


@dataclass(frozen=True)
class GribIdentity:
    """What a message is: parameter, level and statistical processing.

    ``level_type`` is GRIB2's typeOfFirstFixedSurface (1 surface, 10 entire atmosphere,
    100 isobaric [level in hPa], 101 mean sea level, 103 height above ground [m], 192 DWD's
    mixed layer). ``stat`` is None (instantaneous), ``"accum"`` or ``"max"``.
    """

    discipline: int
    category: int
    number: int
    level_type: int
    level: int | None = None
    stat: str | None = None


_STAT_CODE = {"accum": 1, "max": 2, "min": 3}
_CENTRE = {"icon-eu": ("edzw", 255), "icon": ("edzw", 255), "gfs": ("kwbc", 0)}


def icon_grid_uuid(division: int) -> str:
    """The ``uuidOfHGrid`` written for an icosahedral grid: the same grid, the same uuid.

    DWD links data files to their grid (and to CLAT/CLON) by this uuid, so the dataset layer
    can tell coordinates of a different grid apart from the right ones.
    """
    return uuid.uuid5(uuid.NAMESPACE_URL, f"framecast:icosahedral:R{division}").hex


@lru_cache(maxsize=8)
def _base_handle(model: str, division: int):
    """An ecCodes handle with the model's centre and grid set (never released: cached)."""
    if model == "icon":
        h = eccodes.codes_grib_new_from_samples("GRIB2")
        eccodes.codes_set(h, "gridDefinitionTemplateNumber", 101)
        eccodes.codes_set(h, "numberOfGridUsed", division)
        eccodes.codes_set(h, "numberOfGridInReference", 1)
        eccodes.codes_set_string(h, "uuidOfHGrid", icon_grid_uuid(division))
    else:
        h = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib2")
        spec = ICON_EU_GRID if model == "icon-eu" else GFS_GRID
        for key, value in spec.grib_keys().items():
            eccodes.codes_set(h, key, value)
    centre, sub = _CENTRE[model]
    eccodes.codes_set(h, "centre", centre)
    eccodes.codes_set(h, "subCentre", sub)
    eccodes.codes_set(h, "typeOfGeneratingProcess", 2)  # forecast
    eccodes.codes_set(h, "significanceOfReferenceTime", 1)  # start of forecast
    eccodes.codes_set(h, "stepUnits", 1)  # hours
    return h


def set_parameter(h, ident) -> None:
    """Set the parameter (discipline, category, number) and the level of ``ident`` on
    GRIB2 handle ``h``: a pressure level in Pa, a height in m, or no level at all."""
    eccodes.codes_set(h, "discipline", ident.discipline)
    eccodes.codes_set(h, "parameterCategory", ident.category)
    eccodes.codes_set(h, "parameterNumber", ident.number)
    eccodes.codes_set(h, "typeOfFirstFixedSurface", ident.level_type)
    if ident.level is None:
        eccodes.codes_set_missing(h, "scaleFactorOfFirstFixedSurface")
        eccodes.codes_set_missing(h, "scaledValueOfFirstFixedSurface")
    else:
        scaled = ident.level * 100 if ident.level_type == 100 else ident.level
        eccodes.codes_set(h, "scaleFactorOfFirstFixedSurface", 0)
        eccodes.codes_set(h, "scaledValueOfFirstFixedSurface", scaled)


def encode(model: str, ident: GribIdentity, values: np.ndarray, run_time: datetime,
           step: int, *, start_step: int = 0, division: int = 0,
           decimal_scale: int | None = None, bits: int = 16) -> bytes:
    """One complete GRIB2 message (bytes) of ``values`` in the grid's scanning order.

    Statistical fields cover ``start_step``..``step`` (accumulation since the run start for
    precipitation, the window of a maximum for gusts). ``decimal_scale`` fixes the packing
    precision (10**-d), which keeps accumulations exactly non-decreasing after packing.
    ``bits`` is the simple-packing width: 16 like the publishers, more for coordinates.
    """
    h = eccodes.codes_clone(_base_handle(model, division))
    try:
        if ident.stat is not None:
            eccodes.codes_set(h, "productDefinitionTemplateNumber", 8)
            eccodes.codes_set(h, "typeOfStatisticalProcessing", _STAT_CODE[ident.stat])
        set_parameter(h, ident)
        eccodes.codes_set(h, "dataDate", int(run_time.strftime("%Y%m%d")))
        eccodes.codes_set(h, "dataTime", run_time.hour * 100 + run_time.minute)
        if ident.stat is not None:
            eccodes.codes_set(h, "stepRange", f"{start_step}-{step}")
        else:
            eccodes.codes_set(h, "forecastTime", step)
        eccodes.codes_set(h, "bitsPerValue", bits)
        if decimal_scale is not None:
            eccodes.codes_set(h, "decimalScaleFactor", decimal_scale)
        eccodes.codes_set_values(h, np.ascontiguousarray(values, dtype=np.float64).ravel())
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)
