"""What each sample variable is called and encoded as by DWD (ICON, ICON-EU) and NCEP (GFS).

One row per canonical variable: DWD's directory and file suffix, the GRIB2 identity DWD uses,
and the wgrib2 name/level and GRIB2 identity in a GFS pgrb2 file. DWD ships geopotential
(``FI``, m2 s-2) on pressure levels while GFS ships geopotential height (``HGT``, gpm); both
are written the way the real files have them.
"""

from __future__ import annotations

from dataclasses import dataclass

from framecast.sampledata.encode import GribIdentity
from framecast.sampledata.weather import PRESSURE_LEVELS, G


@dataclass(frozen=True)
class SampleVariable:
    """One canonical variable and how each publisher names and encodes it.

    A publisher that does not ship the field has ``None`` for its identity (GFS has no
    present-weather code, DWD no categorical rain flag); ``models`` narrows further (ICON-EU
    alone publishes the simulated satellite image).
    """

    name: str
    dwd_dir: str | None
    dwd_suffix: str | None
    dwd: GribIdentity | None
    gfs_name: str | None
    gfs_level: str | None
    gfs: GribIdentity | None
    pressure_level: int | None = None
    dwd_scale: float = 1.0  # DWD value = weather value * dwd_scale (gh -> geopotential)
    models: frozenset[str] = frozenset({"icon-eu", "icon", "gfs"})

    @property
    def stat(self) -> str | None:
        ident = self.dwd or self.gfs
        return ident.stat if ident else None

    def published_by(self, model: str) -> bool:
        """Whether ``model``'s publisher ships this field."""
        if model not in self.models:
            return False
        return (self.gfs if model == "gfs" else self.dwd) is not None


def _pl(name: str, dwd_dir: str, suffix: str, cat: int, num: int, gfs_name: str, lev: int,
        *, dwd_param: tuple[int, int] | None = None, scale: float = 1.0) -> SampleVariable:
    dcat, dnum = dwd_param or (cat, num)
    return SampleVariable(name, dwd_dir, suffix, GribIdentity(0, dcat, dnum, 100, lev),
                          gfs_name, f"{lev} mb", GribIdentity(0, cat, num, 100, lev), lev, scale)


def _dwd(name: str, dwd_dir: str, ident: GribIdentity, **kw) -> SampleVariable:
    return SampleVariable(name, dwd_dir, dwd_dir.upper(), ident, None, None, None, **kw)


def _gfs(name: str, wgrib: str, level: str, ident: GribIdentity) -> SampleVariable:
    return SampleVariable(name, None, None, None, wgrib, level, ident)


#: The original variable set: what :func:`generate_run` writes unless asked for more.
CORE_VARIABLES = ("t2m", "msl", "tp", "gust10", "tcc", "u10", "v10", "cape", "u850", "v850",
                  "t850", "t500", "gh1000", "gh850", "gh500")

_CORE: tuple[SampleVariable, ...] = (
    SampleVariable("t2m", "t_2m", "T_2M", GribIdentity(0, 0, 0, 103, 2),
                   "TMP", "2 m above ground", GribIdentity(0, 0, 0, 103, 2)),
    SampleVariable("msl", "pmsl", "PMSL", GribIdentity(0, 3, 1, 101),
                   "PRMSL", "mean sea level", GribIdentity(0, 3, 1, 101)),
    SampleVariable("tp", "tot_prec", "TOT_PREC", GribIdentity(0, 1, 52, 1, stat="accum"),
                   "APCP", "surface", GribIdentity(0, 1, 8, 1, stat="accum")),
    SampleVariable("gust10", "vmax_10m", "VMAX_10M", GribIdentity(0, 2, 22, 103, 10, "max"),
                   "GUST", "surface", GribIdentity(0, 2, 22, 1)),
    SampleVariable("tcc", "clct", "CLCT", GribIdentity(0, 6, 1, 1),
                   "TCDC", "entire atmosphere", GribIdentity(0, 6, 1, 10)),
    SampleVariable("u10", "u_10m", "U_10M", GribIdentity(0, 2, 2, 103, 10),
                   "UGRD", "10 m above ground", GribIdentity(0, 2, 2, 103, 10)),
    SampleVariable("v10", "v_10m", "V_10M", GribIdentity(0, 2, 3, 103, 10),
                   "VGRD", "10 m above ground", GribIdentity(0, 2, 3, 103, 10)),
    SampleVariable("cape", "cape_ml", "CAPE_ML", GribIdentity(0, 7, 6, 192),
                   "CAPE", "surface", GribIdentity(0, 7, 6, 1)),
    _pl("u850", "u", "U", 2, 2, "UGRD", 850),
    _pl("v850", "v", "V", 2, 3, "VGRD", 850),
    _pl("t850", "t", "T", 0, 0, "TMP", 850),
    _pl("t500", "t", "T", 0, 0, "TMP", 500),
    _pl("gh1000", "fi", "FI", 3, 5, "HGT", 1000, dwd_param=(3, 4), scale=G),
    _pl("gh850", "fi", "FI", 3, 5, "HGT", 850, dwd_param=(3, 4), scale=G),
    _pl("gh500", "fi", "FI", 3, 5, "HGT", 500, dwd_param=(3, 4), scale=G),
)

