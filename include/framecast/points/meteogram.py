"""The meteogram of one place: aligned panels over the forecast range, one PNG.

Panels, top to bottom: weather symbols; 2 m temperature and dew point (extremes annotated);
precipitation per step as rain/snow bars with the running total; 10 m wind speed, gusts and
direction barbs; mean sea level pressure; low/medium/high cloud cover. Nights (sun below the
horizon at the place) are shaded and the time axis is in the place's time zone. A panel whose
variables the run lacks says "not available" instead of failing the chart.

Figures are built with matplotlib's object API on an Agg canvas (no pyplot state), so
workers draw many of them without leaking figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from io import BytesIO
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from framecast.points.extract import PointSeries  # noqa: E402
from framecast.points.sun import night_spans  # noqa: E402
from framecast.points.symbols import SymbolSheet, draw_symbol  # noqa: E402
from framecast.points.table import PlaceTable, place_table  # noqa: E402

#: Panel names in drawing order (the PNG's ``panels`` text chunk lists them).
PANELS = ("weather", "temperature", "precipitation", "wind", "pressure", "clouds")
SIZE_PX = (1000, 1250)
DPI = 100
NOT_AVAILABLE = "not available"


@dataclass
class ChartResult:
    """What was drawn: the PNG bytes and facts tests and records read back."""

    png: bytes
    panels: dict[str, str]  # panel -> "ok" or "not available: <what>"
    annotations: dict[str, float] = field(default_factory=dict)
    size: tuple[int, int] = SIZE_PX
    boxes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)


def pixel_box(ax, size_px: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixels of an axes in the PNG (origin top left)."""
    b = ax.get_position()
    w, h = size_px
    return (int(b.x0 * w), int((1 - b.y1) * h), int(b.x1 * w), int((1 - b.y0) * h))


def png_with_text(fig: Figure, text: dict[str, str]) -> bytes:
    """The figure as PNG with ``text`` as tEXt chunks (panels, annotated values)."""
    buf = BytesIO()
    FigureCanvasAgg(fig).print_png(buf, metadata=text, pil_kwargs={"compress_level": 3})
    return buf.getvalue()


def _times(series: PointSeries) -> np.ndarray:
    return mdates.date2num(series.valid_times)


def _shade_nights(axes: list, series: PointSeries, i: int) -> None:
    place = series.places[i]
    times = series.valid_times
    for a, b in night_spans(place.lat, place.lon, times[0], times[-1]):
        x0, x1 = mdates.date2num(a), mdates.date2num(b)
        for ax in axes:
            ax.axvspan(x0, x1, color="#1b2a4a", alpha=0.07, lw=0, zorder=0)


def _missing(ax, what: str) -> str:
    ax.set_facecolor("#f2f2f2")
    ax.text(0.5, 0.5, f"{what}: {NOT_AVAILABLE}", transform=ax.transAxes, ha="center",
            va="center", fontsize=10, color="#666666")
    ax.set_yticks([])
    return f"{NOT_AVAILABLE}: {what}"


def _finite(v: np.ndarray) -> bool:
    return bool(np.isfinite(v).any())


def _temperature(ax, x, tab: PlaceTable, notes: dict[str, float]) -> str:
    if not tab.available("t2m"):
        return _missing(ax, "2 m temperature")
    t = tab.columns["t2m"]
    ax.plot(x, t, color="#d62728", lw=1.8, label="2 m temperature")
    if tab.available("td2m"):
        ax.plot(x, tab.columns["td2m"], color="#2ca02c", lw=1.3, label="dew point")
    ax.axhline(0.0, color="#1f77b4", lw=0.6, ls="--")
    hi, lo = int(np.nanargmax(t)), int(np.nanargmin(t))
    notes["t2m_max"] = round(float(t[hi]), 1)
    notes["t2m_min"] = round(float(t[lo]), 1)
    ax.annotate(f"{t[hi]:.1f}", (x[hi], t[hi]), textcoords="offset points", xytext=(0, 6),
                ha="center", fontsize=8, color="#d62728", fontweight="bold")
    ax.annotate(f"{t[lo]:.1f}", (x[lo], t[lo]), textcoords="offset points", xytext=(0, -12),
                ha="center", fontsize=8, color="#d62728", fontweight="bold")
    ax.set_ylabel("°C")
    ax.legend(loc="upper right", fontsize=7, ncol=2, frameon=False)
    return "ok"


