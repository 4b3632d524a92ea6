"""Independent oracles for the pictures framecast draws: where a place lands on an image and
which colour a value should get, computed without the code under test.

* :func:`map_pixel`: the pixel of a longitude/latitude on a chart of a region, through a fresh
  cartopy GeoAxes of the region's projection and extent (cartopy's own projection and
  transforms; not the renderer's sampler or its ``pixel_of``).
* :func:`fill_rgb`: the colour matplotlib's ``contourf`` gives a value for a filled layer's
  levels, colormap and ``extend`` (BoundaryNorm + colormap; not the project's colour table).
* :func:`country_points`: for Natural Earth countries, a point deep inside each (pole of
  inaccessibility of its largest part, shapely) projected with pyproj, and its pixel on a
  global choropleth map (equal-aspect map box centred in the layout's rectangle); not the
  project's label raster.

Import as ``from oracles import ...`` (tests/conftest.py puts this folder on ``sys.path``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def map_pixel(region, map_px: tuple[int, int, int, int], image_height: int, lon: float,
              lat: float) -> tuple[int, int]:
    """(row, col) of ``(lon, lat)`` on a chart whose map box is ``map_px`` (left, bottom,
    width, height in display pixels, bottom-up) of an image ``image_height`` pixels high."""
    row, col = map_point(region, map_px, image_height, lon, lat)
    return int(row), int(col)


def map_point(region, map_px: tuple[int, int, int, int], image_height: int, lon: float,
              lat: float) -> tuple[float, float]:
    """:func:`map_pixel` unrounded (for distances and gradients in pixels)."""
    x, y = _map_axes(region, map_px[2], map_px[3]).transform(lon, lat)
    left, bottom, _, h = map_px
    return image_height - (bottom + y), left + x


class _Axes:
    """A GeoAxes filling a figure of exactly the map box's size: display = box pixels."""

    def __init__(self, region, width: int, height: int) -> None:
        import cartopy.crs as ccrs
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(width / 100, height / 100), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1), projection=region.crs())
        if region.bounds is None:
            ax.set_global()
        else:
            ax.set_extent(region.bounds, crs=ccrs.PlateCarree())
        fig.canvas.draw()
        self.ax, self.geodetic = ax, ccrs.PlateCarree()

    def transform(self, lon: float, lat: float) -> tuple[float, float]:
        px, py = self.ax.projection.transform_point(lon, lat, self.geodetic)
        x, y = self.ax.transData.transform((px, py))
        return float(x), float(y)


_AXES: dict[tuple, _Axes] = {}


def _map_axes(region, width: int, height: int) -> _Axes:
    key = (region.bounds, region.projection, repr(region.projection_args), width, height)
    if key not in _AXES:
        _AXES[key] = _Axes(region, width, height)
    return _AXES[key]


def fill_rgba(layer, value: float) -> np.ndarray:
    """RGBA (0..1) matplotlib's contourf would fill ``value`` with, the layer's alpha applied."""
    from matplotlib.colors import BoundaryNorm

    norm = BoundaryNorm(np.asarray(layer.levels, float), layer.cmap.N, extend=layer.extend)
    rgba = np.asarray(layer.cmap(norm(value)), dtype=float)
    rgba[3] *= getattr(layer, "alpha", 1.0)
    return rgba


def fill_rgb(layer, value: float, background: np.ndarray | None = None) -> np.ndarray:
    """RGB (0..255) of ``value``'s fill; a translucent colour (clouds as sky) is composited
    over ``background`` (RGB 0..255, what the map shows there)."""
    rgba = fill_rgba(layer, value)
    rgb = rgba[:3] * 255
    if rgba[3] < 1.0:
        if background is None:
            raise ValueError("a translucent fill needs the background it is drawn over")
        rgb = rgba[3] * rgb + (1 - rgba[3]) * np.asarray(background, dtype=float)
    return np.round(rgb)


@lru_cache(maxsize=1)
def _land_geometry():
    """Natural Earth 50m land (cartopy's reader, shapely geometry, prepared)."""
    import cartopy.io.shapereader as shpreader
    from shapely.ops import unary_union
    from shapely.prepared import prep

    path = shpreader.natural_earth(resolution="50m", category="physical", name="land")
    return prep(unary_union(list(shpreader.Reader(path).geometries())))


def base_rgb(lon: float, lat: float) -> np.ndarray:
    """The base map's colour at a place: land or ocean as Natural Earth says (no lakes)."""
    from matplotlib.colors import to_rgb
    from shapely.geometry import Point

    from framecast.render.frame import LAND, OCEAN

    colour = LAND if _land_geometry().contains(Point(lon, lat)) else OCEAN
    return np.round(np.asarray(to_rgb(colour)) * 255)


