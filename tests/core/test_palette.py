"""8-bit palette PNGs against the 24-bit render of the same frame, both decoded by Pillow.

The palette is built from one frame (the worker's first) and used for later frames, as in
production. Bounds from the product requirements: over filled areas no pixel differs from the
24-bit render by more than 12/255 per channel; isobars and their labels stay where they are.
Filled-area pixels are found with colours computed here from matplotlib's colormap and
BoundaryNorm, not from the renderer's colour table.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pytest
from matplotlib.colors import BoundaryNorm, to_rgb
from PIL import Image

from framecast.errors import SpecError
from framecast.field import Field, Grid
from framecast.products import Catalog, FilledLayer, load_catalog
from framecast.render.encode import encode_png
from framecast.render.frame import LAND, OCEAN, MapFrame
from framecast.render.runner import load_fields, render_chunk

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
CATALOG = load_catalog()
ICON_EU = Grid("regular", 29.5 + np.arange(657) * 0.0625, -23.5 + np.arange(1377) * 0.0625)


class SyntheticRun:
    """Analytic fields on the ICON-EU grid: a pressure wave moving east, warmer to the south."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.lon, self.lat = np.meshgrid(grid.lons, grid.lats)

    def field(self, name: str, step: int) -> Field:
        wave = np.sin(np.radians(2 * self.lon - 10 * step)) * np.cos(np.radians(3 * self.lat))
        units, vals = {"t2m": ("K", 300 - 0.7 * np.abs(self.lat)),
                       "msl": ("Pa", 101300 + 2500 * wave),
                       "tcc": ("%", 50 + 50 * wave),
                       "tp_3h": ("kg m**-2", np.clip(8 * wave, 0, None))}[name]
        return Field(name, units, vals.astype(np.float32), self.grid, RUN, step, RUN)


def _decode(data: bytes) -> tuple[str, np.ndarray]:
    with Image.open(io.BytesIO(data)) as im:
        return im.mode, np.asarray(im.convert("RGB")).astype(int)


def _table_colours(layer: FilledLayer) -> np.ndarray:
    """The fill's class colours as matplotlib draws them, (n, 3) int; a translucent layer's
    (clouds as sky) composited over both the land and the ocean colour of the base map."""
    norm = BoundaryNorm(layer.levels, layer.cmap.N, extend=layer.extend)
    lv = np.asarray(layer.levels, dtype=float)
    probes = [*(lv[:-1] + lv[1:]) / 2, lv[0] - 1.0, lv[-1] + 1.0]
    rgba = np.array([layer.cmap(norm(v)) for v in probes])
    rgba[:, 3] *= layer.alpha
    out = []
    for bg in (LAND, OCEAN):
        back = np.asarray(to_rgb(bg))
        out.append(rgba[:, 3:] * rgba[:, :3] + (1 - rgba[:, 3:]) * back)
    return np.unique(np.round(np.concatenate(out) * 255).astype(int), axis=0)


def _near(rgb: np.ndarray, colour: np.ndarray, within: int) -> np.ndarray:
    """Pixels within ``within`` per channel of ``colour`` (the isobars' and labels' colour)."""
    return np.abs(rgb - colour).max(axis=2) < within


@pytest.mark.parametrize(("product", "region"), [("t2m_mslp", "europe"),
                                                  ("clouds", "europe"),
                                                  ("precip_mslp", "germany")])
def test_palette_frame_is_close_to_the_24_bit_frame(product, region):
    prod = CATALOG.product(product)
    frame = MapFrame(prod, CATALOG.region(region))
    run = SyntheticRun(ICON_EU)
    first = frame.render(load_fields(run, prod, 1), model="icon-eu", run_time=RUN, step=1)
    palette = frame.png_palette(first.copy())
    img = frame.render(load_fields(run, prod, 9), model="icon-eu", run_time=RUN, step=9)
    mode24, rgb24 = _decode(encode_png(img))
    mode8, rgb8 = _decode(encode_png(img, palette=palette))
    assert (mode24, mode8) == ("RGB", "P")
    assert rgb8.shape == (prod.size[1], prod.size[0], 3)

    # Filled areas: pixels of the map showing exactly one of the fill's class colours.
    x0, y0, w, h = frame.map_px
    top = prod.size[1] - (y0 + h)
    box = (slice(top, top + h), slice(x0, x0 + w))
    colours = _table_colours(prod.layers[0])
    # within 2 of a class colour: a translucent class is blended with 8-bit alpha by the
    # renderer, which may round a unit away from the exact blend computed here
    filled = np.zeros(rgb24[box].shape[:2], dtype=bool)
    for c in colours:
        filled |= np.abs(rgb24[box] - c).max(axis=2) <= 2
    assert filled.mean() > 0.5, f"only {filled.mean():.0%} of the map is filled"
    err = np.abs(rgb8[box] - rgb24[box]).max(axis=2)
    assert err[filled].max() <= 12, err[filled].max()

    # Isobars and labels: every pixel clearly in the line colour in one render is close to it
    # in the other.
    line = np.round(np.array(to_rgb(prod.layers[1].color)) * 255).astype(int)
    core24, core8 = _near(rgb24, line, 50), _near(rgb8, line, 50)
    loose24, loose8 = _near(rgb24, line, 110), _near(rgb8, line, 110)
    assert core24.sum() > 2000, "the frame has isobars"
    assert (core24 & ~loose8).sum() <= 0.002 * core24.sum()
    assert (core8 & ~loose24).sum() <= 0.002 * core8.sum()
    labels = frame._labels.labels
    assert labels, "the frame has isobar labels"
    renderer = frame.fig.canvas.get_renderer()
    for lab in labels:
        bx0, by0, bx1, by1 = frame._labels.extent(lab, renderer)
        rows = slice(max(0, prod.size[1] - by1), max(0, prod.size[1] - by0))
        cols = slice(max(0, bx0), max(0, bx1))
        c24, c8 = core24[rows, cols], core8[rows, cols]
        assert c24.sum() > 10, lab.text
        assert (c24 & ~loose8[rows, cols]).sum() == 0 and (c8 & ~loose24[rows, cols]).sum() == 0