def _precipitation(ax, x, tab: PlaceTable, notes: dict[str, float]) -> str:
    if not tab.available("precip"):
        return _missing(ax, "precipitation")
    width = np.diff(x, prepend=x[0] - (x[1] - x[0] if x.size > 1 else 1 / 24))
    rain = np.nan_to_num(tab.columns["rain"])
    snow = np.nan_to_num(tab.columns["snow"])
    left = x - width  # a step's amount fell during the interval ending at that step
    right = left + width * 0.9
    for bottom, top, colour in ((np.zeros_like(rain), rain, "#1f6fd1"),
                                (rain, rain + snow, "#9ec9f0")):
        keep = top > bottom
        verts = np.stack([np.column_stack([left, bottom]), np.column_stack([left, top]),
                          np.column_stack([right, top]), np.column_stack([right, bottom])],
                         axis=1)[keep]
        ax.add_collection(PolyCollection(verts, facecolors=colour, edgecolors="none"),
                          autolim=False)
    handles = [Patch(color="#1f6fd1", label="rain"), Patch(color="#9ec9f0", label="snow")]
    ax.set_ylabel("mm / step")
    ax.set_ylim(0, max(1.0, float(np.nanmax(rain + snow)) * 1.25))
    total = tab.columns["precip_total"]
    ax2 = ax.twinx()
    ax2.plot(x, total, color="#333333", lw=1.0, label="total")
    ax2.set_ylim(0, max(2.0, float(np.nanmax(total)) * 1.1))
    ax2.set_ylabel("total mm", fontsize=8)
    ax2.tick_params(labelsize=7)
    notes["precip_total"] = round(float(np.nanmax(total)), 1)
    ax.legend(handles=handles, loc="upper left", fontsize=7, ncol=2, frameon=False)
    return "ok"


def _wind(ax, x, tab: PlaceTable, notes: dict[str, float]) -> str:
    if not tab.available("wind10"):
        return _missing(ax, "10 m wind")
    ws = tab.columns["wind10"] * 3.6
    ax.plot(x, ws, color="#555555", lw=1.5, label="wind km/h")
    top = float(np.nanmax(ws))
    if tab.available("gust10"):
        g = tab.columns["gust10"] * 3.6
        ax.plot(x, g, color="#9467bd", lw=1.0, ls="-", label="gusts km/h")
        k = int(np.nanargmax(g))
        notes["gust10_max_kmh"] = round(float(g[k]), 0)
        ax.annotate(f"{g[k]:.0f}", (x[k], g[k]), textcoords="offset points", xytext=(0, 5),
                    ha="center", fontsize=8, color="#9467bd", fontweight="bold")
        top = max(top, float(np.nanmax(g)))
    ymax = top * 1.45 + 5
    ax.set_ylim(0, ymax)
    # direction: barbs along the top, about every 3 h (at most ~40)
    every = max(1, int(np.ceil(x.size / 40)))
    sel = np.arange(0, x.size, every)
    u = -np.sin(np.deg2rad(tab.columns["wind10_dir"])) * tab.columns["wind10"] / 0.514444
    v = -np.cos(np.deg2rad(tab.columns["wind10_dir"])) * tab.columns["wind10"] / 0.514444
    ax.barbs(x[sel], np.full(sel.size, ymax * 0.86), u[sel], v[sel], length=5, lw=0.6,
             color="#333333")
    ax.set_ylabel("km/h")
    ax.legend(loc="upper left", fontsize=7, ncol=2, frameon=False, bbox_to_anchor=(0, 0.75))
    return "ok"


def _pressure(ax, x, tab: PlaceTable, notes: dict[str, float]) -> str:
    if not tab.available("msl"):
        return _missing(ax, "mean sea level pressure")
    p = tab.columns["msl"]
    ax.plot(x, p, color="#8c564b", lw=1.5)
    notes["msl_min"] = round(float(np.nanmin(p)), 1)
    lo, hi = float(np.nanmin(p)), float(np.nanmax(p))
    ax.set_ylim(lo - max(2.0, 0.1 * (hi - lo)), hi + max(2.0, 0.1 * (hi - lo)))
    ax.set_ylabel("hPa")
    return "ok"


def _clouds(ax, x, tab: PlaceTable, notes: dict[str, float]) -> str:
    names = [("cloud_low", "low"), ("cloud_mid", "mid"), ("cloud_high", "high")]
    have = [tab.available(n) for n, _ in names]
    if not any(have) and not tab.available("cloud_total"):
        return _missing(ax, "cloud cover")
    edges = np.concatenate([[x[0] - (x[1] - x[0]) / 2 if x.size > 1 else x[0] - 0.02],
                            (x[:-1] + x[1:]) / 2,
                            [x[-1] + (x[-1] - x[-2]) / 2 if x.size > 1 else x[0] + 0.02]])
    rows = np.vstack([np.nan_to_num(tab.columns[n]) if h else np.zeros(x.size)
                      for (n, _), h in zip(names, have, strict=True)])
    if any(have):
        ax.pcolormesh(edges, [0, 1, 2, 3], rows, cmap="Greys", vmin=0, vmax=110,
                      shading="flat", zorder=1)
        ax.set_yticks([0.5, 1.5, 2.5], [lbl if h else f"{lbl} (n/a)"
                                        for (_, lbl), h in zip(names, have, strict=True)])
        ax.set_ylim(0, 3)
    if tab.available("cloud_total"):  # total cover on the same axes: 0-100 % -> 0-3
        ax.plot(x, tab.columns["cloud_total"] * 0.03, color="#1f77b4", lw=0.9,
                label="total cloud cover (0-100 %)")
        ax.set_ylim(0, 3.05)
        ax.legend(loc="upper right", fontsize=7, frameon=False)
    return "ok" if all(have) else f"partly: {', '.join(lbl for (_, lbl), h in zip(names, have, strict=True) if not h)} {NOT_AVAILABLE}"