def patch_rgb(img: np.ndarray, rc: tuple[int, int], radius: int = 1) -> np.ndarray:
    """Median RGB of the (2r+1)^2 patch around ``rc`` (robust to one stray line pixel)."""
    r, c = rc
    patch = img[r - radius:r + radius + 1, c - radius:c + radius + 1, :3]
    return np.median(patch.reshape(-1, 3).astype(float), axis=0)


# ---------------------------------------------------------------------- countries


@dataclass(frozen=True)
class CountryPoint:
    code: str
    lon: float
    lat: float
    x: float  # projected (metres)
    y: float
    clearance: float  # distance to the country's outline (metres, projected)


def _pyproj_string(projection: str, central_longitude: float = 0.0) -> str:
    return {"robinson": f"+proj=robin +lon_0={central_longitude} +datum=WGS84",
            "platecarree": f"+proj=eqc +lon_0={central_longitude} +datum=WGS84",
            "mollweide": f"+proj=moll +lon_0={central_longitude} +datum=WGS84",
            "equalearth": f"+proj=eqearth +lon_0={central_longitude} +datum=WGS84"}[projection]


def country_points(codes: tuple[str, ...], projection: str = "robinson",
                   scale: str = "110m") -> dict[str, CountryPoint]:
    """A point deep inside each country (by ``ADM0_A3``), read straight from Natural Earth."""
    return _country_points(tuple(codes), projection, scale)


@lru_cache(maxsize=8)
def _country_points(codes, projection, scale):
    from cartopy.io import shapereader
    from pyproj import Transformer
    from shapely.ops import polylabel, transform

    fwd = Transformer.from_crs("EPSG:4326", _pyproj_string(projection), always_xy=True)
    inv = Transformer.from_crs(_pyproj_string(projection), "EPSG:4326", always_xy=True)
    path = shapereader.natural_earth(resolution=scale, category="cultural",
                                     name="admin_0_countries")
    found = {}
    for rec in shapereader.Reader(path).records():
        code = str(rec.attributes.get("ADM0_A3", "")).upper()
        if code not in codes:
            continue
        geom = transform(fwd.transform, rec.geometry)
        parts = list(getattr(geom, "geoms", [geom]))
        main = max(parts, key=lambda g: g.area)
        p = polylabel(main, tolerance=1000.0)
        lon, lat = inv.transform(p.x, p.y)
        found[code] = CountryPoint(code, lon, lat, p.x, p.y, main.exterior.distance(p))
    missing = set(codes) - set(found)
    assert not missing, f"not in Natural Earth {scale}: {sorted(missing)}"
    return found


def global_map_pixel(point: CountryPoint, map_rect: tuple[float, float, float, float],
                     width: int, height: int, projection: str = "robinson") -> tuple[int, int]:
    """(row, col) of a projected point on a global map drawn in the figure-fraction rectangle
    ``map_rect`` of a ``width`` x ``height`` image: equal aspect, the map box centred in the
    rectangle (matplotlib's default anchor), the projection's full extent shown."""
    from pyproj import Transformer

    fwd = Transformer.from_crs("EPSG:4326", _pyproj_string(projection), always_xy=True)
    xmax = abs(fwd.transform(180.0, 0.0)[0])
    ymax = abs(fwd.transform(0.0, 90.0)[1])
    left, bottom, w, h = (map_rect[0] * width, map_rect[1] * height, map_rect[2] * width,
                          map_rect[3] * height)
    s = min(w / (2 * xmax), h / (2 * ymax))
    bw, bh = 2 * xmax * s, 2 * ymax * s
    bx0, by0 = left + (w - bw) / 2, bottom + (h - bh) / 2
    col = bx0 + (point.x + xmax) * s
    row = height - (by0 + (point.y + ymax) * s)
    return int(row), int(col)


def metres_to_pixels(metres: float, map_rect, width: int, height: int,
                     projection: str = "robinson") -> float:
    """How many pixels ``metres`` of projected distance span on that global map."""
    from pyproj import Transformer

    fwd = Transformer.from_crs("EPSG:4326", _pyproj_string(projection), always_xy=True)
    xmax = abs(fwd.transform(180.0, 0.0)[0])
    ymax = abs(fwd.transform(0.0, 90.0)[1])
    s = min(map_rect[2] * width / (2 * xmax), map_rect[3] * height / (2 * ymax))
    return metres * s
