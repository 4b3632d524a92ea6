"""Colour schemes for choropleth maps: binned N-class schemes or a continuous ramp.

A :class:`ColorScale` turns a vector of per-country values into indices into a small colour
table, so the renderer's per-frame work is one palette update, whatever the scheme. Everything
here is pure (no I/O) and cheap; matplotlib is only used to sample named colormaps once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from framecast.errors import SpecError

Kind = Literal["binned", "continuous"]
_SCHEMES = ("equal_interval", "log")
_LEGENDS = ("auto", "legend", "colorbar", "none")


def parse_color(value: Any, where: str) -> tuple[int, int, int]:
    """'#rrggbb', a matplotlib colour name or an (r, g, b) triple -> 8-bit RGB."""
    from matplotlib.colors import to_rgb

    try:
        if isinstance(value, (list, tuple)) and len(value) == 3 and max(value) > 1:
            return tuple(int(round(float(c))) for c in value)  # type: ignore[return-value]
        r, g, b = to_rgb(value)
    except (ValueError, TypeError) as exc:
        raise SpecError(f"{where}: {value!r} is not a colour") from exc
    return int(round(r * 255)), int(round(g * 255)), int(round(b * 255))


@dataclass(frozen=True)
class Style:
    """How values become colours and what surrounds the map (title, legend, colours)."""

    kind: Kind = "binned"
    cmap: str = "YlOrRd"
    classes: int = 7
    breaks: tuple[float, ...] | None = None
    scheme: str = "equal_interval"
    vmin: float | None = None
    vmax: float | None = None
    nodata_color: tuple[int, int, int] = (200, 200, 200)
    ocean_color: tuple[int, int, int] = (223, 234, 242)
    background: tuple[int, int, int] = (255, 255, 255)
    border_color: tuple[int, int, int] = (255, 255, 255)
    border_width: float = 0.5
    text_color: tuple[int, int, int] = (30, 30, 30)
    legend: str = "auto"
    legend_title: str = ""
    number_format: str = "{:,.4g}"
    title: str = "{time:%Y-%m-%d}"
    caption: str = ""
    credit: str = ""
    font_size: int = 22
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def legend_kind(self) -> str:
        if self.legend == "auto":
            return "legend" if self.kind == "binned" else "colorbar"
        return self.legend


def style_from_dict(d: dict[str, Any] | None, where: str = "style") -> Style:
    """Validate a YAML ``style:`` mapping; errors name the offending key and value."""
    d = dict(d or {})
    known = {f for f in Style.__dataclass_fields__ if f != "extra"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    kw: dict[str, Any] = {}
    for key, val in d.items():
        w = f"{where}.{key}"
        if key.endswith("_color") or key == "background":
            kw[key] = parse_color(val, w)
        elif key == "kind":
            if val not in ("binned", "continuous"):
                raise SpecError(f"{w}: {val!r} is not 'binned' or 'continuous'")
            kw[key] = val
        elif key == "classes":
            if not isinstance(val, int) or not 2 <= val <= 20:
                raise SpecError(f"{w}: {val!r} must be an integer between 2 and 20")
            kw[key] = val
        elif key == "breaks":
            try:
                b = tuple(float(x) for x in val)
            except (TypeError, ValueError) as exc:
                raise SpecError(f"{w}: {val!r} must be a list of numbers") from exc
            if len(b) < 1 or any(b2 <= b1 for b1, b2 in zip(b, b[1:], strict=False)):
                raise SpecError(f"{w}: {list(b)} must be strictly increasing and non-empty")
            kw[key] = b
        elif key == "scheme":
            if val not in _SCHEMES:
                raise SpecError(f"{w}: {val!r} is not one of {_SCHEMES}")
            kw[key] = val
        elif key == "legend":
            if val not in _LEGENDS:
                raise SpecError(f"{w}: {val!r} is not one of {_LEGENDS}")
            kw[key] = val
        elif key in ("vmin", "vmax", "border_width"):
            try:
                kw[key] = None if val is None else float(val)
            except (TypeError, ValueError) as exc:
                raise SpecError(f"{w}: {val!r} is not a number") from exc
        elif key == "font_size":
            if not isinstance(val, int) or not 6 <= val <= 96:
                raise SpecError(f"{w}: {val!r} must be an integer between 6 and 96")
            kw[key] = val
        elif key == "cmap":
            _check_cmap(val, w)
            kw[key] = val
        else:
            kw[key] = str(val)
    style = Style(**kw)
    if style.breaks is not None:
        style = replace(style, classes=len(style.breaks) + 1)
    for key in ("title", "caption"):
        _check_template(getattr(style, key), f"{where}.{key}")
    try:
        style.number_format.format(1.5)
    except (ValueError, IndexError, KeyError) as exc:
        raise SpecError(f"{where}.number_format: {style.number_format!r} is not a "
                        f"format for one number ({exc})") from exc
    return style


def _check_cmap(name: Any, where: str) -> None:
    import matplotlib

    if not isinstance(name, str) or name not in matplotlib.colormaps:
        raise SpecError(f"{where}: {name!r} is not a matplotlib colormap name")


TEMPLATE_FIELDS = ("time", "frame", "frames", "count", "max", "min", "mean", "total")


def _check_template(template: str, where: str) -> None:
    from datetime import datetime

    sample = dict(time=datetime(2020, 1, 2, 3, 4), frame=1, frames=2, count=3, max=4.0,
                  min=0.0, mean=2.0, total=10.0)
    try:
        template.format(**sample)
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        raise SpecError(f"{where}: {template!r} is not a valid template ({exc!r}); "
                        f"fields: {', '.join(TEMPLATE_FIELDS)}") from exc


@dataclass(frozen=True)
class ColorScale:
    """A resolved scale: ``colors`` (n, 3) uint8 and the rule mapping values to indices."""

    kind: Kind
    colors: np.ndarray
    vmin: float
    vmax: float
    breaks: tuple[float, ...] = ()
    log: bool = False

    def classify(self, values: np.ndarray) -> np.ndarray:
        """Colour index per value; -1 for NaN (no data). Vectorised, no Python loop."""
        v = np.asarray(values, dtype=np.float64)
        nan = ~np.isfinite(v)
        if self.kind == "binned":
            idx = np.searchsorted(np.asarray(self.breaks), np.where(nan, 0.0, v), side="right")
        else:
            n = len(self.colors)
            if self.log:
                with np.errstate(divide="ignore", invalid="ignore"):
                    t = (np.log(np.where(nan | (v <= 0), self.vmin, v)) - math.log(self.vmin)) / (
                        math.log(self.vmax) - math.log(self.vmin))
            else:
                span = self.vmax - self.vmin or 1.0
                t = (np.where(nan, self.vmin, v) - self.vmin) / span
            idx = np.clip((t * n).astype(np.int64), 0, n - 1)
        return np.where(nan, -1, idx).astype(np.int64)

    def class_labels(self, number_format: str) -> list[str]:
        """Legend labels for binned scales: '< b1', 'b1 – b2', ..., '≥ bn'."""
        f = number_format.format
        b = self.breaks
        labels = [f"< {f(b[0])}"]
        labels += [f"{f(lo)} – {f(hi)}" for lo, hi in zip(b, b[1:], strict=False)]
        labels.append(f"≥ {f(b[-1])}")
        return labels


def sample_cmap(name: str, n: int) -> np.ndarray:
    """n evenly spaced colours of a matplotlib colormap as (n, 3) uint8."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    rgba = cmap(np.linspace(0.0, 1.0, n) if n > 1 else np.array([0.5]))
    return np.round(np.asarray(rgba)[:, :3] * 255).astype(np.uint8)