def _weather(ax, x, tab: PlaceTable, series: PointSeries, i: int) -> str:
    ax.set_yticks([])
    ax.set_ylim(0, 1)
    if not tab.available("ww"):
        return _missing(ax, "weather (no WW, no cloud cover)")
    ww = tab.columns["ww"]
    times = series.valid_times
    # one symbol about every 3 h (at most 40), marking the most significant code in the span
    every = max(1, int(np.ceil(x.size / 40)))
    place = series.places[i]
    from framecast.points.sun import solar_elevation

    elev = solar_elevation(place.lat, place.lon, times)
    span = float(x[-1] - x[0]) or 1.0
    bbox = ax.get_window_extent()
    aspect = (span / bbox.width) / (1.0 / bbox.height)
    size = span / 40 * 0.42
    sheet = SymbolSheet()
    for k in range(0, x.size, every):
        chunk = ww[k:k + every]
        if not _finite(chunk):
            continue
        code = float(np.nanmax(chunk))
        draw_symbol(sheet, float(x[k]), 0.5, code, size=size, aspect=1.0 / aspect,
                    night=bool(elev[k] < 0))
    sheet.add_to(ax)
    src = "model WW" if tab.ww_source == "model" else "derived from cloud and precipitation"
    ax.text(1.0, 1.02, f"weather ({src})", transform=ax.transAxes, ha="right", va="bottom",
            fontsize=7, color="#666666")
    return "ok"


def draw_meteogram(series: PointSeries, i: int, *, size_px: tuple[int, int] = SIZE_PX
                   ) -> ChartResult:
    """The meteogram of place number ``i`` of ``series`` as a PNG."""
    tab = place_table(series, i)
    place = series.places[i]
    tz = ZoneInfo(place.tz)
    fig = Figure(figsize=(size_px[0] / DPI, size_px[1] / DPI), dpi=DPI)
    grid = fig.add_gridspec(6, 1, height_ratios=[0.55, 2.0, 1.5, 1.5, 1.1, 1.0], hspace=0.12,
                            left=0.075, right=0.925, top=0.93, bottom=0.05)
    axes = [fig.add_subplot(grid[0])]
    axes += [fig.add_subplot(grid[k], sharex=axes[0]) for k in range(1, 6)]
    x = _times(series)
    notes: dict[str, float] = {}
    panels = {
        "weather": "",
        "temperature": _temperature(axes[1], x, tab, notes),
        "precipitation": _precipitation(axes[2], x, tab, notes),
        "wind": _wind(axes[3], x, tab, notes),
        "pressure": _pressure(axes[4], x, tab, notes),
        "clouds": _clouds(axes[5], x, tab, notes),
    }
    axes[0].set_xlim(x[0], x[-1])
    panels["weather"] = _weather(axes[0], x, tab, series, i)
    _shade_nights(axes, series, i)
    for ax in axes:
        ax.grid(True, axis="x", color="#dddddd", lw=0.5)
        ax.tick_params(labelsize=8)
        ax.xaxis.set_major_locator(mdates.DayLocator(tz=tz))
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%a %d %b", tz=tz))
    axes[-1].set_xlabel(f"local time ({place.tz})", fontsize=8)
    title = (f"{place.name}  {place.lat:.2f}°N {place.lon:.2f}°E"
             + (f"  {place.elevation:.0f} m" if place.elevation is not None else ""))
    fig.suptitle(title, x=0.075, ha="left", y=0.985, fontsize=13, fontweight="bold")
    fig.text(0.075, 0.948, f"{series.model.upper()} run {series.run_time:%Y-%m-%d %H} UTC, "
             f"+{series.steps[0]}..+{series.steps[-1]} h; grid point "
             f"{series.grid_lat[i]:.3f}°N {series.grid_lon[i]:.3f}°E ({series.method})",
             fontsize=8, color="#444444")
    text = {"panels": ";".join(f"{k}={v}" for k, v in panels.items()),
            "annotations": ";".join(f"{k}={v}" for k, v in notes.items()),
            "place": place.name, "run": series.run_time.isoformat(), "model": series.model}
    boxes = {name: pixel_box(ax, size_px) for name, ax in zip(PANELS, axes, strict=True)}
    return ChartResult(png_with_text(fig, text), panels, notes, size_px, boxes)


__all__ = ["PANELS", "ChartResult", "draw_meteogram", "png_with_text", "datetime"]