def test_palette_png_is_smaller_than_24_bit():
    prod = CATALOG.product("t2m_mslp")
    frame = MapFrame(prod, CATALOG.region("europe"))
    run = SyntheticRun(ICON_EU)
    img = frame.render(load_fields(run, prod, 2), model="icon-eu", run_time=RUN, step=2)
    palette = frame.png_palette(img.copy())
    assert len(encode_png(img, palette=palette)) < 0.6 * len(encode_png(img))


def test_runner_writes_palette_by_default_and_24_bit_when_asked(icon_eu_run, tmp_path):
    from framecast.records import run_dir

    rgb = replace(CATALOG.product("clouds"), name="clouds_rgb", png_palette=False)
    cat = Catalog({**CATALOG.products, "clouds_rgb": rgb}, CATALOG.regions, CATALOG.sources)
    modes = {}
    for name in ("clouds", "clouds_rgb"):
        recs = render_chunk(icon_eu_run, tmp_path, model="icon-eu", run_time=RUN,
                            product=name, region="uk_ireland", steps=[1, 2], catalog=cat)
        base = run_dir(tmp_path, "icon-eu", RUN)
        modes[name] = set()
        for r in recs:
            with Image.open(base / r.path) as im:
                modes[name].add(im.mode)
                assert im.size == rgb.size
    assert modes == {"clouds": {"P"}, "clouds_rgb": {"RGB"}}


def test_png_palette_option_is_validated(tmp_path):
    import yaml

    spec = {"title": "t", "regions": ["europe"],
            "layers": [{"type": "contour", "field": "msl", "units": "hPa",
                        "levels": [1000, 1010]}]}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"products": {"a": spec, "b": {**spec, "png_palette": False}}}))
    cat = load_catalog(path)
    assert cat.product("a").png_palette is True and cat.product("b").png_palette is False
    path.write_text(yaml.safe_dump({"products": {"a": {**spec, "png_palette": "yes"}}}))
    with pytest.raises(SpecError, match=r"p\.yaml.*a\.png_palette.*'yes'"):
        load_catalog(path)


def test_isobar_labels_sit_on_their_isobar():
    """Each label's position, projected back with cartopy, has its level's pressure."""
    import cartopy.crs as ccrs

    prod = CATALOG.product("t2m_mslp")
    frame = MapFrame(prod, CATALOG.region("europe"))
    step = 4
    img = frame.render(load_fields(SyntheticRun(ICON_EU), prod, step), model="icon-eu",
                       run_time=RUN, step=step)
    labels = frame._labels.labels
    assert len(labels) >= 5
    xy = np.array([[lab.x, lab.y] for lab in labels])
    lonlat = ccrs.PlateCarree().transform_points(frame.crs, xy[:, 0], xy[:, 1])
    lon, lat = lonlat[:, 0], lonlat[:, 1]
    wave = np.sin(np.radians(2 * lon - 10 * step)) * np.cos(np.radians(3 * lat))
    hpa = 1013 + 25 * wave  # the analytic field SyntheticRun writes, in hPa
    values = np.array([float(lab.text) for lab in labels])
    assert np.abs(hpa - values).max() < 1.0, list(zip(values, hpa.round(2), strict=True))
    # Readable: never upside down, and a drawn bitmap of text size.
    renderer = frame.fig.canvas.get_renderer()
    for lab in labels:
        assert -90 < lab.rotation <= 90, "never upside down"
        bx0, by0, bx1, by1 = frame._labels.extent(lab, renderer)
        assert bx1 - bx0 >= 8 and by1 - by0 >= 6
    assert img.shape == (prod.size[1], prod.size[0], 4)


def test_palette_with_more_fixed_colours_than_entries_still_encodes():
    from framecast.render.encode import PngPalette

    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (40, 50, 4), dtype=np.uint8)
    pal = PngPalette.build(rng.integers(0, 255, (400, 3), dtype=np.uint8), img)
    assert len(pal.colors) == 256
    mode, rgb = _decode(encode_png(img, palette=pal))
    assert mode == "P" and rgb.shape == (40, 50, 3)
