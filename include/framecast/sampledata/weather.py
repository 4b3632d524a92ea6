"""A small deterministic "weather" for sample data: moving pressure systems and what follows.

The aim is data that exercises a map renderer the way real model output does: closed lows and
highs that drift east with time, winds roughly geostrophic around them (turned toward low
pressure near the ground, more so over rough land), warm and cold sectors, a diurnal cycle in
2 m temperature that is larger over land than sea, cloud and
precipitation near the lows, and heights/thicknesses consistent with the temperatures. It is not
a model; it is a pure function of (latitude, longitude, hours since run start, seed), so every
model grid sees the same weather and a run can be regenerated bit for bit.

Everything works on flat point arrays (degrees), so regular and unstructured grids share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framecast.sampledata.land import land_mask

EARTH_RADIUS = 6.371e6  # m
OMEGA = 7.292e-5  # s-1
G = 9.80665  # m s-2
RHO = 1.25  # kg m-3, near-surface air density used for the geostrophic balance
RD_G = 287.05 / G  # m K-1, hypsometric factor
MAX_WIND = 35.0  # m s-1, soft ceiling of the balanced (geostrophic) wind

#: Names of the instantaneous fields :meth:`Weather.state` returns.
STATE_FIELDS = ("t2m", "msl", "gust10", "tcc", "u10", "v10", "u850", "v850", "t850", "t500",
                "gh500", "gh850", "gh1000", "cape", "rh2m", "sp", "pwat", "orog")


@dataclass(frozen=True)
class Systems:
    """Pressure systems: initial centre (deg), amplitude (Pa), radius (m), eastward drift."""

    lat0: np.ndarray
    lon0: np.ndarray
    amp: np.ndarray
    radius: np.ndarray
    deg_per_hour: np.ndarray
    lat_drift: np.ndarray
    period: np.ndarray
    phase: np.ndarray


def make_systems(seed: int, n: int = 40) -> Systems:
    """Mid-latitude lows and highs in both hemispheres, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    hemi = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    hemi[: n // 4] = 1.0  # a few more in the northern mid-latitudes where Europe is
    lat0 = hemi * rng.uniform(32.0, 66.0, n)
    lon0 = rng.uniform(-180.0, 180.0, n)
    is_low = rng.random(n) < 0.6
    amp = np.where(is_low, -rng.uniform(1200.0, 3600.0, n), rng.uniform(900.0, 2500.0, n))
    radius = np.where(is_low, rng.uniform(8.0e5, 1.4e6, n), rng.uniform(1.0e6, 1.8e6, n))
    speed_kmh = np.where(is_low, rng.uniform(25.0, 50.0, n), rng.uniform(8.0, 20.0, n))
    deg_per_hour = speed_kmh / (111.2 * np.cos(np.deg2rad(lat0)))
    # Lows drift poleward as they deepen and occlude.
    lat_drift = np.where(is_low, hemi * rng.uniform(0.02, 0.08, n), 0.0)
    period = rng.uniform(60.0, 160.0, n)
    phase = rng.uniform(0.0, 2.0 * np.pi, n)
    return Systems(lat0, lon0, amp, radius, deg_per_hour, lat_drift, period, phase)


def _plane_waves(seed: int, n: int, kmin: float, kmax: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(n, 3))
    k *= (rng.uniform(kmin, kmax, n) / np.linalg.norm(k, axis=1))[:, None]
    return k, rng.uniform(0.0, 2.0 * np.pi, n)


def _xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    la, lo = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)], axis=-1)



#: Pressure levels (hPa) of the sample upper-air fields (t, u, v, gh, r at each).
PRESSURE_LEVELS = (1000, 925, 850, 700, 500, 300, 250)
#: Relative humidity offsets per level: the air dries with height.
_RH_OFFSET = {1000: 0.9, 925: 0.75, 850: 0.55, 700: 0.35, 500: 0.15, 300: -0.05, 250: -0.15}
#: Wind per level as (factor on the geostrophic wind, factor on the jet).
_WIND_SHAPE = {1000: (0.8, 0.0), 925: (1.0, 0.6), 850: (1.15, 1.0), 700: (1.3, 1.6),
               500: (1.6, 2.4), 300: (2.0, 4.4), 250: (2.0, 4.6)}