_UPPER: list[SampleVariable] = []
for _lev in PRESSURE_LEVELS:
    for _name, _dir, _suffix, _cat, _num, _wgrib, _dparam, _scale in (
            ("t", "t", "T", 0, 0, "TMP", None, 1.0),
            ("u", "u", "U", 2, 2, "UGRD", None, 1.0),
            ("v", "v", "V", 2, 3, "VGRD", None, 1.0),
            ("gh", "fi", "FI", 3, 5, "HGT", (3, 4), G),
            ("r", "relhum", "RELHUM", 1, 1, "RH", None, 1.0)):
        if f"{_name}{_lev}" not in CORE_VARIABLES:
            _UPPER.append(_pl(f"{_name}{_lev}", _dir, _suffix, _cat, _num, _wgrib, _lev,
                              dwd_param=_dparam, scale=_scale))

_SURFACE_EXTRA: tuple[SampleVariable, ...] = (
    SampleVariable("td2m", "td_2m", "TD_2M", GribIdentity(0, 0, 6, 103, 2),
                   "DPT", "2 m above ground", GribIdentity(0, 0, 6, 103, 2)),
    SampleVariable("rh2m", "relhum_2m", "RELHUM_2M", GribIdentity(0, 1, 1, 103, 2),
                   "RH", "2 m above ground", GribIdentity(0, 1, 1, 103, 2)),
    SampleVariable("tmax2m", "tmax_2m", "TMAX_2M", GribIdentity(0, 0, 0, 103, 2, "max"),
                   "TMAX", "2 m above ground", GribIdentity(0, 0, 4, 103, 2, "max")),
    SampleVariable("tmin2m", "tmin_2m", "TMIN_2M", GribIdentity(0, 0, 0, 103, 2, "min"),
                   "TMIN", "2 m above ground", GribIdentity(0, 0, 5, 103, 2, "min")),
    SampleVariable("lcc", "clcl", "CLCL", GribIdentity(0, 6, 3, 1),
                   "LCDC", "low cloud layer", GribIdentity(0, 6, 1, 214)),
    SampleVariable("mcc", "clcm", "CLCM", GribIdentity(0, 6, 4, 1),
                   "MCDC", "middle cloud layer", GribIdentity(0, 6, 1, 224)),
    SampleVariable("hcc", "clch", "CLCH", GribIdentity(0, 6, 5, 1),
                   "HCDC", "high cloud layer", GribIdentity(0, 6, 1, 234)),
    SampleVariable("cin", "cin_ml", "CIN_ML", GribIdentity(0, 7, 7, 192),
                   "CIN", "surface", GribIdentity(0, 7, 7, 1)),
    SampleVariable("sd", "h_snow", "H_SNOW", GribIdentity(0, 1, 11, 1),
                   "SNOD", "surface", GribIdentity(0, 1, 11, 1)),
    SampleVariable("hzerocl", "hzerocl", "HZEROCL", GribIdentity(0, 3, 6, 4),
                   "HGT", "0C isotherm", GribIdentity(0, 3, 5, 4)),
    _dwd("ww", "ww", GribIdentity(0, 19, 25, 1)),
    _dwd("rain_gsp", "rain_gsp", GribIdentity(0, 1, 77, 1, stat="accum")),
    _dwd("rain_con", "rain_con", GribIdentity(0, 1, 76, 1, stat="accum")),
    _dwd("snow_gsp", "snow_gsp", GribIdentity(0, 1, 56, 1, stat="accum")),
    _dwd("snow_con", "snow_con", GribIdentity(0, 1, 55, 1, stat="accum")),
    # DWD ships the simulated Meteosat 10.8 um channel for ICON-EU only.
    SampleVariable("ir_bt", "synmsg_bt_cl_ir10.8", "SYNMSG_BT_CL_IR10.8",
                   GribIdentity(3, 1, 14, 1), None, None, None, models=frozenset({"icon-eu"})),
    _gfs("frozen_precip_pct", "CPOFP", "surface", GribIdentity(0, 1, 39, 1)),
    _gfs("crain", "CRAIN", "surface", GribIdentity(0, 1, 192, 1)),
    _gfs("csnow", "CSNOW", "surface", GribIdentity(0, 1, 195, 1)),
    # GFS accumulates the snowfall water equivalent since the run start (like APCP).
    _gfs("snow_we", "WEASD", "surface", GribIdentity(0, 1, 13, 1, stat="accum")),
    _gfs("soil_moisture", "SOILW", "0-0.1 m below ground", GribIdentity(2, 0, 192, 106, 0)),
)

VARIABLES: dict[str, SampleVariable] = {v.name: v for v in (*_CORE, *_UPPER, *_SURFACE_EXTRA)}

#: Accumulated since the run start (like ``tp``): integrated hour by hour by the generator.
ACCUMULATED = frozenset({"tp", "rain_gsp", "rain_con", "snow_gsp", "snow_con", "snow_we"})


def model_variables(model: str) -> list[str]:
    """Every sample variable ``model``'s publisher ships, in table order."""
    return [n for n, v in VARIABLES.items() if v.published_by(model)]


#: Fields a real GFS file has besides those used by products (it has hundreds); written
#: into GFS files only, so clients must pick their fields by name, not by position.
GFS_EXTRAS: tuple[tuple[str, str, str, GribIdentity], ...] = (
    ("orog", "HGT", "surface", GribIdentity(0, 3, 5, 1)),
    ("sp", "PRES", "surface", GribIdentity(0, 3, 0, 1)),
    ("rh2m", "RH", "2 m above ground", GribIdentity(0, 1, 1, 103, 2)),
    ("pwat", "PWAT", "entire atmosphere (considered as a single layer)",
     GribIdentity(0, 1, 3, 10)),
)
