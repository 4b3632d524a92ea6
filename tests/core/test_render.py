"""The renderer draws what the spec says: sizes, colours over land and sea, isobar labels.

Fields here are built in the test with known values, so expected colours are exact; a small
set of reference images guards the overall look (regenerate them with ``make update-reference``
after an intended change and look at them; a comparison never writes them).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framecast.field import Field, Grid
from framecast.products import FilledLayer, load_catalog
from framecast.render.colors import ColorTable
from framecast.render.encode import encode_png
from framecast.render.frame import LAND, OCEAN, MapFrame
from framecast.render.runner import load_fields

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
REFERENCE = Path(__file__).parent / "reference"
CATALOG = load_catalog()

ICON_EU = Grid("regular", 29.5 + np.arange(657) * 0.0625, -23.5 + np.arange(1377) * 0.0625)
GLOBAL = Grid("regular", np.linspace(90, -90, 721), np.arange(1440) * 0.25)


class SyntheticRun:
    """A dataset stand-in with analytic fields: a pressure dipole moving east, warm south."""

    NAMES = frozenset({"t2m", "msl", "tp_3h", "gust10", "tcc", "cape", "u10", "v10", "u850",
                       "v850", "wind850", "t500", "gh500", "gh850", "thick_500_1000"})

    def __init__(self, grid: Grid, constant: dict[str, float] | None = None) -> None:
        self.grid, self.constant = grid, constant or {}
        self.lon, self.lat = np.meshgrid(grid.lons, grid.lats)

    def field(self, name: str, step: int) -> Field:
        lon, lat = self.lon, self.lat
        units = {"t2m": "K", "msl": "Pa", "tp_3h": "kg m**-2", "gust10": "m s**-1",
                 "tcc": "%", "cape": "J kg**-1", "u10": "m s**-1", "v10": "m s**-1",
                 "u850": "m s**-1", "v850": "m s**-1", "wind850": "m s**-1", "t500": "K",
                 "gh500": "gpm", "gh850": "gpm", "thick_500_1000": "gpm"}[name]
        if name in self.constant:
            vals = np.full(lon.shape, self.constant[name])
        else:
            wave = np.sin(np.radians(2 * lon - 10 * step)) * np.cos(np.radians(3 * lat))
            base = {"t2m": 300 - 0.7 * np.abs(lat), "msl": 101300 + 2500 * wave,
                    "tp_3h": np.clip(8 * wave, 0, None), "gust10": 15 + 12 * wave,
                    "tcc": 50 + 50 * wave, "cape": np.clip(1500 * wave, 0, None),
                    "u10": 8 * wave, "v10": 4 + 0 * wave, "u850": 15 * wave,
                    "v850": 5 + 0 * wave, "wind850": 15 * np.abs(wave) + 5,
                    "t500": 240 + 8 * wave, "gh500": 5600 + 120 * wave,
                    "gh850": 1450 + 60 * wave, "thick_500_1000": 5460 + 100 * wave}[name]
            vals = base
        return Field(name, units, vals.astype(np.float32), self.grid, RUN, step, RUN)


def _render(product: str, region: str, grid: Grid = ICON_EU, step: int = 3,
            constant: dict[str, float] | None = None, size=(600, 480)):
    prod = replace(CATALOG.product(product), size=size, site=None)  # unbranded: see test_style
    frame = MapFrame(prod, CATALOG.region(region))
    fields = load_fields(SyntheticRun(grid, constant), prod, step)
    img = frame.render(fields, model="icon-eu", run_time=RUN, step=step).copy()
    return frame, img


def _rgb(hexcolor: str) -> np.ndarray:
    return np.array([int(hexcolor[i:i + 2], 16) for i in (1, 3, 5)])


def _near(img: np.ndarray, rc: tuple[int, int], color, tol: int = 6) -> bool:
    """The median colour of the 7x7 patch around ``rc`` (robust to a border line) is ``color``."""
    r, c = rc
    patch = img[r - 3:r + 4, c - 3:c + 4, :3].reshape(-1, 3).astype(int)
    return bool(np.abs(np.median(patch, axis=0) - np.asarray(color)[:3]).max() <= tol)


def _coverage() -> list[tuple[str, str]]:
    """Every shipped product (on its first region) and every region (with a product using it)."""
    # Products on fields SyntheticRun knows; tests/core/test_library.py renders every product
    # from generated model runs.
    products = {p: prod for p, prod in CATALOG.products.items()
                if _layer_names(prod) <= SyntheticRun.NAMES}
    pairs = {(p, prod.regions[0]) for p, prod in products.items()}
    for r in CATALOG.regions:
        if not any(pr == r for _, pr in pairs):
            pairs.add(next((p, r) for p, prod in products.items() if r in prod.regions))
    return sorted(pairs)


def _layer_names(prod) -> set[str]:
    return {n for layer in prod.layers
            for n in ((layer.u, layer.v) if layer.kind == "barbs" else (layer.field,))}


SHIPPED = _coverage()


@pytest.mark.parametrize(("product", "region"), SHIPPED, ids=[f"{p}-{r}" for p, r in SHIPPED])
def test_every_shipped_product_and_region_renders(product, region):
    grid = ICON_EU if region in {"europe", "germany", "alps", "uk_ireland"} else GLOBAL
    frame, img = _render(product, region, grid)
    prod = CATALOG.product(product)
    assert img.shape == (480, 600, 4)
    x0, y0, w, h = frame.map_px
    # The map fills the available width or height (its aspect ratio is the region's).
    assert w >= 0.95 * 0.98 * 600 or h >= 0.95 * (480 - 46 - 58), frame.map_px
    colours = np.unique(img[..., :3].reshape(-1, 3), axis=0)
    assert len(colours) > 50, "not a blank image"
    if any(layer.kind == "contour" and layer.labels for layer in prod.layers):
        labels = [lab.text for lab in frame._labels.labels]
        assert labels, "contour labels present"
        assert all(t.replace("-", "").isdigit() for t in labels)
    if any(layer.kind == "barbs" for layer in prod.layers):
        assert any(type(a).__name__ == "Barbs" for a in frame._dynamic)


class RampRun:
    """A dataset whose fill field rises across the region in both directions, in the layer's
    own units: ``t`` (position in level bands) = 0.3 + (n - 1.6) * (0.6 x + 0.4 y) with x, y
    the point's place between the region's west/east and south/north bounds, mapped through
    the levels. A transposed, flipped or shifted grid puts other bands under the checked
    points."""

    def __init__(self, grid: Grid, layer: FilledLayer, bounds) -> None:
        self.grid, self.layer, self.bounds = grid, layer, bounds
        self.lon, self.lat = np.meshgrid(grid.lons, grid.lats)

    def band(self, lon, lat):
        w, e, s, n = self.bounds
        nb = self.layer.levels.size
        return 0.3 + (nb - 1.6) * (0.6 * (lon - w) / (e - w) + 0.4 * (lat - s) / (n - s))

    def value(self, lon, lat):
        lv = np.asarray(self.layer.levels, float)
        return np.interp(self.band(lon, lat), np.arange(lv.size), lv)

    def field(self, name: str, step: int) -> Field:
        if name != self.layer.field:
            raise AssertionError(f"only the fill field is drawn here, not {name}")
        vals = self.value(self.lon, self.lat).astype(np.float32)
        return Field(name, self.layer.units or "1", vals, self.grid, RUN, step, RUN)


# Open sea and the inside of large land areas in ICON-EU's domain, away from coasts and borders.
EUROPE_POINTS = [(-12.0, 45.0), (-15.0, 55.0), (5.0, 40.0), (18.0, 35.5), (-4.0, 40.0),
                 (2.5, 46.5), (10.0, 51.0), (26.0, 52.5), (31.0, 49.0), (40.0, 55.0),
                 (15.0, 63.0), (36.0, 39.0)]


@pytest.mark.parametrize("product", sorted(CATALOG.products))
def test_fill_colours_at_known_points(product):
    """Each product's fill has, at known places, the colour matplotlib gives the value there.

    The field varies over the map (:class:`RampRun`); the pixel of each place comes from a fresh
    cartopy GeoAxes of the region (tests/oracles.py), its colour from matplotlib's BoundaryNorm
    + colormap, not from the renderer's sampler, ``pixel_of`` or colour table. Checked by hand:
    flipping the grid's rows or columns, or swapping lon/lat in the sampler, fails this test.
    """
    from oracles import base_rgb, fill_rgb, map_pixel, patch_rgb

    prod = CATALOG.product(product)
    layer = next(x for x in prod.layers if isinstance(x, FilledLayer))
    region = CATALOG.region("europe")
    prod = replace(prod, layers=(layer,), size=(600, 480))  # no isolines/barbs over the points
    run = RampRun(ICON_EU, layer, region.bounds)
    frame = MapFrame(prod, region)
    img = frame.render(load_fields(run, prod, 3), model="m", run_time=RUN, step=3)[..., :3]
    w, e, s, n = region.bounds
    changed = 0
    # Only places well inside a band (no edge ambiguity); enough of them for every product.
    points = [(lon, lat) for lon, lat in EUROPE_POINTS if 0.15 <= run.band(lon, lat) % 1 <= 0.85]
    assert len(points) >= 6, points
    for lon, lat in points:
        t = run.band(lon, lat)
        want = fill_rgb(layer, run.value(lon, lat), background=base_rgb(lon, lat))
        got = patch_rgb(img, map_pixel(region, frame.map_px, img.shape[0], lon, lat))
        assert np.abs(got - want).max() <= 3, (product, lon, lat, got, want)
        mirrored = (run.band(w + e - lon, lat), run.band(lon, s + n - lat))
        changed += all(int(m) != int(t) for m in mirrored)
    # The check can tell a mirrored picture from the right one at most points.
    assert changed >= len(points) // 2, changed


def test_land_and_sea_show_through_where_nothing_falls():
    # No precipitation anywhere: the base map's land and ocean colours are visible.
    frame, img = _render("precip_mslp", "europe", constant={"tp_3h": 0.0, "msl": 101300.0})
    assert _near(img, frame.pixel_of(-15.0, 45.0), _rgb(OCEAN))  # Bay of Biscay, open sea
    assert _near(img, frame.pixel_of(26.0, 52.5), _rgb(LAND))  # Belarus, land
    frame, img = _render("precip_mslp", "europe", constant={"tp_3h": 12.0, "msl": 101300.0})
    layer = CATALOG.product("precip_mslp").layers[0]
    expect = ColorTable.for_layer(layer).colorize(np.array([12.0]))[0]
    assert _near(img, frame.pixel_of(-15.0, 45.0), expect, tol=2)


def test_frames_do_not_accumulate_artists():
    prod = replace(CATALOG.product("wind850"), size=(500, 400))
    frame = MapFrame(prod, CATALOG.region("europe"))
    run = SyntheticRun(ICON_EU)
    counts = []
    for step in [1, 2, 3, 4, 1, 2]:
        frame.render(load_fields(run, prod, step), model="m", run_time=RUN, step=step)
        counts.append((len(frame.ax.get_children()), len(frame.fig.get_children())))
    # The same step drawn again has exactly the same artists: nothing is left over.
    assert counts[0] == counts[4] and counts[1] == counts[5]


REFERENCE_CASES = [("t2m_mslp", "europe", ICON_EU), ("precip_mslp", "germany", ICON_EU),
                   ("wind850", "global", GLOBAL)]


def reference_image(product: str, region: str, grid: Grid) -> np.ndarray:
    """The picture a reference case shows (tests/core/update_reference.py writes these)."""
    return _render(product, region, grid, size=(500, 400))[1]


def _compare_with_reference(img: np.ndarray, name: str, tmp_path: Path) -> None:
    """Fail unless ``img`` looks like the stored reference ``name``; read-only on REFERENCE."""
    from matplotlib.testing.compare import compare_images

    actual = tmp_path / name
    actual.write_bytes(encode_png(img))
    ref = REFERENCE / name
    assert ref.is_file(), f"missing reference image {ref} (make update-reference)"
    result = compare_images(str(ref), str(actual), tol=6)
    assert result is None, result


@pytest.mark.parametrize(("product", "region", "grid"), REFERENCE_CASES,
                         ids=[f"{p}-{r}" for p, r, _ in REFERENCE_CASES])
def test_reference_images(product, region, grid, tmp_path):
    _compare_with_reference(reference_image(product, region, grid), f"{product}_{region}.png",
                            tmp_path)


def test_reference_comparison_never_rewrites_the_reference(tmp_path, monkeypatch):
    """A wrong picture fails the comparison and leaves the reference as it was, even with the
    old update switch set: re-adding 'write the reference, then compare' makes this fail."""
    monkeypatch.setenv("FRAMECAST_UPDATE_REFERENCE", "1")
    name = "t2m_mslp_europe.png"
    before = (REFERENCE / name).read_bytes()
    wrong = reference_image("t2m_mslp", "europe", ICON_EU)[::-1].copy()  # upside down
    with pytest.raises(AssertionError):
        _compare_with_reference(wrong, name, tmp_path)
    assert (REFERENCE / name).read_bytes() == before


def test_png_is_rgb_of_product_size(tmp_path):
    _, img = _render("clouds", "uk_ireland", size=(640, 480))
    path = tmp_path / "x.png"
    path.write_bytes(encode_png(img))
    with Image.open(path) as im:
        assert im.size == (640, 480) and im.mode == "RGB"


def test_raster_fill_looks_like_vector_contourf():
    """The raster fill is the same picture as matplotlib's contourf at the output size."""
    prod = CATALOG.product("t2m_mslp")
    vector = replace(prod, layers=(replace(prod.layers[0], mode="contourf"), *prod.layers[1:]),
                     size=(600, 480))
    raster = replace(prod, size=(600, 480))
    run = SyntheticRun(ICON_EU)
    imgs, frames = [], []
    for p in (raster, vector):
        frame = MapFrame(p, CATALOG.region("europe"))
        imgs.append(frame.render(load_fields(run, p, 3), model="m", run_time=RUN,
                                 step=3)[..., :3].astype(int).copy())
        frames.append(frame)
    assert frames[1].fill_ax.collections, "the vector frame was drawn with contourf"
    diff = np.abs(imgs[0] - imgs[1]).max(axis=2)
    # Only pixels on the edges between colour bands may differ (anti-aliasing, sub-pixel
    # placement of an edge), and only slightly; coastlines and isobars are on top in both.
    assert (diff > 0).mean() < 0.03, (diff > 0).mean()
    assert (diff > 40).mean() < 0.001, (diff > 40).mean()