TROPOPAUSE_K = 215.0

#: Names of the fields :meth:`Weather.extended` adds to :meth:`Weather.state`.
EXTENDED_FIELDS = (
    ("td2m", "rh2m", "lcc", "mcc", "hcc", "cin", "hzerocl", "ir_bt", "soil_moisture", "prate",
     "frozen")
    + tuple(f"{f}{lev}" for lev in PRESSURE_LEVELS for f in ("t", "u", "v", "gh", "r"))
)


def dewpoint_from_rh(t_kelvin: np.ndarray, rh_percent: np.ndarray) -> np.ndarray:
    """Dewpoint (K) from temperature and relative humidity with Bolton's (1980) saturation
    vapour pressure and its inverse (MetPy's ``dewpoint`` formula).

    Written out so the generator stays free of pint on its hot path; the tests check it
    against MetPy (within 0.1 K). RH <= 100 % gives Td <= T by construction.
    """
    tc = t_kelvin - 273.15
    es = 6.112 * np.exp(17.67 * tc / (tc + 243.5))
    e = es * np.clip(rh_percent, 1.0, 100.0) / 100.0
    ln = np.log(e / 6.112)
    return 243.5 * ln / (17.67 - ln) + 273.15


def frozen_fraction(t_surface_kelvin: np.ndarray) -> np.ndarray:
    """Share of precipitation falling as snow: all snow below -1 degC, all rain above +2."""
    return np.clip((275.15 - t_surface_kelvin) / 3.0, 0.0, 1.0)


#: Categorical fields: computed at full resolution from interpolated inputs, never
#: interpolated themselves (a code between 61 and 71 means something else).
CATEGORICAL = ("ww", "crain", "csnow", "frozen_precip_pct")
#: What :func:`categorical` needs.
CATEGORICAL_INPUTS = ("prate", "frozen", "cape", "tcc", "rh2m", "u10", "v10")