def resolve_scale(style: Style, data_min: float | None, data_max: float | None) -> ColorScale:
    """Fix the scale's range: explicit style values win, else the data's range (from SQL)."""
    vmin = style.vmin if style.vmin is not None else data_min
    vmax = style.vmax if style.vmax is not None else data_max
    if style.kind == "binned" and style.breaks is not None:
        b = style.breaks
        return ColorScale("binned", sample_cmap(style.cmap, len(b) + 1),
                          vmin if vmin is not None else b[0],
                          vmax if vmax is not None else b[-1], b)
    if vmin is None or vmax is None or not (math.isfinite(vmin) and math.isfinite(vmax)):
        raise SpecError("style: vmin/vmax not given and the data has no numeric values to "
                        "derive them from")
    if vmax <= vmin:
        vmax = vmin + (abs(vmin) or 1.0)
    use_log = style.scheme == "log"
    if use_log and vmin <= 0:
        pos = style.vmin if style.vmin is not None and style.vmin > 0 else None
        if pos is None:
            vmin = vmax / 1e4 if vmax > 0 else None  # type: ignore[assignment]
        if vmin is None or vmax <= 0:
            raise SpecError(f"style.scheme 'log' needs a positive range, data is "
                            f"{data_min}..{data_max}: set style.vmin > 0")
    if style.kind == "continuous":
        return ColorScale("continuous", sample_cmap(style.cmap, 256), vmin, vmax, log=use_log)
    n = style.classes
    edges = (np.geomspace(vmin, vmax, n + 1) if use_log else np.linspace(vmin, vmax, n + 1))
    return ColorScale("binned", sample_cmap(style.cmap, n), vmin, vmax,
                      tuple(float(x) for x in edges[1:-1]), log=use_log)
