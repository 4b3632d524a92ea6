"""One product on one region: the figure is built once, each frame replaces only the data.

Why it is fast: the naive script lets cartopy re-project every contour path of every frame
(seconds per frame). Here the map is laid out once with cartopy, then frozen into pixels:

- ``underlay``: figure background, land/ocean, colorbar and legend, rendered once to RGBA;
- ``overlay``: coastlines, borders, lakes and the map outline, rendered once to RGBA;
- the fill: each output pixel's position on the model grid is computed once
  (:mod:`framecast.render.sampling`); a frame is a gather + a colour-table lookup;
- line contours and barbs are computed per frame on a pixel-aligned grid in the map's own
  projected coordinates, so no path is ever re-projected.

Per frame only the fill image, the contour/barb artists and the title change; the static
images are composited by Agg. Nothing accumulates between frames, so time and memory per frame
stay flat however many frames a worker renders.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from matplotlib.artist import Artist
from matplotlib.font_manager import FontProperties
from shapely import Polygon, contains_xy

from framecast.errors import RenderError
from framecast.field import Field
from framecast.geo import ensure_cartopy
from framecast.products import BarbsLayer, ContourLayer, FilledLayer, Product, Region
from framecast.render import sampling, static_cache
from framecast.render.colors import ColorTable, norm_for
from framecast.render.isolines import isolines
from framecast.render.labels import CachedLabels, place_labels
from framecast.render.sampling import Sampler, build_sampler
from framecast.render.static_cache import StaticLayers
from framecast.render.textcache import CachedTitle

TITLE_PX = 46  # height of the title band
COLORBAR_PX = 58  # height of the colorbar band
LAND = "#efe9dc"
OCEAN = "#dbe8f3"
CONTOUR_FACTOR = 3  # contour grid = every 3rd output pixel (isobars are smooth)
#: How unstructured grids are sampled (``sampling.METHODS``); benchmarks switch it.
SAMPLING = "linear"


def sampler_for(grid, lon: np.ndarray, lat: np.ndarray) -> Sampler:
    """The sampler of ``grid`` at the targets, through the disk cache for unstructured grids.

    A regular grid's bilinear weights are arithmetic (milliseconds); an unstructured grid's
    need a k-d tree and a triangulation of the cells the map sees, which on ICON's R3B7 is
    most of a worker's set-up time and memory. ICON's grid never changes, so the first worker
    stores the weights and every later one (other chunks, cycles, hosts sharing the cache
    folder) loads them.
    """
    if grid.kind != "unstructured":
        return build_sampler(grid, lon, lat, method=SAMPLING)
    from pathlib import Path

    key = static_cache.sampler_key(grid.key, SAMPLING, lon, lat, Path(sampling.__file__))
    z = static_cache.load_arrays(key, ("valid", "index", "weights"))
    if z is not None and z["valid"].size == lon.size:
        return Sampler(grid.key, lon.size, z["valid"], z["index"], z["weights"])
    s = build_sampler(grid, lon, lat, method=SAMPLING)
    static_cache.store_arrays(key, valid=s.valid, index=s.index, weights=s.weights)
    return s


#: Pixel lon/lat of each map and samplers of each (grid, map) pair, shared by every chart of
#: this process: a render task draws dozens of products on the same maps and grids, a few
#: frames each, so per-chart copies would project and weigh the same pixels again and again.
#: Bounded: cleared when a process has seen more maps than a deployment plausibly draws.
_POINTS: dict = {}
_SAMPLERS: dict = {}
_SHARED_MAX = 64


def forget_shared() -> None:
    """Drop this process's shared map points and samplers (as a new worker starts)."""
    _POINTS.clear()
    _SAMPLERS.clear()


def _shared(cache: dict, key, make):
    """``cache[key]``, made on first use."""
    value = cache.get(key)
    if value is None:
        if len(cache) >= _SHARED_MAX:
            cache.clear()
        value = cache[key] = make()
    return value


@dataclass
class FrameTiming:
    render_ms: float
    pixels: tuple[int, int]


def _natural_earth(category: str, name: str, scale: str, **kw):
    import cartopy.feature as cfeature

    from framecast.geo import natural_earth_path

    natural_earth_path(category, name, scale)  # clear error instead of a download
    return cfeature.NaturalEarthFeature(category, name, scale, **kw)


def _lakes_scale(scale: str) -> str:
    return "50m" if scale == "10m" else scale  # Natural Earth lakes are preseeded at 110m/50m


