"""Time-height section of one place: temperature, humidity/cloud and wind on pressure levels.

Relative humidity is filled (greens from 70 %, where cloud is likely), temperature is
contoured every 4 °C with 0 °C bold, wind barbs (knots) thinned to about 40 columns. The
vertical axis is pressure (log scale, 1000 hPa at the bottom) for the levels the run has
between 1000 and 300 hPa; the time axis is in the place's time zone, as on the meteogram.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import matplotlib.dates as mdates
import numpy as np
from matplotlib.figure import Figure

from framecast.points.extract import PointSeries
from framecast.points.meteogram import (
    DPI,
    NOT_AVAILABLE,
    ChartResult,
    pixel_box,
    png_with_text,
)
from framecast.points.table import place_table

SIZE_PX = (1000, 600)
PANELS = ("section",)


def draw_section(series: PointSeries, i: int, *, size_px: tuple[int, int] = SIZE_PX
                 ) -> ChartResult:
    """The time-height section of place number ``i`` of ``series`` as a PNG."""
    tab = place_table(series, i)
    place = series.places[i]
    tz = ZoneInfo(place.tz)
    fig = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI)
    ax = fig.add_axes((0.075, 0.1, 0.85, 0.78))
    x = mdates.date2num(series.valid_times)
    levels = series.levels("t")
    notes: dict[str, float] = {}
    if len(levels) < 2:
        ax.set_facecolor("#f2f2f2")
        ax.text(0.5, 0.5, f"pressure-level temperature: {NOT_AVAILABLE}",
                transform=ax.transAxes, ha="center", va="center", color="#666666")
        status = f"{NOT_AVAILABLE}: pressure-level temperature"
    else:
        partly: list[str] = []
        p = np.asarray(levels, dtype=float)
        t = np.vstack([tab.columns[f"t{lev}"] for lev in levels])
        rh_levels = [lev for lev in levels if f"r{lev}" in tab.columns]
        if len(rh_levels) >= 2:
            rh = np.vstack([tab.columns[f"r{lev}"] for lev in rh_levels])
            cf = ax.contourf(x, np.asarray(rh_levels, float), rh,
                             levels=[70, 80, 90, 95, 101], cmap="Greens", alpha=0.75,
                             extend="neither")
            cb = fig.colorbar(cf, ax=ax, pad=0.01, fraction=0.03)
            cb.set_label("relative humidity %", fontsize=8)
            notes["rh_max"] = round(float(np.nanmax(rh)), 1)
        else:
            ax.text(0.99, 0.01, f"humidity: {NOT_AVAILABLE}", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=8, color="#666666")
            partly.append("humidity")
        lo = 4 * np.floor(np.nanmin(t) / 4)
        hi = 4 * np.ceil(np.nanmax(t) / 4)
        cs = ax.contour(x, p, t, levels=np.arange(lo, hi + 4, 4), colors="#c0392b",
                        linewidths=0.8)
        ax.clabel(cs, fmt="%d", fontsize=7)
        if np.nanmin(t) < 0 < np.nanmax(t):
            ax.contour(x, p, t, levels=[0], colors="#1f4fd1", linewidths=2.0)
        notes["t_min_section"] = round(float(np.nanmin(t)), 1)
        wind_levels = [lev for lev in levels if f"u{lev}" in tab.columns
                       and f"v{lev}" in tab.columns]
        if wind_levels:
            every = max(1, int(np.ceil(x.size / 40)))
            sel = np.arange(0, x.size, every)
            xx, pp = np.meshgrid(x[sel], np.asarray(wind_levels, float))
            u = np.vstack([tab.columns[f"u{lev}"][sel] for lev in wind_levels]) / 0.514444
            v = np.vstack([tab.columns[f"v{lev}"][sel] for lev in wind_levels]) / 0.514444
            ax.barbs(xx, pp, u, v, length=5, lw=0.5, color="#222222")
        else:
            partly.append("wind")
        ax.set_yscale("log")
        ax.set_ylim(max(p) + 15, min(p) - 15)
        ax.set_yticks(p, [f"{lev:.0f}" for lev in p])
        ax.minorticks_off()
        ax.set_ylabel("hPa")
        status = f"partly: {', '.join(partly)} {NOT_AVAILABLE}" if partly else "ok"
    ax.set_xlim(x[0], x[-1])
    ax.xaxis.set_major_locator(mdates.DayLocator(tz=tz))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=tz))
    ax.grid(True, axis="x", color="#cccccc", lw=0.5)
    ax.tick_params(labelsize=8)
    ax.set_xlabel(f"local time ({place.tz})", fontsize=8)
    fig.suptitle(f"{place.name}: temperature (°C), humidity and wind (kt) aloft", x=0.075,
                 ha="left", y=0.97, fontsize=12, fontweight="bold")
    fig.text(0.075, 0.905, f"{series.model.upper()} run {series.run_time:%Y-%m-%d %H} UTC; "
             f"grid point {series.grid_lat[i]:.3f}°N {series.grid_lon[i]:.3f}°E",
             fontsize=8, color="#444444")
    panels = {"section": status}
    text = {"panels": f"section={status}",
            "annotations": ";".join(f"{k}={v}" for k, v in notes.items()),
            "place": place.name, "run": series.run_time.isoformat(), "model": series.model}
    return ChartResult(png_with_text(fig, text), panels, notes, size_px,
                       {"section": pixel_box(ax, size_px)})