def categorical(names: set[str], f: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Present weather and GFS's precipitation-type flags from the continuous fields ``f``."""
    rate, frozen = f["prate"], f["frozen"]
    wet = rate >= 0.1
    out = {"crain": np.where(wet & (frozen < 0.5), 1.0, 0.0),
           "csnow": np.where(wet & (frozen >= 0.5), 1.0, 0.0),
           "frozen_precip_pct": np.where(wet, 100.0 * frozen, 0.0)}
    if "ww" in names:
        out["ww"] = weather_code(rate, frozen, f["cape"], f["tcc"], f["rh2m"],
                                 np.hypot(f["u10"], f["v10"]))
    return {k: v for k, v in out.items() if k in names}


def weather_code(rate: np.ndarray, frozen: np.ndarray, cape: np.ndarray, tcc: np.ndarray,
                 rh2m: np.ndarray, wind10: np.ndarray) -> np.ndarray:
    """A WMO 4677 present-weather code (``ww``) as DWD's ICON publishes it.

    0-3 cloud cover without weather, 45 fog, 61/63/65 rain, 71/73/75 snow, 68/69 rain and
    snow mixed, 80-82 rain showers, 85/86 snow showers, 95 thunderstorm.
    """
    ww = np.select([tcc < 12.5, tcc < 50.0, tcc < 87.5], [0.0, 1.0, 2.0], 3.0)
    ww = np.where((rh2m >= 97.0) & (wind10 < 3.0), 45.0, ww)
    wet = rate >= 0.1
    convective = cape > 400.0
    intensity = np.select([rate < 1.0, rate < 4.0], [0, 1], 2)
    rain = np.choose(intensity, [61.0, 63.0, 65.0])
    snow = np.choose(intensity, [71.0, 73.0, 75.0])
    mixed = np.where(intensity == 0, 68.0, 69.0)
    showers_rain = np.choose(intensity, [80.0, 81.0, 82.0])
    showers_snow = np.where(intensity == 0, 85.0, 86.0)
    kind = np.select([frozen >= 0.9, frozen > 0.1],
                     [np.where(convective, showers_snow, snow), mixed],
                     np.where(convective, showers_rain, rain))
    kind = np.where(convective & (cape > 1000.0) & (frozen < 0.1) & (rate >= 1.0), 95.0, kind)
    return np.where(wet, kind, ww)


class Weather:
    """The sample atmosphere for one seed; :meth:`state` evaluates it at points and a time."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.systems = make_systems(seed)
        # Static texture (orography/land contrast) and moving texture (moisture), both smooth
        # sums of plane waves on the sphere so they exist on any grid.
        self._static = _plane_waves(seed + 1, 16, 8.0, 40.0)
        self._moving = _plane_waves(seed + 2, 16, 6.0, 30.0)
        self._static_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._land_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._order_cache: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None

    @staticmethod
    def _texture(xyz: np.ndarray, waves: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        # Outer products, not a matrix product: BLAS threads gain nothing at this size and
        # stall badly on a busy machine.
        k, ph = waves
        arg = np.multiply.outer(xyz[:, 0], k[:, 0])
        arg += np.multiply.outer(xyz[:, 1], k[:, 1])
        arg += np.multiply.outer(xyz[:, 2], k[:, 2])
        arg += ph
        return np.cos(arg).sum(axis=1) / np.sqrt(0.5 * k.shape[0])

    def static_texture(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """The time-invariant texture at the points (cached for the last point array seen)."""
        if self._static_cache is None or self._static_cache[0] is not lat:
            self._static_cache = (lat, self._texture(_xyz(lat, lon), self._static))
        return self._static_cache[1]

    def _lat_order(self, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Latitudes sorted ascending and the sorting permutation (None: already sorted)."""
        if self._order_cache is None or self._order_cache[0] is not lat:
            if np.all(np.diff(lat) >= 0.0):
                self._order_cache = (lat, lat, None)
            else:
                order = np.argsort(lat, kind="stable")
                self._order_cache = (lat, lat[order], order)
        return self._order_cache[1], self._order_cache[2]

    def land(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Land (1) or sea (0) at the points (cached for the last point array seen)."""
        if self._land_cache is None or self._land_cache[0] is not lat:
            self._land_cache = (lat, land_mask(lat, lon))
        return self._land_cache[1]

    def pressure(self, lat: np.ndarray, lon: np.ndarray, hours: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Pressure anomaly from the systems (Pa), its x/y gradients (Pa m-1), warm-sector index.

        The warm-sector index is positive east of lows (and west of highs): where the flow
        around a system brings air from lower latitudes. Each system is evaluated only in the
        latitude band within 3.5 radii of its centre (beyond, exp(-12) is negligible).
        """
        s = self.systems
        lat_c = np.clip(s.lat0 + s.lat_drift * hours, -75.0, 75.0)
        lon_c = s.lon0 + s.deg_per_hour * hours
        amp = s.amp * (0.75 + 0.25 * np.sin(2.0 * np.pi * hours / s.period + s.phase))
        p = np.zeros_like(lat)
        dpx = np.zeros_like(lat)
        dpy = np.zeros_like(lat)
        warm = np.zeros_like(lat)
        sorted_lat, order = self._lat_order(lat)
        for k in range(lat_c.size):
            half = np.rad2deg(3.5 * s.radius[k] / EARTH_RADIUS)
            lo, hi = np.searchsorted(sorted_lat, [lat_c[k] - half, lat_c[k] + half])
            if hi <= lo:
                continue
            sel: slice | np.ndarray = slice(lo, hi) if order is None else order[lo:hi]
            la, lo_ = lat[sel], lon[sel]
            dlon = (lo_ - lon_c[k] + 180.0) % 360.0 - 180.0
            dx = np.deg2rad(dlon) * EARTH_RADIUS * np.cos(np.deg2rad(la))
            dy = np.deg2rad(la - lat_c[k]) * EARTH_RADIUS
            r2 = s.radius[k] ** 2
            ag = amp[k] * np.exp(-(dx * dx + dy * dy) / r2)
            p[sel] += ag
            dpx[sel] += ag * (-2.0 * dx / r2)
            dpy[sel] += ag * (-2.0 * dy / r2)
            warm[sel] -= ag * dx / s.radius[k] * np.sign(lat_c[k])
        return p, dpx, dpy, warm

    def moisture(self, lat: np.ndarray, lon: np.ndarray, hours: float,
                 p: np.ndarray, warm: np.ndarray) -> np.ndarray:
        """A dimensionless moisture index: high near lows and in warm sectors."""
        moving = self._texture(_xyz(lat, lon - 0.4 * hours), self._moving)
        return -p / 1500.0 + warm / 1500.0 + 0.45 * moving - 0.2

    def precip_rate(self, lat: np.ndarray, lon: np.ndarray, hours: float) -> np.ndarray:
        """Precipitation rate (kg m-2 h-1 = mm/h), zero outside the moist areas."""
        p, _, _, warm = self.pressure(lat, lon, hours)
        q = self.moisture(lat, lon, hours, p, warm)
        return 1.6 * np.clip(q - 0.55, 0.0, None) ** 1.5

    def state(self, lat: np.ndarray, lon: np.ndarray, hours: float, utc_hour: float
              ) -> dict[str, np.ndarray]:
        """All instantaneous fields (:data:`STATE_FIELDS`) at the points, native GRIB units."""
        p, dpx, dpy, warm = self.pressure(lat, lon, hours)
        alat = np.abs(lat)
        sinlat = np.sin(np.deg2rad(lat))
        # Climatological belts: subtropical highs, subpolar lows.
        bg = 900.0 * np.exp(-(((alat - 33.0) / 12.0) ** 2)) - 800.0 * np.exp(
            -(((alat - 62.0) / 10.0) ** 2))
        dbg_dlat = (-2.0 * 900.0 * (alat - 33.0) / 144.0 * np.exp(-(((alat - 33.0) / 12.0) ** 2))
                    + 2.0 * 800.0 * (alat - 62.0) / 100.0
                    * np.exp(-(((alat - 62.0) / 10.0) ** 2))) * np.sign(lat)
        dpy_total = dpy + dbg_dlat * 180.0 / (np.pi * EARTH_RADIUS)
        msl = 101325.0 + bg + p

        f = 2.0 * OMEGA * np.where(lat >= 0.0, 1.0, -1.0) * np.maximum(np.abs(sinlat), 0.5)
        ug = -dpy_total / (RHO * f)
        vg = dpx / (RHO * f)
        # Where two systems crowd together the balance would give hurricane-force winds;
        # saturate smoothly instead (gradient-wind effects limit real flow similarly).
        speed = np.hypot(ug, vg)
        limit = np.where(speed > 1e-6, MAX_WIND * np.tanh(speed / MAX_WIND)
                         / np.maximum(speed, 1e-6), 1.0)
        ug, vg = ug * limit, vg * limit
        # Near the ground: slower, and turned across the isobars toward low pressure.
        # Land is rougher than sea: slower and more across the isobars.
        land = self.land(lat, lon)
        alpha = np.deg2rad(15.0 + 15.0 * land) * np.where(lat >= 0.0, 1.0, -1.0)
        friction = 0.7 - 0.2 * land
        u10 = friction * (ug * np.cos(alpha) - vg * np.sin(alpha))
        v10 = friction * (ug * np.sin(alpha) + vg * np.cos(alpha))
        jet = 9.0 * np.exp(-(((alat - 45.0) / 14.0) ** 2))
        u850 = 1.15 * ug + jet
        v850 = 1.15 * vg

        static = self.static_texture(lat, lon)
        q = self.moisture(lat, lon, hours, p, warm)
        t850 = (291.0 - 30.0 * np.clip((alat - 22.0) / 45.0, 0.0, 1.3)
                + 0.0028 * warm + 1.2 * static)
        t500 = t850 - 27.0 + 0.0012 * warm - 0.0008 * p
        tcc = 100.0 / (1.0 + np.exp(-3.0 * (q - 0.1)))
        local_hour = (utc_hour + lon / 15.0) % 24.0
        diurnal = 4.5 * np.cos(2.0 * np.pi * (local_hour - 14.5) / 24.0) * (1.0 - 0.006 * tcc)
        orog = land * np.clip(700.0 * (static + 0.3), 0.0, None)
        # Seas damp the diurnal cycle and stay relatively warm in the cold season; terrain
        # is colder by the standard lapse rate.
        t2m = (t850 + 9.0 + diurnal * (0.3 + 0.9 * land) + 2.5 * (1.0 - land) + 1.0 * static
               - 0.0065 * orog)

        gh1000 = (msl - 100000.0) / (RHO * G)
        gh850 = gh1000 + RD_G * (t850 + 4.0) * np.log(1000.0 / 850.0)
        gh500 = gh1000 + RD_G * (0.5 * (t850 + t500) + 9.0) * np.log(1000.0 / 500.0)

        wind10 = np.hypot(u10, v10)
        gust10 = (1.4 + 0.35 * land) * wind10 + 2.0 + 1.5 * np.clip(q, 0.0, None)
        cape = np.clip((t2m - 282.0) * 110.0 * (0.3 + np.clip(q, 0.0, 1.5)), 0.0, 4000.0)
        rh2m = np.clip(55.0 + 30.0 * np.tanh(q), 5.0, 100.0)
        sp = msl * np.exp(-orog / 8000.0)
        pwat = np.clip(12.0 + 10.0 * q + 0.6 * (t850 - 270.0), 0.5, None)
        return {"t2m": t2m, "msl": msl, "gust10": gust10, "tcc": tcc, "u10": u10, "v10": v10,
                "u850": u850, "v850": v850, "t850": t850, "t500": t500, "gh500": gh500,
                "gh850": gh850, "gh1000": gh1000, "cape": cape, "rh2m": rh2m, "sp": sp,
                "pwat": pwat, "orog": orog}

    def extended(self, lat: np.ndarray, lon: np.ndarray, hours: float,
                 base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Fields beyond :meth:`Weather.state`, consistent with it (see :data:`EXTENDED_FIELDS`).

        Upper air: temperature follows the 850-500 hPa lapse rate (capped at a tropopause),
        heights are hypsometric from 1000 hPa, winds grow toward the jet, humidity falls with
        height. Clouds form where the layer's humidity is high; total cloud is their random
        overlap. Dewpoint never exceeds temperature; snow falls only where the surface is cold.
        """
        p, dpx, dpy, warm = self.pressure(lat, lon, hours)
        q = self.moisture(lat, lon, hours, p, warm)
        t850, t500 = base["t850"], base["t500"]
        expo = np.log(t500 / t850) / np.log(500.0 / 850.0)
        out: dict[str, np.ndarray] = {}
        temps = {lev: np.maximum(t850 * (lev / 850.0) ** expo, TROPOPAUSE_K)
                 for lev in PRESSURE_LEVELS}
        temps[850], temps[500] = t850, t500
        # Heights: keep the core 1000/850/500 hPa values, integrate the others from a neighbour.
        gh = {1000: base["gh1000"], 850: base["gh850"], 500: base["gh500"]}
        for lev, below in ((925, 1000), (700, 850), (300, 500), (250, 300)):
            tmean = 0.5 * (temps[lev] + temps[below])
            gh[lev] = gh[below] + RD_G * tmean * np.log(below / lev)
        u850, v850 = base["u850"], base["v850"]
        jet = 9.0 * np.exp(-(((np.abs(lat) - 45.0) / 14.0) ** 2))
        ug, vg = (u850 - jet) / 1.15, v850 / 1.15
        for lev in PRESSURE_LEVELS:
            fg, fj = _WIND_SHAPE[lev]
            if lev == 850:
                u, v = u850, v850
            else:
                u, v = fg * ug + fj * jet, fg * vg
            rh = np.clip(100.0 / (1.0 + np.exp(-2.4 * (q + _RH_OFFSET[lev] - 0.35))), 3.0, 100.0)
            out |= {f"t{lev}": temps[lev], f"u{lev}": u, f"v{lev}": v, f"gh{lev}": gh[lev],
                    f"r{lev}": rh}

        def cover(rh: np.ndarray, threshold: float) -> np.ndarray:
            return 100.0 * np.clip((rh - threshold) / (100.0 - threshold), 0.0, 1.0) ** 0.7

        lcc = cover(np.maximum(out["r925"], out["r850"]), 75.0)
        mcc = cover(np.maximum(out["r700"], out["r500"]), 70.0)
        hcc = cover(out["r300"], 62.0)
        out |= {"lcc": lcc, "mcc": mcc, "hcc": hcc}

        t2m, rh2m = base["t2m"], base["rh2m"]
        out["rh2m"] = rh2m
        out["td2m"] = np.minimum(dewpoint_from_rh(t2m, rh2m), t2m)
        out["cin"] = -np.where(base["cape"] > 0.0, 15.0 + 120.0 * np.clip(0.6 - q, 0.0, 1.0), 0.0)
        orog = base["orog"]
        out["hzerocl"] = np.maximum(orog + (t2m - 273.15) / 0.0065, 0.0)
        # Brightness temperature seen from space: the surface, covered layer by layer.
        bt = t2m.copy()
        for cc, top in ((lcc, temps[850]), (mcc, temps[500]), (hcc, temps[300])):
            c = cc / 100.0
            bt = bt * (1.0 - c) + top * c
        out["ir_bt"] = bt
        land = self.land(lat, lon)
        out["soil_moisture"] = np.where(land > 0.5,
                                np.clip(0.22 + 0.08 * np.tanh(q) + 0.03 * self.static_texture(
                                    lat, lon), 0.05, 0.45), 1.0)
        rate = 1.6 * np.clip(q - 0.55, 0.0, None) ** 1.5
        frozen = frozen_fraction(self.surface_temperature(lat, lon, base))
        out["prate"], out["frozen"] = rate, frozen
        return out

    def surface_temperature(self, lat: np.ndarray, lon: np.ndarray,
                            base: dict[str, np.ndarray] | None = None,
                            warm: np.ndarray | None = None) -> np.ndarray:
        """2 m temperature without its diurnal cycle: decides rain or snow (cheap, no state).

        From ``base`` (a :meth:`state`) or, during accumulation, from the warm-sector index.
        """
        if base is None:
            alat = np.abs(lat)
            static = self.static_texture(lat, lon)
            t850 = (291.0 - 30.0 * np.clip((alat - 22.0) / 45.0, 0.0, 1.3)
                    + 0.0028 * warm + 1.2 * static)
            land = self.land(lat, lon)
            orog = land * np.clip(700.0 * (static + 0.3), 0.0, None)
        else:
            t850, orog, land = base["t850"], base["orog"], self.land(lat, lon)
            static = self.static_texture(lat, lon)
        return t850 + 9.0 + 2.5 * (1.0 - land) + 1.0 * static - 0.0065 * orog

    def precip_parts(self, lat: np.ndarray, lon: np.ndarray, hours: float
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Precipitation rate (mm/h), its frozen share and its convective share at ``hours``."""
        p, _, _, warm = self.pressure(lat, lon, hours)
        q = self.moisture(lat, lon, hours, p, warm)
        rate = 1.6 * np.clip(q - 0.55, 0.0, None) ** 1.5
        frozen = frozen_fraction(self.surface_temperature(lat, lon, None, warm))
        convective = np.clip(0.25 + 0.2 * self.static_texture(lat, lon), 0.05, 0.6)
        return rate, frozen, convective