class MapFrame:
    """Renders frames of one product on one region for fields on one grid."""

    def __init__(self, product: Product, region: Region) -> None:
        ensure_cartopy()
        import matplotlib

        matplotlib.use("Agg", force=False)
        self.product, self.region = product, region
        self.width, self.height = product.size
        self._fill_layer = next((x for x in product.layers if isinstance(x, FilledLayer)), None)
        self._build_static()
        self._samplers: dict[tuple[str, str], Sampler] = {}
        self._dynamic: list = []
        self._palette = None

    # ---- static part, once per worker ---------------------------------------------------
    def _new_figure(self):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        dpi = self.product.dpi
        fig = Figure(figsize=(self.width / dpi, self.height / dpi), dpi=dpi, facecolor="white")
        FigureCanvasAgg(fig)
        return fig

    def _build_static(self) -> None:
        """The static layers from the disk cache when present, else drawn (and stored)."""
        from pathlib import Path

        self.crs = self.region.crs()
        key = static_cache.cache_key(self.product, self.region, Path(__file__))
        layers = static_cache.load(key)
        if layers is None:
            layers = self._draw_static()
            static_cache.store(key, layers)
        self._assemble(layers)

    def _draw_static(self) -> StaticLayers:
        """Lay the map out with cartopy once and freeze it into pixels (the slow part)."""
        import cartopy.crs as ccrs
        from matplotlib.cm import ScalarMappable

        r = self.region
        fig = self._new_figure()
        h = self.height
        has_cb = self._fill_layer is not None and self._fill_layer.colorbar
        bottom = (COLORBAR_PX if has_cb else 8) / h
        top = 1 - TITLE_PX / h
        crs = r.crs()
        geo = fig.add_axes((0.01, bottom, 0.98, top - bottom), projection=crs)
        if r.bounds is None:
            geo.set_global()
        else:
            geo.set_extent(r.bounds, crs=ccrs.PlateCarree())
        geo.set_facecolor(OCEAN)
        land = geo.add_feature(_natural_earth("physical", "land", _lakes_scale(r.coastline_scale),
                                              facecolor=LAND, edgecolor="none"), zorder=0)
        lines = [geo.add_feature(_natural_earth("physical", "coastline", r.coastline_scale,
                                                facecolor="none", edgecolor="#1a1a1a"),
                                 linewidth=0.6, zorder=3)]
        if r.borders:
            lines.append(geo.add_feature(
                _natural_earth("cultural", "admin_0_boundary_lines_land", r.coastline_scale,
                               facecolor="none", edgecolor="#333333"),
                linewidth=0.5, linestyle=(0, (4, 2)), zorder=3))
        if r.lakes:
            lines.append(geo.add_feature(
                _natural_earth("physical", "lakes", _lakes_scale(r.coastline_scale),
                               facecolor="none", edgecolor="#1a1a1a"), linewidth=0.4, zorder=3))
        cax = None
        if has_cb:
            layer = self._fill_layer
            cax = fig.add_axes((0.12, 30 / h, 0.76, 12 / h))
            sm = ScalarMappable(norm=norm_for(layer), cmap=layer.cmap)
            cb = fig.colorbar(sm, cax=cax, orientation="horizontal", extend=layer.extend,
                              ticks=layer.levels if layer.levels.size <= 24 else None,
                              spacing="uniform")
            cb.ax.tick_params(labelsize=7, length=2, pad=1)
            if layer.colorbar_label:
                cb.set_label(layer.colorbar_label, fontsize=8, labelpad=1)
        branding = self._draw_branding(fig)
        fig.canvas.draw()  # applies the map's aspect ratio: the axes box is now final

        # Freeze the map geometry in pixels and projected coordinates.
        bbox = geo.get_window_extent()
        x0, y0 = int(round(bbox.x0)), int(round(bbox.y0))
        x1, y1 = int(round(bbox.x1)), int(round(bbox.y1))
        map_px = (x0, y0, x1 - x0, y1 - y0)  # left, bottom, width, height (display px)
        xlim, ylim = geo.get_xlim(), geo.get_ylim()

        # Underlay: everything except the line features.
        for a in lines:
            a.set_visible(False)
        fig.canvas.draw()
        under = np.asarray(fig.canvas.buffer_rgba()).copy()
        # Overlay: the line features and the map outline, on a transparent figure.
        for a in lines:
            a.set_visible(True)
        land.set_visible(False)
        geo.patch.set_visible(False)
        fig.patch.set_alpha(0.0)
        if cax is not None:
            cax.set_visible(False)
        for a in branding:
            a.set_visible(False)
        fig.canvas.draw()
        over = np.asarray(fig.canvas.buffer_rgba()).copy()
        return StaticLayers(under=under, over=over, map_px=map_px, xlim=tuple(xlim),
                            ylim=tuple(ylim), colors=_frequent_colors(under, 48))

    def _assemble(self, layers: StaticLayers) -> None:
        """The dynamic figure: static images + a plain axes with the map's projected limits."""
        under, over, h = layers.under, layers.over, self.height
        self.map_px, self.xlim, self.ylim = layers.map_px, layers.xlim, layers.ylim
        x0, y0, mw, mh = self.map_px
        x1, y1 = x0 + mw, y0 + mh
        self._static_rgb = layers.colors
        fig = self._new_figure()
        fig.add_artist(PixelImage(under, 0, 0, zorder=-3))
        self._fill_img = None
        if self._fill_layer is not None:
            w, hh = self.map_px[2], self.map_px[3]
            self._fill_img = fig.add_artist(PixelImage(np.zeros((hh, w, 4), np.uint8), x0, y0,
                                                       zorder=-2))
        oy0, oy1, ox0, ox1 = _nonempty_box(over)
        fig.add_artist(PixelImage(over[oy0:oy1, ox0:ox1], ox0, h - oy1, zorder=-1))
        rect = (x0 / self.width, y0 / h, (x1 - x0) / self.width, (y1 - y0) / h)
        self.ax = self._plain_axes(fig, rect, zorder=0)  # contours, labels, barbs
        self._labels = CachedLabels(zorder=3)
        self.ax.add_artist(self._labels)
        # Vector fills go between the fill image and the coastline overlay.
        self.fill_ax = self._plain_axes(fig, rect, zorder=-1.5)
        site = self.product.site
        self._title = fig.add_artist(CachedTitle(
            fig, self.width / 2, h - 4, linespacing=1.35, prop=FontProperties(
                family=self._font_family(),
                size=site.title_size if site and site.title_size else min(10.0, self.width / 62))))
        self.fig = fig
        self._pixel_lonlat()

    def _font_family(self) -> str:
        """The site's font; a font file is registered with matplotlib once per process."""
        site = self.product.site
        if site is None:
            return "DejaVu Sans"
        if site.font_file is not None:
            from matplotlib import font_manager

            font_manager.fontManager.addfont(str(site.font_file))
            return font_manager.FontProperties(fname=str(site.font_file)).get_name()
        return site.font_family

    def _draw_branding(self, fig) -> list:
        """Logo and footer of the product's site, drawn into the static underlay (no cost
        per frame). Returns the artists so the overlay pass can hide them."""
        site = self.product.site
        if site is None:
            return []
        arts = []
        if site.footer:
            text = site.format_footer(product=self.product.name, region=self.region.name,
                                      title=self.product.title)
            arts.append(fig.text(1 - 4 / self.width, 3 / self.height, text, ha="right",
                                 va="bottom", fontsize=site.footer_size,
                                 color=site.footer_color, fontfamily=self._font_family()))
        if site.logo is not None:
            logo = load_logo(site.logo, site.logo_height)
            lh, lw = logo.shape[:2]
            pad = 4
            left = site.logo_corner.endswith("left")
            top = site.logo_corner.startswith("top")
            x = pad if left else self.width - lw - pad
            y = self.height - lh - pad if top else pad
            arts.append(fig.figimage(logo, xo=x, yo=y, origin="upper", zorder=5))
        return arts

    def _plain_axes(self, fig, rect, zorder: float):
        """A bare axes over the map with its projected limits: draws with no re-projection."""
        ax = fig.add_axes(rect)
        ax.set_xlim(self.xlim)
        ax.set_ylim(self.ylim)
        ax.set_axis_off()
        ax.patch.set_visible(False)
        ax.set_zorder(zorder)
        return ax

    def _pixel_lonlat(self) -> None:
        """Longitude/latitude of every map pixel centre (NaN outside the projection's domain)."""
        import cartopy.crs as ccrs

        _, _, w, h = self.map_px
        (xa, xb), (ya, yb) = self.xlim, self.ylim
        xs = xa + (np.arange(w) + 0.5) * (xb - xa) / w
        ys = yb - (np.arange(h) + 0.5) * (yb - ya) / h  # top row first (image order)
        self.px_x, self.px_y = xs, ys
        self._lonlat: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._geodetic = ccrs.PlateCarree()

    def _points_key(self, factor: int) -> str:
        return static_cache.points_key(self.crs.to_wkt(), self.map_px, self.xlim, self.ylim,
                                       factor)

    def _grid_points(self, factor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Projected x/y axes and lon/lat of pixel centres, subsampled by ``factor``."""
        if factor not in self._lonlat:
            self._lonlat[factor] = _shared(_POINTS, self._points_key(factor),
                                           lambda: self._project_points(factor))
        return self._lonlat[factor]

    def _project_points(self, factor: int):
        xs = self.px_x[factor // 2::factor]
        ys = self.px_y[factor // 2::factor]
        key = self._points_key(factor)
        cached = static_cache.load_arrays(key, ("lon", "lat"))
        if cached is not None and cached["lon"].size == xs.size * ys.size:
            return xs, ys, cached["lon"], cached["lat"]
        gx, gy = np.meshgrid(xs, ys)
        pts = self._geodetic.transform_points(self.crs, gx.ravel(), gy.ravel())
        lon, lat = pts[:, 0], pts[:, 1]
        # Points off the globe (e.g. Robinson's corners) come back as inf or NaN.
        bad = ~(np.isfinite(lon) & np.isfinite(lat)) | (np.abs(lat) > 90)
        # Also drop points outside the projection's boundary.
        bad |= ~contains_xy(Polygon(self.crs.boundary.coords), gx.ravel(), gy.ravel())
        lon = np.where(bad, np.nan, lon)
        lat = np.where(bad, np.nan, lat)
        static_cache.store_arrays(key, lon=lon, lat=lat)
        return xs, ys, lon, lat

    def pixel_of(self, lon: float, lat: float) -> tuple[int, int]:
        """(row, column) of a geographic point in the rendered image (for checks and tests)."""
        import cartopy.crs as ccrs

        x, y = self.crs.transform_point(lon, lat, ccrs.PlateCarree())
        x0, y0, w, h = self.map_px
        (xa, xb), (ya, yb) = self.xlim, self.ylim
        col = x0 + (x - xa) / (xb - xa) * w
        row = self.height - (y0 + h) + (yb - y) / (yb - ya) * h
        return int(row), int(col)

    def sampler(self, field: Field, factor: int) -> Sampler:
        """The (cached) sampler of ``field``'s grid at this map's pixels / ``factor``."""
        key = (field.grid.key, str(factor))
        s = self._samplers.get(key)
        if s is None:
            _, _, lon, lat = self._grid_points(factor)
            s = self._samplers[key] = _shared(
                _SAMPLERS, (field.grid.key, SAMPLING, self._points_key(factor)),
                lambda: sampler_for(field.grid, lon, lat))
        return s

    # ---- per frame -------------------------------------------------------------------------
    def _sampled(self, field: Field, factor: int) -> np.ndarray:
        xs, ys, _, _ = self._grid_points(factor)
        return self.sampler(field, factor).sample(field.values).reshape(ys.size, xs.size)

    def _draw_fill(self, layer: FilledLayer, field: Field) -> None:
        table = self._tables.get(id(layer)) if hasattr(self, "_tables") else None
        if table is None:
            self._tables = getattr(self, "_tables", {})
            table = self._tables[id(layer)] = ColorTable.for_layer(layer)
        if layer.mode == "raster":
            vals = self._sampled(field, 1)
            # Classified bottom row first: Agg's order, so the colours need no second copy.
            self._fill_img.set_data_bottom_up(table.colorize(vals[::-1], layer.min_value))
            return
        xs, ys, _, _ = self._grid_points(1)
        vals = self._sampled(field, 1)
        if layer.min_value is not None:
            vals = np.where(vals < layer.min_value, np.nan, vals)
        self._fill_img.set_data(np.zeros((ys.size, xs.size, 4), np.uint8))
        cs = self.fill_ax.contourf(xs, ys, np.ma.masked_invalid(vals), levels=layer.levels,
                              cmap=layer.cmap, norm=norm_for(layer), extend=layer.extend,
                              alpha=layer.alpha, zorder=1)
        self._dynamic.append(cs)

    def _draw_contour(self, layer: ContourLayer, field: Field) -> None:
        xs, ys, _, _ = self._grid_points(CONTOUR_FACTOR)
        vals = self._sampled(field, CONTOUR_FACTOR)
        if layer.smooth > 0:
            vals = _smooth(vals, layer.smooth)
        finite = vals[np.isfinite(vals)]
        if finite.size == 0:
            return
        lv = layer.levels[(layer.levels >= finite.min()) & (layer.levels <= finite.max())]
        if lv.size == 0:
            return
        cs = isolines(xs, ys, vals, lv, color=layer.color, linewidth=layer.linewidth,
                      linestyle=layer.linestyle, transform=self.ax.transData, zorder=2)
        self.ax.add_collection(cs, autolim=False)
        self._dynamic.append(cs)
        if layer.labels:
            # Placed along the lines, which are cut under them; drawn from cached bitmaps.
            self._labels.add(place_labels(self.ax, cs, layer.label_fmt.format,
                                          layer.label_size, layer.color, spacing=2))

    def _barb_geometry(self, layer: BarbsLayer):
        key = ("barbs", layer.spacing)
        cache = getattr(self, "_barb_cache", {})
        self._barb_cache = cache
        if key not in cache:
            import cartopy.crs as ccrs

            _, _, w, h = self.map_px
            (xa, xb), (ya, yb) = self.xlim, self.ylim
            sp = layer.spacing
            cols = np.arange(sp / 2, w, sp)
            rows = np.arange(sp / 2, h, sp)
            gx, gy = np.meshgrid(xa + cols * (xb - xa) / w, yb - rows * (yb - ya) / h)
            gx, gy = gx.ravel(), gy.ravel()
            pts = ccrs.PlateCarree().transform_points(self.crs, gx, gy)
            ok = np.isfinite(pts[:, 0]) & np.isfinite(pts[:, 1]) & (np.abs(pts[:, 1]) <= 90)
            gx, gy, lon, lat = gx[ok], gy[ok], pts[ok, 0], pts[ok, 1]
            # Rotation from geographic (east, north) to the map's x/y axes, once.
            ue, ve = self.crs.transform_vectors(ccrs.PlateCarree(), lon, lat,
                                                np.ones_like(lon), np.zeros_like(lon))
            un, vn = self.crs.transform_vectors(ccrs.PlateCarree(), lon, lat,
                                                np.zeros_like(lon), np.ones_like(lon))
            cache[key] = (gx, gy, lon, lat, ue, ve, un, vn)
        return cache[key]

    def _draw_barbs(self, layer: BarbsLayer, u: Field, v: Field) -> None:
        gx, gy, lon, lat, ue, ve, un, vn = self._barb_geometry(layer)
        skey = (u.grid.key, f"barbs{layer.spacing}")
        s = self._samplers.get(skey)
        if s is None:
            s = self._samplers[skey] = sampler_for(u.grid, lon, lat)
        us, vs = s.sample(u.values), s.sample(v.values)
        ok = np.isfinite(us) & np.isfinite(vs)
        mx = us * ue + vs * un
        my = us * ve + vs * vn
        # Keep the geographic speed: normalise the rotated vectors to the original length.
        speed = np.hypot(us, vs)
        norm = np.hypot(mx, my)
        norm[norm == 0] = 1
        mx, my = mx / norm * speed, my / norm * speed
        if layer.style == "barbs":
            art = self.ax.barbs(gx[ok], gy[ok], mx[ok], my[ok], length=layer.length,
                                color=layer.color, linewidth=0.5, zorder=4)
        else:
            art = self.ax.quiver(gx[ok], gy[ok], mx[ok], my[ok], color=layer.color,
                                 zorder=4, width=0.0015)
        self._dynamic.append(art)

    def render(self, fields: dict[str, Field], *, model: str, run_time: datetime,
               step: int) -> np.ndarray:
        """Draw one frame from ``fields`` (variable name -> Field in the layer's units).

        Returns the frame as an (height, width, 4) uint8 view of the canvas buffer, valid until
        the next call.
        """
        for art in self._dynamic:
            art.remove()
        self._dynamic.clear()
        self._labels.clear()
        try:
            for layer in self.product.layers:
                if isinstance(layer, FilledLayer):
                    self._draw_fill(layer, fields[layer.field])
                elif isinstance(layer, ContourLayer):
                    self._draw_contour(layer, fields[layer.field])
                else:
                    self._draw_barbs(layer, fields[layer.u], fields[layer.v])
        except KeyError as exc:
            raise RenderError(f"product {self.product.name!r}: no field {exc.args[0]!r} "
                              "was given to the renderer") from None
        self._title.set_text(self.product.format_title(region=self.region.name, model=model,
                                                       run=run_time, step=step))
        self.fig.canvas.draw()
        return np.asarray(self.fig.canvas.buffer_rgba())

    def fixed_colors(self) -> np.ndarray:
        """(n, 3) colours a palette must keep exactly: the fill's table, land, sea, background."""
        out = [self._static_rgb, np.array([[255, 255, 255], [0, 0, 0]], np.uint8)]
        if self._fill_layer is not None:
            lut = ColorTable.for_layer(self._fill_layer).lut
            alpha = lut[:, 3:4].astype(np.float32) / 255
            # A translucent fill shows as its colour blended over land and over sea.
            for base in ([255, 255, 255], _rgb(LAND), _rgb(OCEAN)):
                blend = lut[:, :3] * alpha + np.array(base, np.float32) * (1 - alpha)
                out.append(np.round(blend[lut[:, 3] > 0]).astype(np.uint8))
        return np.unique(np.concatenate(out), axis=0)

    def png_palette(self, sample: np.ndarray):
        """This product's 8-bit PNG palette, built from the first frame drawn (``sample``)."""
        from framecast.render.encode import PngPalette

        if self._palette is None:
            self._palette = PngPalette.build(self.fixed_colors(), sample)
        return self._palette

    def timed_render(self, fields: dict[str, Field], **kw) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        img = self.render(fields, **kw)
        return img, (time.perf_counter() - t0) * 1000


class PixelImage(Artist):
    """An RGBA image drawn 1:1 at a pixel position: no resampling, no normalisation.

    matplotlib's own image artists resample and re-normalise on every draw (tens of ms for a
    full-size image); a frame's layers are already at output resolution, so they are handed
    to the renderer as they are and Agg only alpha-blends them.
    """

    def __init__(self, rgba: np.ndarray, x: int, y: int, zorder: float = 0) -> None:
        super().__init__()
        self.x, self.y = x, y  # bottom-left corner, display pixels
        self.set_zorder(zorder)
        self.set_data(rgba)

    def set_data(self, rgba: np.ndarray) -> None:
        """``rgba`` in image order (top row first); Agg wants the bottom row first."""
        self._rgba = np.ascontiguousarray(rgba[::-1], dtype=np.uint8)

    def set_data_bottom_up(self, rgba: np.ndarray) -> None:
        """``rgba`` already bottom row first (no flip, no copy if contiguous uint8)."""
        self._rgba = np.ascontiguousarray(rgba, dtype=np.uint8)

    def draw(self, renderer) -> None:
        if not self.get_visible():
            return
        gc = renderer.new_gc()
        renderer.draw_image(gc, self.x, self.y, self._rgba)
        gc.restore()


def _rgb(color: str) -> list[int]:
    from matplotlib.colors import to_rgb

    return [round(c * 255) for c in to_rgb(color)]


def _frequent_colors(rgba: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` most frequent colours of an image, (n, 3) uint8 (static layers' colours)."""
    rgb = rgba[..., :3].reshape(-1, 3).astype(np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    vals, counts = np.unique(packed, return_counts=True)
    top = vals[np.argsort(counts)[::-1][:n]]
    return np.stack([(top >> 16) & 255, (top >> 8) & 255, top & 255], axis=1).astype(np.uint8)


def load_logo(path, height: int) -> np.ndarray:
    """A logo image as RGBA uint8, scaled (Lanczos) to ``height`` pixels."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGBA")
        width = max(1, round(im.width * height / im.height))
        return np.asarray(im.resize((width, height), Image.Resampling.LANCZOS))


def _nonempty_box(rgba: np.ndarray) -> tuple[int, int, int, int]:
    """Row/column range holding all non-transparent pixels (to blend only that part)."""
    alpha = rgba[..., 3] > 0
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    if rows.size == 0:
        return 0, 1, 0, 1
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _smooth(vals: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing that ignores NaN (normalised convolution), keeping NaN where it was."""
    from scipy.ndimage import gaussian_filter

    mask = np.isfinite(vals)
    if mask.all():
        return gaussian_filter(vals, sigma, mode="nearest")
    filled = np.where(mask, vals, 0).astype(np.float32)
    num = gaussian_filter(filled, sigma, mode="nearest")
    den = gaussian_filter(mask.astype(np.float32), sigma, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~mask] = np.nan
    if not np.isfinite(out[mask]).all():
        raise RenderError("smoothing produced non-finite values")
    return out
