"""The chart library: every shipped product renders on every model that lists it, from
generated runs read through the dataset layer, with the right colour at a known place.

For each (model, product) pair of ``models.yaml`` the product's inputs are read from a sample
run in the publisher's layout (``variables="all"``), a feature of known value is placed in
the filled field around a known latitude/longitude, and the rendered pixel there (found with
cartopy's projection of that point, not with the renderer's sampling tables) must have the
colour matplotlib's ``BoundaryNorm`` gives that value with the product's palette.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import BoundaryNorm, to_rgba

from framecast.catalog import load_models
from framecast.field import Field
from framecast.products import FilledLayer, load_catalog
from framecast.render.frame import LAND, MapFrame
from framecast.render.runner import load_fields

RUN = datetime(2026, 1, 14, 0, tzinfo=UTC)
STEP = 6
STEPS = list(range(STEP + 1))
CATALOG = load_catalog()
MODELS = load_models()
PAIRS = [(m, p) for m, spec in MODELS.items() for p in spec.products]
#: The feature: a disc of constant value on land in southern Germany (no lakes, no borders).
LAT, LON = 48.6, 9.8
SIZE = (520, 420)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from framecast.sampledata import generate_run

    out = {}
    for model in MODELS:
        d = tmp_path_factory.mktemp(f"lib-{model}")
        generate_run(model, RUN, STEPS, d, variables="all",
                     **({"icon_resolution": 40} if model == "icon" else {}))
        out[model] = d
    return out


@pytest.fixture(scope="module")
def datasets(runs):
    from framecast.dataset import RunDataset

    opened = {m: RunDataset.open(d, model=m) for m, d in runs.items()}
    yield opened
    for ds in opened.values():
        ds.close()


def feature_value(layer: FilledLayer) -> float:
    """A value in the middle of a bin above ``min_value`` (not at an edge, so exact)."""
    lv = layer.levels
    lo = 0 if layer.min_value is None else int(np.searchsorted(lv, layer.min_value))
    k = lo + (lv.size - 1 - lo) // 2
    return float((lv[k] + lv[min(k + 1, lv.size - 1)]) / 2)


def with_feature(field: Field, value: float, radius_deg: float) -> Field:
    """``field`` with ``value`` inside a disc around (LAT, LON)."""
    lats, lons = field.grid.lats, field.grid.lons
    if field.grid.kind == "regular":
        lons, lats = np.meshgrid(lons, lats)
    dlon = (lons - LON + 180.0) % 360.0 - 180.0
    dist = np.hypot((lats - LAT), dlon * np.cos(np.radians(LAT)))
    values = np.where(dist <= radius_deg, np.float32(value), field.values)
    return replace(field, values=values.astype(np.float32))


def expected_rgb(layer: FilledLayer, value: float, background: str) -> np.ndarray:
    """The colour matplotlib gives ``value`` with the layer's levels and palette, composited
    over the map background where the palette is translucent (clouds as sky)."""
    norm = BoundaryNorm(layer.levels, layer.cmap.N, extend=layer.extend)
    rgba = np.array(layer.cmap(norm(value)))
    alpha = rgba[3] * layer.alpha
    bg = np.array(to_rgba(background))[:3]
    return np.round((rgba[:3] * alpha + bg * (1 - alpha)) * 255)


def cartopy_pixel(frame: MapFrame, region, lon: float, lat: float) -> tuple[int, int]:
    """Row/column of (lon, lat): cartopy projects the point, the map's frozen extent places
    it (independent of the renderer's per-pixel sampling)."""
    import cartopy.crs as ccrs

    x, y = region.crs().transform_point(lon, lat, ccrs.PlateCarree())
    x0, y0, w, h = frame.map_px
    (xa, xb), (ya, yb) = frame.xlim, frame.ylim
    col = x0 + (x - xa) / (xb - xa) * w
    row = frame.height - (y0 + h) + (yb - y) / (yb - ya) * h
    return int(row), int(col)


def render_with_feature(ds, model: str, product_name: str, catalog=CATALOG):
    product = replace(catalog.product(product_name), size=SIZE)
    region_name = MODELS[model].regions[0] if model in MODELS else "europe"
    region = catalog.region(region_name)
    fields = load_fields(ds, product, STEP)
    fill = next(x for x in product.layers if isinstance(x, FilledLayer))
    value = feature_value(fill)
    radius = 2.0 if region.bounds is not None else 9.0
    fields[fill.field] = with_feature(fields[fill.field], value, radius)
    frame = MapFrame(product, region)
    img = frame.render(fields, model=model, run_time=RUN, step=STEP).copy()
    return frame, region, img, fill, value, fields


@pytest.mark.parametrize(("model", "product"), PAIRS, ids=[f"{m}-{p}" for m, p in PAIRS])
def test_product_renders_with_its_colour_at_the_feature(datasets, model, product):
    frame, region, img, fill, value, fields = render_with_feature(datasets[model], model,
                                                                  product)
    assert img.shape == (SIZE[1], SIZE[0], 4)
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 30, "not a blank image"
    for name, f in fields.items():  # every input came from the run and has data
        assert np.isfinite(f.values).any(), name
    r, c = cartopy_pixel(frame, region, LON, LAT)
    half = 3 if region.bounds is not None else 1
    patch = img[r - half:r + half + 1, c - half:c + half + 1, :3].reshape(-1, 3).astype(int)
    got = np.median(patch, axis=0)
    want = expected_rgb(fill, value, LAND)
    assert np.abs(got - want).max() <= 3, (product, model, value, got, want)


def test_every_shipped_product_is_rendered_by_some_model():
    listed = {p for spec in MODELS.values() for p in spec.products}
    assert listed == set(CATALOG.products)
    assert len(CATALOG.products) >= 30
    assert len(MODELS["icon-eu"].products) >= 30
