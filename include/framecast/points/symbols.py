"""Weather symbols drawn with matplotlib patches from a WMO 4677 code: no icon files.

The code is the model's ``WW`` where it has one, otherwise derived from cloud cover,
precipitation rate, temperature and CAPE (:func:`derived_weather_code`). Symbols are grouped
into a few classes a reader knows (clear, partly cloudy, cloudy, fog, drizzle/rain, showers,
snow, thunderstorm) and each is drawn from circles, ellipses and lines at a given spot.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Ellipse, Polygon

#: symbol class -> codes (WMO 4677 present weather)
CLASSES = ("clear", "partly", "cloudy", "fog", "rain", "showers", "snow", "thunder")


def symbol_class(ww: float, night: bool = False) -> str | None:
    """The symbol class of code ``ww`` (None for a missing code); ``night`` is for callers
    that pick a moon instead of a sun."""
    if not np.isfinite(ww):
        return None
    c = int(round(ww))
    if c >= 95:
        return "thunder"
    if 85 <= c <= 86 or 70 <= c <= 79 or c in (22, 26):
        return "snow"
    if 80 <= c <= 84 or c == 25:
        return "showers"
    if 50 <= c <= 69 or c in (20, 21, 24):
        return "rain"
    if 40 <= c <= 49:
        return "fog"
    if c == 3:
        return "cloudy"
    if c in (1, 2):
        return "partly"
    return "clear"


def derived_weather_code(cloud_pct: np.ndarray, t2m_c: np.ndarray, cape: np.ndarray,
                         rate_mm_h: np.ndarray) -> np.ndarray:
    """A WMO 4677 code from total cloud (%), 2 m temperature (°C), CAPE and rain rate (mm/h).

    For models without ``WW`` (GFS): cloud classes 0-3, rain 61/63/65 or snow 71/73/75 by
    intensity (snow at or below 1 °C), thunderstorm 95 for showers with CAPE above 800 J/kg.
    """
    cloud = np.asarray(cloud_pct, float)
    ww = np.select([cloud < 12.5, cloud < 50.0, cloud < 87.5], [0.0, 1.0, 2.0], 3.0)
    rate = np.nan_to_num(np.asarray(rate_mm_h, float), nan=0.0)
    snow = np.asarray(t2m_c, float) <= 1.0
    for limit, rain_code, snow_code in ((0.1, 61.0, 71.0), (1.0, 63.0, 73.0), (4.0, 65.0, 75.0)):
        ww = np.where(rate >= limit, np.where(snow, snow_code, rain_code), ww)
    cape = np.nan_to_num(np.asarray(cape, float), nan=0.0)
    ww = np.where((rate >= 0.5) & (cape > 800.0) & ~snow, 95.0, ww)
    return np.where(np.isfinite(cloud), ww, np.nan)


class SymbolSheet:
    """Shapes of many symbols, added to an axes as a few collections at the end.

    One artist per ellipse or ray would make matplotlib update data limits and draw
    hundreds of artists per meteogram; collections keep symbols a few milliseconds.
    """

    def __init__(self) -> None:
        self.patches: list = []
        self.colours: list[str] = []
        self.segments: list = []
        self.seg_colours: list[str] = []
        self.seg_widths: list[float] = []

    def patch(self, patch, colour: str) -> None:
        self.patches.append(patch)
        self.colours.append(colour)

    def line(self, xs, ys, colour: str, lw: float) -> None:
        self.segments.append(np.column_stack([xs, ys]))
        self.seg_colours.append(colour)
        self.seg_widths.append(lw)

    def add_to(self, ax: Axes) -> None:
        from matplotlib.collections import LineCollection, PatchCollection

        if self.patches:
            ax.add_collection(PatchCollection(self.patches, facecolors=self.colours,
                                              edgecolors="none", zorder=5), autolim=False)
        if self.segments:
            ax.add_collection(LineCollection(self.segments, colors=self.seg_colours,
                                             linewidths=self.seg_widths, zorder=7),
                              autolim=False)


def _sun(sheet: SymbolSheet, x: float, y: float, r: float, aspect: float, night: bool) -> None:
    colour = "#cfd8e8" if night else "#f5b800"
    sheet.patch(Ellipse((x, y), 2 * r, 2 * r * aspect), colour)
    if not night:
        for a in np.linspace(0, 2 * np.pi, 8, endpoint=False):
            sheet.line([x + 1.3 * r * np.cos(a), x + 1.7 * r * np.cos(a)],
                       [y + 1.3 * r * aspect * np.sin(a), y + 1.7 * r * aspect * np.sin(a)],
                       colour, 0.8)


def _cloud(sheet: SymbolSheet, x: float, y: float, r: float, aspect: float, dark: bool) -> None:
    colour = "#7d8794" if dark else "#b9c2cc"
    for dx, dy, s in ((-0.55, 0.0, 0.8), (0.0, 0.35, 1.0), (0.6, 0.0, 0.85)):
        sheet.patch(Ellipse((x + dx * r, y + dy * r * aspect), 2 * s * r, 1.4 * s * r * aspect),
                    colour)


def _flake(sheet: SymbolSheet, x: float, y: float, r: float, aspect: float) -> None:
    for a in (0.0, np.pi / 3, 2 * np.pi / 3):
        sheet.line([x - r * np.cos(a), x + r * np.cos(a)],
                   [y - r * aspect * np.sin(a), y + r * aspect * np.sin(a)], "#4aa3df", 0.9)


def draw_symbol(sheet: SymbolSheet, x: float, y: float, ww: float, *, size: float,
                aspect: float, night: bool = False) -> str | None:
    """Add the symbol of ``ww`` centred at data coordinates (x, y) to ``sheet``; its class.

    ``size`` is the radius in x units, ``aspect`` the y units per x unit on screen (so
    circles stay round).
    """
    kind = symbol_class(ww, night)
    if kind is None:
        return None
    r = size
    if kind == "clear":
        _sun(sheet, x, y, r * 0.7, aspect, night)
        return kind
    if kind == "partly":
        _sun(sheet, x - 0.4 * r, y + 0.35 * r * aspect, r * 0.55, aspect, night)
        _cloud(sheet, x + 0.2 * r, y - 0.2 * r * aspect, r * 0.6, aspect, False)
        return kind
    dark = kind in ("rain", "showers", "thunder", "snow")
    _cloud(sheet, x, y + 0.25 * r * aspect, r * 0.7, aspect, dark)
    below = y - 0.65 * r * aspect
    if kind == "fog":
        for k in range(3):
            yy = y - (0.3 + 0.3 * k) * r * aspect
            sheet.line([x - 0.8 * r, x + 0.8 * r], [yy, yy], "#8a8f96", 1.0)
    elif kind in ("rain", "showers"):
        for dx in (-0.45, 0.0, 0.45):
            sheet.line([x + dx * r, x + (dx - 0.15) * r], [below, below - 0.35 * r * aspect],
                       "#1f6fd1", 1.2)
        if kind == "showers":
            _sun(sheet, x - 0.75 * r, y + 0.75 * r * aspect, r * 0.3, aspect, night)
    elif kind == "snow":
        for dx in (-0.45, 0.0, 0.45):
            _flake(sheet, x + dx * r, below - 0.15 * r * aspect, 0.15 * r, aspect)
    elif kind == "thunder":
        pts = np.array([[0.1, 0.0], [-0.25, -0.5], [0.0, -0.5], [-0.2, -1.0], [0.35, -0.35],
                        [0.08, -0.35], [0.3, 0.0]])
        sheet.patch(Polygon(np.column_stack([x + pts[:, 0] * r,
                                             below + 0.3 * r * aspect + pts[:, 1] * r * aspect])),
                    "#f2c200")
    return kind


__all__ = ["CLASSES", "SymbolSheet", "derived_weather_code", "draw_symbol", "symbol_class"]
