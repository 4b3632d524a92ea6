"""Placement oracle: where a feature at a known lat/lon lands in a rendered frame, compared
with the pixel cartopy computes for that point on its own figure (not the renderer's pixel
lookup tables or sampler)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap

from framecast.field import Field
from framecast.products import FilledLayer, Product, load_catalog

MARK = np.array([255, 0, 255])


def cartopy_pixel(frame, region, lon: float, lat: float) -> tuple[float, float]:
    """(row, col) of a point on a fresh cartopy GeoAxes filling the frame's map box."""
    import cartopy.crs as ccrs
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    w, h = frame.width, frame.height
    dpi = frame.product.dpi
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    x0, y0, bw, bh = frame.map_px
    ax = fig.add_axes((x0 / w, y0 / h, bw / w, bh / h), projection=region.crs())
    if region.bounds is None:
        ax.set_global()
    else:
        ax.set_extent(region.bounds, crs=ccrs.PlateCarree())
    fig.canvas.draw()
    xy = ax.projection.transform_point(lon, lat, ccrs.PlateCarree())
    dx, dy = ax.transData.transform(xy)
    return h - dy, dx


def marked_centroid(img: np.ndarray) -> tuple[float, float]:
    rgb = img[..., :3].astype(int)
    mask = np.abs(rgb - MARK).sum(axis=2) < 30
    assert mask.sum() > 20, "feature not drawn"
    rows, cols = np.nonzero(mask)
    return rows.mean() + 0.5, cols.mean() + 0.5


def hot_pixel_offset(source: Path | Field, name: str, region_name: str, lon: float, lat: float,
                     *, cold: bool = False, method: str | None = None) -> float:
    """Distance (pixels) between the rendered extreme of ``name`` and cartopy's pixel."""
    from framecast.dataset import RunDataset
    from framecast.render.frame import MapFrame

    if isinstance(source, Field):
        field = source
    else:
        with RunDataset.open(source) as ds:
            field = ds.field(name, ds.steps[0])
    vals = np.asarray(field.values, dtype=np.float32)
    if cold:
        vals = -vals
    field = Field(name, field.units, vals, field.grid, field.run_time, field.step,
                  field.valid_time, dict(field.attrs))
    peak, base = float(np.nanmax(vals)), float(np.nanmedian(vals))
    thr = base + 0.85 * (peak - base)
    layer = FilledLayer(field=name, levels=np.array([thr, peak + 1.0]),
                        cmap=ListedColormap(["#ff00ff", "#ff00ff"]), extend="max",
                        min_value=thr, colorbar=False)
    region = load_catalog().region(region_name)
    product = Product(name="placement", title="placement", layers=(layer,),
                      regions=(region_name,))
    frame = MapFrame(product, region)
    img = np.array(frame.render({name: field}, model="test", run_time=field.run_time,
                                step=field.step))
    r, c = marked_centroid(img)
    er, ec = cartopy_pixel(frame, region, lon, lat)
    return float(np.hypot(r - er, c - ec))
