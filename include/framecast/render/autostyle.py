"""Automatic chart styles for ``framecast plot``: levels from the data, a palette by kind.

A forecaster plotting a field nobody has configured wants a readable chart at once: colour
levels at round numbers spanning the data (robust to outliers: the 1st..99th percentile over
all frames), units a reader expects (degC, hPa), a palette that says what the quantity is
(blue-to-red for temperature, greys for cloud, blues for precipitation), and a map of the
data's own area when no region is named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from framecast.field import Field
from framecast.products import FilledLayer, Product, Region

#: Palette, display units and transparent-below-first-level per kind (catalogue ``kind``).
KIND_STYLE: dict[str, tuple[str, dict[str, str], bool]] = {
    "temperature": ("RdYlBu_r", {"K": "degC"}, False),
    "pressure": ("viridis", {"Pa": "hPa"}, False),
    "precipitation": ("YlGnBu", {"kg m**-2": "mm", "m": "mm"}, True),
    "snow": ("PuBu", {"kg m**-2": "mm"}, True),
    "wind": ("YlOrRd", {"m s**-1": "km/h"}, False),
    "cloud": ("Greys", {"(0 - 1)": "%"}, False),
    "humidity": ("BrBG", {"(0 - 1)": "%"}, False),
    "height": ("Spectral_r", {"gpm": "dam"}, False),
    "energy": ("magma_r", {}, True),
    "moisture": ("YlGnBu", {}, False),
    "radiance": ("Greys", {}, False),
    "category": ("tab10", {}, False),
    # departures from normal: never shifted by an offset (K stays K), levels centred on 0
    "anomaly": ("RdBu_r", {"gpm": "dam", "Pa": "hPa"}, False),
    "other": ("viridis", {}, False),
}
#: Kind guessed from the units of a GRIB field outside the catalogue.
KIND_BY_UNITS = {"K": "temperature", "Pa": "pressure", "kg m**-2": "precipitation",
                 "m s**-1": "wind", "%": "humidity", "gpm": "height", "J kg**-1": "energy",
                 "(0 - 1)": "cloud"}


@dataclass(frozen=True)
class Style:
    kind: str
    units: str
    cmap: str
    levels: np.ndarray
    min_value: float | None


def kind_of(name: str, units: str) -> str:
    """The catalogue kind of ``name``, or a guess from its units for GRIB names."""
    from framecast.variables import load_catalogue

    cat = load_catalogue()
    if cat.base(name) is not None or cat.derived(name) is not None:
        return cat.kind_of(name)
    return KIND_BY_UNITS.get(units, "other")


def nice_levels(lo: float, hi: float, n: int = 12) -> np.ndarray:
    """About ``n`` classes at round numbers covering ``lo``..``hi``."""
    from matplotlib.ticker import MaxNLocator

    if not np.isfinite(lo) or not np.isfinite(hi):
        return np.array([0.0, 1.0])
    if hi <= lo:
        pad = max(abs(lo) * 0.05, 0.5)
        lo, hi = lo - pad, hi + pad
    levels = MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    return np.asarray(levels, dtype=np.float64)


def auto_style(name: str, fields: Iterable[Field], units: str | None = None) -> Style:
    """Style for ``name`` from its frames (converted to the display units first)."""
    fields = list(fields)
    native = fields[0].units
    kind = kind_of(name, native)
    cmap, unit_map, transparent_low = KIND_STYLE.get(kind, KIND_STYLE["other"])
    shown = units or unit_map.get(native, native)
    lo, hi = np.inf, -np.inf
    for f in fields:
        vals = f.to(shown).values
        finite = vals[np.isfinite(vals)]
        if finite.size:
            a, b = np.percentile(finite, [1, 99])
            lo, hi = min(lo, float(a)), max(hi, float(b))
    if transparent_low and np.isfinite(hi) and hi > 0:
        lo = 0.0
    if kind == "anomaly" and np.isfinite(hi):
        lo, hi = -max(abs(lo), abs(hi)), max(abs(lo), abs(hi))
    levels = nice_levels(lo, hi)
    min_value = None
    if transparent_low:
        levels = levels[levels > 0] if (levels > 0).sum() >= 2 else levels
        min_value = float(levels[0])
    return Style(kind, shown, cmap, levels, min_value)


def filled_layer(name: str, style: Style, label: str) -> FilledLayer:
    import matplotlib as mpl

    extend = "max" if style.min_value is not None else "both"
    n = style.levels.size + 1 + (extend == "both")
    cmap = mpl.colormaps[style.cmap].resampled(max(n, 2))
    return FilledLayer(field=name, levels=style.levels, cmap=cmap, units=style.units,
                       extend=extend, min_value=style.min_value, colorbar_label=label)


def auto_region(field: Field) -> Region:
    """A plate carrée map of the data's own area (the whole globe when it is global)."""
    lats = np.asarray(field.grid.lats, dtype=np.float64)
    lons = np.asarray(field.grid.lons, dtype=np.float64)
    la0, la1 = float(np.nanmin(lats)), float(np.nanmax(lats))
    span = float(np.nanmax(lons) - np.nanmin(lons))
    if field.grid.kind == "regular":
        step = abs(float(lons[1] - lons[0])) if lons.size > 1 else 0.0
        span += step
    if span >= 350.0 and la1 - la0 >= 150.0:
        return Region("data", "the data's area (global)", None, "platecarree",
                      coastline_scale="110m")
    if field.grid.kind == "regular":
        lo0, lo1 = float(lons.min()), float(lons.max())
    else:  # points may straddle the date line; take the shorter span
        shifted = np.mod(lons, 360.0)
        if np.ptp(shifted) < np.ptp(lons):
            lons = shifted
        lo0, lo1 = float(lons.min()), float(lons.max())
    centre = (lo0 + lo1) / 2.0
    args = {"central_longitude": centre} if lo1 > 180.0 else {}
    return Region("data", "the data's area", (lo0, lo1, max(-90.0, la0), min(90.0, la1)),
                  "platecarree", projection_args=args, coastline_scale="50m")


def plot_product(name: str, title: str, layer: FilledLayer, region: str,
                 size: tuple[int, int]) -> Product:
    return Product(
        name="plot", title=title, layers=(layer,), regions=(region,), size=size,
        title_template="{title}\n{model}   valid {valid:%a %d %b %Y %H:%M} UTC   "
                       "(+{step} h from {run:%Y-%m-%d %H} UTC)",
        filename="{product}_{region}_{valid:%Y%m%d%H%M}_{step:03d}.png")
