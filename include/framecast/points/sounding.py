"""Skew-T/log-p soundings with MetPy: the profile of a place at one forecast step.

Temperature and dew point (from relative humidity) on the run's pressure levels, wind barbs,
the surface parcel's path with CAPE and CIN shaded, the LCL marked, and a hodograph inset.
CAPE/CIN are MetPy's ``surface_based_cape_cin`` of exactly the plotted profile; levels below
the place's ground (when its elevation is known) are left out.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from framecast.points.extract import PointSeries
from framecast.points.meteogram import DPI, NOT_AVAILABLE, ChartResult, png_with_text

SIZE_PX = (900, 900)
PANELS = ("skewt", "hodograph")


def profile(series: PointSeries, i: int, step: int) -> dict[str, np.ndarray]:
    """Pressure (hPa, descending), T (°C), RH (%), u/v (m/s) of place ``i`` at ``step``.

    Levels with a missing value are dropped; so are levels below the ground at the place's
    elevation (pressure from the mean sea level pressure and an 8 km scale height).
    """
    if step not in series.steps:
        raise KeyError(step)
    k = series.steps.index(step)
    levels = [lev for lev in series.levels("t") if lev in series.levels("r")]
    if series.places[i].elevation is not None and "msl" in series.values:
        ground = series.values["msl"][k, i] / 100.0 * np.exp(-series.places[i].elevation
                                                             / 8000.0)
        if np.isfinite(ground):
            levels = [lev for lev in levels if lev <= ground]
    rows = []
    for lev in levels:
        t = series.values[f"t{lev}"][k, i] - 273.15
        r = series.values[f"r{lev}"][k, i]
        u = series.values.get(f"u{lev}", np.full((1, 1), np.nan))[k if f"u{lev}" in
                                                                   series.values else 0, i]
        v = series.values.get(f"v{lev}", np.full((1, 1), np.nan))[k if f"v{lev}" in
                                                                   series.values else 0, i]
        if np.isfinite(t) and np.isfinite(r):
            rows.append((lev, t, r, u, v))
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return {"p": arr[:, 0], "t": arr[:, 1], "rh": arr[:, 2], "u": arr[:, 3], "v": arr[:, 4]}


def draw_sounding(series: PointSeries, i: int, step: int, *,
                  size_px: tuple[int, int] = SIZE_PX) -> ChartResult:
    """The Skew-T of place number ``i`` at forecast hour ``step`` as a PNG."""
    import metpy.calc as mpcalc
    from metpy.plots import Hodograph, SkewT
    from metpy.units import units
    from mpl_toolkits.axes_grid1.inset_locator import inset_axes

    place = series.places[i]
    prof = profile(series, i, step)
    fig = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI)
    skew = SkewT(fig, rotation=45, rect=(0.1, 0.07, 0.85, 0.83))
    notes: dict[str, float] = {}
    panels = {"skewt": "ok", "hodograph": "ok"}
    if prof["p"].size < 3:
        skew.ax.text(0.5, 0.5, f"profile (T and RH on >= 3 levels): {NOT_AVAILABLE}",
                     transform=skew.ax.transAxes, ha="center", color="#666666")
        panels = {"skewt": f"{NOT_AVAILABLE}: profile", "hodograph": f"{NOT_AVAILABLE}"}
    else:
        p = prof["p"] * units.hPa
        t = prof["t"] * units.degC
        td = mpcalc.dewpoint_from_relative_humidity(t, prof["rh"] * units.percent)
        parcel = mpcalc.parcel_profile(p, t[0], td[0]).to("degC")
        cape, cin = mpcalc.surface_based_cape_cin(p, t, td)
        lcl_p, lcl_t = mpcalc.lcl(p[0], t[0], td[0])
        skew.plot(p, t, "#d62728", lw=2, label="temperature")
        skew.plot(p, td, "#2ca02c", lw=2, label="dew point")
        skew.plot(p, parcel, "k", lw=1.2, ls="--", label="surface parcel")
        skew.shade_cape(p, t, parcel)
        skew.shade_cin(p, t, parcel, td)
        skew.plot(lcl_p, lcl_t, "ko", markerfacecolor="black")
        skew.ax.annotate("LCL", (lcl_t.m, lcl_p.m), xytext=(8, 0), textcoords="offset points",
                         fontsize=8)
        skew.plot_dry_adiabats(lw=0.5, alpha=0.4)
        skew.plot_moist_adiabats(lw=0.5, alpha=0.4)
        skew.plot_mixing_lines(lw=0.5, alpha=0.4)
        finite = np.isfinite(prof["u"]) & np.isfinite(prof["v"])
        if finite.any():
            skew.plot_barbs(p[finite], (prof["u"][finite] * units("m/s")).to("knots"),
                            (prof["v"][finite] * units("m/s")).to("knots"))
        skew.ax.set_ylim(1050, 250)
        skew.ax.set_xlim(-40, 40)
        skew.ax.legend(loc="lower left", fontsize=8)
        notes["cape"] = round(float(cape.m_as("J/kg")), 1)
        notes["cin"] = round(float(cin.m_as("J/kg")), 1)
        notes["lcl_hpa"] = round(float(lcl_p.m_as("hPa")), 1)
        skew.ax.text(0.02, 0.98, f"SB CAPE {notes['cape']:.0f} J/kg\nSB CIN {notes['cin']:.0f} "
                     f"J/kg\nLCL {notes['lcl_hpa']:.0f} hPa", transform=skew.ax.transAxes,
                     va="top", fontsize=9, bbox={"fc": "white", "alpha": 0.8, "lw": 0})
        ax_hod = inset_axes(skew.ax, "30%", "30%", loc="upper right")
        if finite.sum() >= 2:
            speed = float(np.nanmax(np.hypot(prof["u"], prof["v"])))
            h = Hodograph(ax_hod, component_range=max(10.0, 10 * np.ceil(speed / 10)))
            h.add_grid(increment=10)
            h.plot_colormapped(prof["u"][finite], prof["v"][finite], prof["p"][finite])
            ax_hod.set_title("hodograph (m/s)", fontsize=7)
            ax_hod.tick_params(labelsize=6)
        else:
            ax_hod.text(0.5, 0.5, NOT_AVAILABLE, ha="center", fontsize=7)
            panels["hodograph"] = f"{NOT_AVAILABLE}: wind profile"
    valid = series.valid_times[series.steps.index(step)]
    fig.suptitle(f"{place.name}: sounding +{step:03d} h (valid {valid:%Y-%m-%d %H} UTC)",
                 fontsize=12, fontweight="bold")
    fig.text(0.5, 0.93, f"{series.model.upper()} run {series.run_time:%Y-%m-%d %H} UTC; "
             f"grid point {series.grid_lat[i]:.3f}°N {series.grid_lon[i]:.3f}°E",
             fontsize=8, ha="center", color="#444444")
    text = {"panels": ";".join(f"{k}={v}" for k, v in panels.items()),
            "annotations": ";".join(f"{k}={v}" for k, v in notes.items()),
            "place": place.name, "run": series.run_time.isoformat(), "model": series.model,
            "step": str(step)}
    return ChartResult(png_with_text(fig, text), panels, notes, size_px)
