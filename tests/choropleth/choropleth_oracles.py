"""Independent oracles for choropleth frames: where a country is on the frame, what colour.

A country's pixel is its Natural Earth polygon's representative point (shapely), read with
cartopy's own shapefile reader and projected with cartopy onto a figure laid out like the
frame; never the renderer's label raster or lookup tables. Only points whose surrounding
disc (``margin`` pixels) lies inside the projected polygon are used, so H.264's chroma
subsampling at borders cannot blur them. Expected colours are the matplotlib colormap sampled
here, classified with plain comparisons.
"""

from __future__ import annotations

from typing import Any

import numpy as np

NODATA = np.array([200, 200, 200], dtype=float)


def natural_earth_records(layer: str = "admin_0_countries", scale: str = "110m") -> list[Any]:
    """Records of a preseeded Natural Earth layer, read by cartopy (not framecast)."""
    from cartopy.io import shapereader

    path = shapereader.natural_earth(resolution=scale, category="cultural", name=layer)
    return list(shapereader.Reader(path).records())


def _crs(projection: str) -> Any:
    import cartopy.crs as ccrs

    return {"robinson": ccrs.Robinson(), "platecarree": ccrs.PlateCarree()}[projection]


def representative_pixels(geoms: dict[str, Any], width: int, height: int,
                          map_rect: tuple[float, float, float, float], *,
                          projection: str = "robinson",
                          extent: tuple[float, float, float, float] | None = None,
                          margin: float = 3.5) -> dict[str, tuple[int, int]]:
    """(row, col) of each geometry's representative point on a width x height frame whose map
    axes occupy ``map_rect`` (figure fractions); geometries too thin there are left out."""
    import cartopy.crs as ccrs
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from shapely.geometry import MultiPolygon, Point, Polygon

    fig = Figure(figsize=(width / 100, height / 100), dpi=100)
    FigureCanvasAgg(fig)
    proj = _crs(projection)
    ax = fig.add_axes(map_rect, projection=proj)
    if extent is not None:
        ax.set_extent(extent, crs=ccrs.PlateCarree())
    else:
        ax.set_global()
    fig.canvas.draw()
    pc = ccrs.PlateCarree()

    def to_px(lonlat: np.ndarray) -> np.ndarray:
        xy = proj.transform_points(pc, lonlat[:, 0], lonlat[:, 1])[:, :2]
        d = ax.transData.transform(xy)
        return np.column_stack([d[:, 0], height - d[:, 1]])

    out = {}
    for key, geom in geoms.items():
        pt = geom.representative_point()
        parts = geom.geoms if isinstance(geom, MultiPolygon) else [geom]
        part = next(p for p in parts if p.buffer(1e-9).contains(pt))
        poly_px = Polygon(to_px(np.asarray(part.exterior.coords)))
        x, y = to_px(np.array([[pt.x, pt.y]]))[0]
        x0, y0, x1, y1 = ax.bbox.extents  # display coordinates (y up) of the map area
        inside_map = x0 + margin < x < x1 - margin and y0 + margin < height - y < y1 - margin
        if inside_map and poly_px.is_valid and poly_px.contains(Point(x, y).buffer(margin)):
            out[key] = (int(np.floor(y)), int(np.floor(x)))
    return out


def palette(cmap: str, n: int) -> np.ndarray:
    import matplotlib

    rgba = matplotlib.colormaps[cmap](np.linspace(0, 1, n))
    return np.round(rgba[:, :3] * 255)


def expected_color(value: float | None, breaks: list[float], cmap: str) -> np.ndarray:
    if value is None or not np.isfinite(value):
        return NODATA
    return palette(cmap, len(breaks) + 1)[sum(value >= b for b in breaks)]


def check_frame(frame: np.ndarray, pixels: dict[str, tuple[int, int]],
                values: dict[str, float | None], breaks: list[float], cmap: str,
                what: str = "") -> int:
    """Assert every pixel shows its value's class colour (nearest class, within 24 levels)."""
    pal = np.vstack([palette(cmap, len(breaks) + 1), NODATA])
    checked = 0
    for key, (y, x) in pixels.items():
        got = np.median(frame[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3), axis=0)
        want = expected_color(values.get(key), breaks, cmap)
        nearest = pal[int(np.argmin(np.abs(pal - got).sum(axis=1)))]
        assert np.array_equal(nearest, want), (what, key, values.get(key), got, want)
        assert np.abs(got - want).max() <= 24, (what, key, got, want)
        checked += 1
    return checked
