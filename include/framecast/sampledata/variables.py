"""What each sample variable is called and encoded as by DWD (ICON, ICON-EU) and NCEP (GFS).

One row per canonical variable: DWD's directory and file suffix, the GRIB2 identity DWD uses,
and the wgrib2 name/level and GRIB2 identity in a GFS pgrb2 file. DWD ships geopotential
(``FI``, m2 s-2) on pressure levels while GFS ships geopotential height (``HGT``, gpm); both
are written the way the real files have them.
"""

from __future__ import annotations

from dataclasses import dataclass

from framecast.sampledata.encode import GribIdentity
from framecast.sampledata.profiles import PROFILE_LEVELS
from framecast.sampledata.weather import G


@dataclass(frozen=True)
class SampleVariable:
    """One canonical variable and how each publisher names and encodes it."""

    name: str
    dwd_dir: str
    dwd_suffix: str
    dwd: GribIdentity
    gfs_name: str
    gfs_level: str
    gfs: GribIdentity
    pressure_level: int | None = None
    dwd_scale: float = 1.0  # DWD value = weather value * dwd_scale (gh -> geopotential)

    @property
    def stat(self) -> str | None:
        return self.dwd.stat


def _pl(name: str, dwd_dir: str, suffix: str, cat: int, num: int, gfs_name: str, lev: int,
        *, dwd_param: tuple[int, int] | None = None, scale: float = 1.0) -> SampleVariable:
    dcat, dnum = dwd_param or (cat, num)
    return SampleVariable(name, dwd_dir, suffix, GribIdentity(0, dcat, dnum, 100, lev),
                          gfs_name, f"{lev} mb", GribIdentity(0, cat, num, 100, lev), lev, scale)


VARIABLES: dict[str, SampleVariable] = {v.name: v for v in (
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
    # point forecasts: dew point, cloud layers, weather code, profiles 1000-300 hPa
    SampleVariable("td2m", "td_2m", "TD_2M", GribIdentity(0, 0, 6, 103, 2),
                   "DPT", "2 m above ground", GribIdentity(0, 0, 6, 103, 2)),
    SampleVariable("clcl", "clcl", "CLCL", GribIdentity(0, 6, 3, 1),
                   "LCDC", "low cloud layer", GribIdentity(0, 6, 3, 214)),
    SampleVariable("clcm", "clcm", "CLCM", GribIdentity(0, 6, 4, 1),
                   "MCDC", "middle cloud layer", GribIdentity(0, 6, 4, 224)),
    SampleVariable("clch", "clch", "CLCH", GribIdentity(0, 6, 5, 1),
                   "HCDC", "high cloud layer", GribIdentity(0, 6, 5, 234)),
    SampleVariable("ww", "ww", "WW", GribIdentity(0, 19, 25, 1),
                   "WW", "surface", GribIdentity(0, 19, 25, 1)),
    *(_pl(f"{fam}{lev}", d, suf, cat, num, gname, lev)
      for lev in PROFILE_LEVELS
      for fam, d, suf, cat, num, gname in (("t", "t", "T", 0, 0, "TMP"),
                                            ("r", "relhum", "RELHUM", 1, 1, "RH"),
                                            ("u", "u", "U", 2, 2, "UGRD"),
                                            ("v", "v", "V", 2, 3, "VGRD"))
      if f"{fam}{lev}" not in ("u850", "v850", "t850", "t500")),
)}

#: Fields a real GFS file has besides those used by products (it has hundreds); written
#: into GFS files only, so clients must pick their fields by name, not by position.
GFS_EXTRAS: tuple[tuple[str, str, str, GribIdentity], ...] = (
    ("orog", "HGT", "surface", GribIdentity(0, 3, 5, 1)),
    ("sp", "PRES", "surface", GribIdentity(0, 3, 0, 1)),
    ("rh2m", "RH", "2 m above ground", GribIdentity(0, 1, 1, 103, 2)),
    ("pwat", "PWAT", "entire atmosphere (considered as a single layer)",
     GribIdentity(0, 1, 3, 10)),
)
