"""Project and rasterise the map once: a label raster plus a static overlay.

This is the only place matplotlib/cartopy draw anything, and it runs once per animation (or
once per worker when assets are not shared). Two renders of the same figure layout are made:

* the **label raster**: every country filled, without antialiasing, in a colour that encodes
  its index, so decoding the pixels gives "which country is here" for each pixel;
* the **overlay**: antialiased borders, globe outline, legend and credit on a transparent
  figure.

:func:`compile_assets` then folds every overlay pixel whose final colour cannot change from
frame to frame (opaque pixels, and translucent ones over background or ocean) into extra fixed
palette entries of the label raster. What is left per frame is a palette lookup, a blend of the
few antialiased border pixels that lie over countries, and the changing text.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from framecast.choropleth.geography import Countries
from framecast.choropleth.style import ColorScale, Style
from framecast.errors import RenderError, SpecError
from framecast.geo import ensure_cartopy

LABEL_BG = 0
LABEL_OCEAN = 1
FIRST_COUNTRY = 2
MAX_LABELS = 65535

PROJECTIONS = ("robinson", "platecarree", "mollweide", "equalearth", "mercator",
               "orthographic", "lambertconformal")


@dataclass(frozen=True)
class MapLayout:
    """Where things go on the frame, in pixels; derived from size, style and projection."""

    width: int
    height: int
    title_h: int
    bottom_h: int
    caption_h: int
    projection: str = "robinson"
    central_longitude: float = 0.0
    extent: tuple[float, float, float, float] | None = None

    @property
    def map_rect(self) -> tuple[float, float, float, float]:
        """Axes rectangle (left, bottom, width, height) in figure fractions."""
        pad = 4
        bottom = (self.bottom_h + self.caption_h + pad) / self.height
        top = (self.title_h + pad) / self.height
        return (pad / self.width, bottom, 1 - 2 * pad / self.width, 1 - bottom - top)


def make_layout(width: int, height: int, style: Style, *, projection: str = "robinson",
                central_longitude: float = 0.0,
                extent: tuple[float, float, float, float] | None = None) -> MapLayout:
    if projection not in PROJECTIONS:
        raise SpecError(f"projection {projection!r} is not one of {PROJECTIONS}")
    if width < 200 or height < 150:
        raise SpecError(f"frame size {width}x{height} is too small (at least 200x150)")
    title_h = int(style.font_size * 2.0)
    bottom_h = 0 if style.legend_kind == "none" else max(40, int(height * 0.085))
    caption_h = int(style.font_size * 1.3) if style.caption else 0
    return MapLayout(width, height, title_h, bottom_h, caption_h, projection,
                     float(central_longitude), extent)


def _crs(layout: MapLayout) -> Any:
    import cartopy.crs as ccrs

    lon0 = layout.central_longitude
    return {
        "robinson": lambda: ccrs.Robinson(central_longitude=lon0),
        "platecarree": lambda: ccrs.PlateCarree(central_longitude=lon0),
        "mollweide": lambda: ccrs.Mollweide(central_longitude=lon0),
        "equalearth": lambda: ccrs.EqualEarth(central_longitude=lon0),
        "mercator": lambda: ccrs.Mercator(central_longitude=lon0, min_latitude=-60,
                                          max_latitude=84),
        "orthographic": lambda: ccrs.Orthographic(central_longitude=lon0, central_latitude=20),
        "lambertconformal": lambda: ccrs.LambertConformal(central_longitude=lon0),
    }[layout.projection]()


def _figure(layout: MapLayout) -> tuple[Any, Any]:
    """A figure of exactly width x height pixels with the map axes placed per the layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ensure_cartopy()
    dpi = 100
    fig = Figure(figsize=(layout.width / dpi, layout.height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes(layout.map_rect, projection=_crs(layout))
    import cartopy.crs as ccrs

    if layout.extent is not None:
        ax.set_extent(layout.extent, crs=ccrs.PlateCarree())
    elif layout.projection == "mercator":
        ax.set_extent((-180, 180, -60, 84), crs=ccrs.PlateCarree())
    else:
        ax.set_global()
    return fig, ax


def _rgba(fig: Any) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def label_raster(layout: MapLayout, countries: Countries) -> np.ndarray:
    """(h, w) uint16: 0 outside the globe, 1 ocean, 2 + i for country i."""
    import cartopy.crs as ccrs

    if FIRST_COUNTRY + len(countries) >= 1 << 16:
        raise RenderError(f"{len(countries)} countries do not fit a 16-bit label raster")

    def enc(k: int) -> tuple[float, float, float]:
        return ((k & 255) / 255, ((k >> 8) & 255) / 255, 0.0)

    fig, ax = _figure(layout)
    fig.patch.set_facecolor(enc(LABEL_BG))
    ax.set_facecolor(enc(LABEL_OCEAN))
    ax.patch.set_antialiased(False)
    ax.spines["geo"].set_visible(False)
    pc = ccrs.PlateCarree()
    for i, geom in enumerate(countries.geometries):
        ax.add_geometries([geom], crs=pc, facecolor=enc(FIRST_COUNTRY + i), edgecolor="none",
                          linewidth=0, antialiased=False)
    rgba = _rgba(fig)
    labels = rgba[..., 0].astype(np.uint16) | (rgba[..., 1].astype(np.uint16) << 8)
    labels[labels >= FIRST_COUNTRY + len(countries)] = LABEL_BG
    return labels


def overlay_rgba(layout: MapLayout, countries: Countries, style: Style,
                 scale: ColorScale) -> np.ndarray:
    """(h, w, 4) uint8 straight-alpha overlay: borders, outline, legend, credit."""
    import cartopy.crs as ccrs

    fig, ax = _figure(layout)
    fig.patch.set_alpha(0.0)
    ax.set_facecolor("none")
    ax.spines["geo"].set_edgecolor("#7f7f7f")
    ax.spines["geo"].set_linewidth(0.6)
    if style.border_width > 0:
        ax.add_geometries(countries.geometries, crs=ccrs.PlateCarree(), facecolor="none",
                          edgecolor=np.array(style.border_color) / 255,
                          linewidth=style.border_width)
    text_rgb = np.array(style.text_color) / 255
    _draw_legend(fig, layout, style, scale, text_rgb)
    if style.credit:
        fig.text(1 - 6 / layout.width, 4 / layout.height, style.credit, ha="right", va="bottom",
                 fontsize=max(6, style.font_size * 0.4), color=text_rgb)
    return _rgba(fig)


def _draw_legend(fig: Any, layout: MapLayout, style: Style, scale: ColorScale,
                 text_rgb: np.ndarray) -> None:
    from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm, Normalize
    from matplotlib.patches import Rectangle

    kind = style.legend_kind
    if kind == "none" or layout.bottom_h == 0:
        return
    h = layout.height
    y0 = (layout.caption_h + 6) / h
    lh = (layout.bottom_h - 10) / h
    fs = max(6.0, style.font_size * 0.42)
    nodata = np.array(style.nodata_color) / 255
    colors = scale.colors / 255.0
    if kind == "legend" and scale.kind == "binned":
        labels = [*scale.class_labels(style.number_format), "No data"]
        swatches = [*colors, nodata]
        lax = fig.add_axes((0.08, y0, 0.84, lh))
        lax.set_axis_off()
        lax.set_xlim(0, len(labels))
        lax.set_ylim(0, 1)
        for k, (lab, col) in enumerate(zip(labels, swatches, strict=True)):
            lax.add_patch(Rectangle((k + 0.05, 0.45), 0.9, 0.33, facecolor=col,
                                    edgecolor="#606060", linewidth=0.4))
            lax.text(k + 0.5, 0.38, lab, ha="center", va="top", fontsize=fs, color=text_rgb)
        if style.legend_title:
            lax.text(len(labels) / 2, 0.84, style.legend_title, ha="center", va="bottom",
                     fontsize=fs, color=text_rgb)
        return
    from matplotlib.cm import ScalarMappable

    cax = fig.add_axes((0.2, y0 + lh * 0.36, 0.6, lh * 0.3))
    if scale.kind == "binned":
        bounds = [scale.vmin, *scale.breaks, scale.vmax]
        sm = ScalarMappable(BoundaryNorm(bounds, len(colors)), ListedColormap(colors))
    else:
        norm = (LogNorm(scale.vmin, scale.vmax) if scale.log
                else Normalize(scale.vmin, scale.vmax))
        sm = ScalarMappable(norm, ListedColormap(colors))
    cb = fig.colorbar(sm, cax=cax, orientation="horizontal")
    cb.ax.tick_params(labelsize=fs, colors=text_rgb, length=2, pad=1)
    cb.outline.set_linewidth(0.5)
    if style.legend_title:
        cax.set_title(style.legend_title, fontsize=fs, color=text_rgb, pad=2)
    nax = fig.add_axes((0.05, y0 + lh * 0.36, 0.03, lh * 0.3))
    nax.set_axis_off()
    nax.add_patch(Rectangle((0, 0), 1, 1, facecolor=nodata, edgecolor="#606060", linewidth=0.4,
                            transform=nax.transAxes))
    nax.text(0.5, -0.15, "No data", ha="center", va="top", fontsize=fs, color=text_rgb,
             transform=nax.transAxes)


def _font_path() -> str:
    from matplotlib import font_manager

    return font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...) uint32 laid out so a little-endian view reads R, G, B, 0."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


@dataclass(frozen=True, eq=False)
class RenderAssets:
    """Everything a frame renderer needs; picklable and storable as one .npz file."""

    width: int
    height: int
    n_countries: int
    labels: np.ndarray          # (h*w,) uint16 palette index per pixel
    fixed_colors: np.ndarray    # (k,) uint32 packed RGB for palette entries n_dyn..
    blend_idx: np.ndarray       # (m,) int64 pixel indices needing a per-frame blend
    blend_inv_alpha: np.ndarray  # (m, 1) uint16  255 - alpha
    blend_premult: np.ndarray   # (m, 3) uint16  overlay rgb * alpha
    title_box: tuple[int, int, int, int]    # x0, y0, x1, y1
    caption_box: tuple[int, int, int, int]
    band_color: tuple[int, int, int]
    text_color: tuple[int, int, int]
    font_size: int
    font_path: str

    @property
    def n_dynamic(self) -> int:
        return FIRST_COUNTRY + self.n_countries

    def save(self, path: Any) -> None:
        """Write to ``path`` (.npz) through a temp name so readers never see a partial file."""
        import os
        from pathlib import Path

        path = Path(path)
        tmp = path.with_name(f".{path.name}.part")
        meta = dict(width=self.width, height=self.height, n_countries=self.n_countries,
                    title_box=self.title_box, caption_box=self.caption_box,
                    band_color=self.band_color, text_color=self.text_color,
                    font_size=self.font_size, font_path=self.font_path)
        with open(tmp, "wb") as fh:
            np.savez(fh, labels=self.labels, fixed_colors=self.fixed_colors,
                     blend_idx=self.blend_idx, blend_inv_alpha=self.blend_inv_alpha,
                     blend_premult=self.blend_premult,
                     meta=np.array(json.dumps(meta, default=int)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Any) -> RenderAssets:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            for key in ("title_box", "caption_box", "band_color", "text_color"):
                meta[key] = tuple(meta[key])
            return cls(labels=z["labels"], fixed_colors=z["fixed_colors"],
                       blend_idx=z["blend_idx"], blend_inv_alpha=z["blend_inv_alpha"],
                       blend_premult=z["blend_premult"], **meta)


def compile_assets(labels: np.ndarray, overlay: np.ndarray, layout: MapLayout, style: Style,
                   n_countries: int) -> RenderAssets:
    """Fold static overlay pixels into fixed palette entries; keep only the dynamic blends."""
    h, w = labels.shape
    flat = labels.reshape(-1).astype(np.uint16).copy()
    ov = overlay.reshape(-1, 4)
    alpha = ov[:, 3].astype(np.uint16)
    static_under = flat < FIRST_COUNTRY
    touched = alpha > 0
    base = np.empty((h * w, 3), dtype=np.uint16)
    base[:] = np.array(style.background, dtype=np.uint16)
    base[flat == LABEL_OCEAN] = np.array(style.ocean_color, dtype=np.uint16)
    fold = touched & (static_under | (alpha == 255))
    a = alpha[fold][:, None]
    folded = (base[fold] * (255 - a) + ov[fold, :3].astype(np.uint16) * a + 127) // 255
    packed = pack_rgb(folded.astype(np.uint8))
    uniq, inv = np.unique(packed, return_inverse=True)
    n_dyn = FIRST_COUNTRY + n_countries
    if n_dyn + len(uniq) > MAX_LABELS:
        # Too many distinct static colours (very busy overlay): keep the rest dynamic.
        keep = MAX_LABELS - n_dyn
        uniq = uniq[:keep]
        ok = inv < keep
        fold_idx = np.flatnonzero(fold)
        fold[fold_idx[~ok]] = False
        inv = inv[ok]
    flat[fold] = (n_dyn + inv).astype(np.uint16)
    dyn = touched & ~fold
    idx = np.flatnonzero(dyn)
    a_dyn = alpha[idx][:, None]
    lw = layout
    title_box = (0, 0, w, lw.title_h)
    cap_top = h - lw.caption_h
    caption_box = (0, cap_top, w, h) if lw.caption_h else (0, 0, 0, 0)
    return RenderAssets(
        width=w, height=h, n_countries=n_countries, labels=flat,
        fixed_colors=uniq.astype(np.uint32), blend_idx=idx.astype(np.int64),
        blend_inv_alpha=(255 - a_dyn).astype(np.uint16),
        blend_premult=(ov[idx, :3].astype(np.uint16) * a_dyn).astype(np.uint16),
        title_box=title_box, caption_box=caption_box, band_color=style.background,
        text_color=style.text_color, font_size=style.font_size, font_path=_font_path())


def build_assets(countries: Countries, style: Style, scale: ColorScale, width: int,
                 height: int, *, projection: str = "robinson", central_longitude: float = 0.0,
                 extent: tuple[float, float, float, float] | None = None,
                 labels: np.ndarray | None = None) -> RenderAssets:
    """The once-per-animation geometric work: layout, label raster, overlay, compile.

    ``labels`` reuses a label raster of the same layout (several metrics share one map).
    """
    layout = make_layout(width, height, style, projection=projection,
                         central_longitude=central_longitude, extent=extent)
    if labels is None:
        labels = label_raster(layout, countries)
    overlay = overlay_rgba(layout, countries, style, scale)
    if labels.shape != (height, width) or overlay.shape[:2] != (height, width):
        raise RenderError(f"rasterised map is {labels.shape[::-1]}, expected {width}x{height}")
    return compile_assets(labels, overlay, layout, style, len(countries))


def png_bytes(frame: np.ndarray) -> bytes:
    """Encode one RGB(0) frame as PNG (fast setting): used for optional PNG frame output."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(frame[..., :3]), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
