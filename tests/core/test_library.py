"""The chart library: every shipped product renders on every model that lists it, from
generated runs read through the dataset layer, with the right colour at a known place.

For each (model, product) pair of ``models.yaml`` the product's inputs are read from a sample
run in the publisher's layout (``variables="all"``), a feature of known value is placed in
the filled field around a known latitude/longitude, and the rendered pixel there (found with
cartopy's projection of that point, not with the renderer's sampling tables) must have the
colour matplotlib's ``BoundaryNorm`` gives that value with the product's palette.
Anomaly products read the sample climatology (``framecast sample-data --climatology``) the
models name in ``climatology:``; their values are checked in ``test_anomaly.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import BoundaryNorm, to_rgba

from framecast.catalog import ClimatologySpec, load_models
from framecast.field import Field
from framecast.products import BarbsLayer, ContourLayer, FilledLayer, load_catalog
from framecast.render.frame import LAND, OCEAN, MapFrame
from framecast.render.runner import load_fields

RUN = datetime(2026, 1, 14, 0, tzinfo=UTC)
STEP = 6
STEPS = list(range(STEP + 1))
CATALOG = load_catalog()
#: The shipped models with the optional climatology switched on (as docs/variables.md says),
#: so the anomaly products are part of every model's library here.
ANOMALY_PRODUCTS = ("t2m_anomaly", "z500_anomaly")
MODELS = {m: replace(spec, products=(*spec.products, *ANOMALY_PRODUCTS),
                     climatology=ClimatologySpec("climatology/monthly_means.grib2",
                                                 ("t2m", "gh500", "t850", "msl")))
          for m, spec in load_models().items()}
PAIRS = [(m, p) for m, spec in MODELS.items() for p in spec.products]
#: The feature: a disc of constant value on land in southern Germany (no lakes, no borders)
#: on regional maps; on world maps, where every border is a few pixels apart, mid-Atlantic.
REGIONAL_POINT = (48.6, 9.8, LAND)
GLOBAL_POINT = (40.0, -40.0, OCEAN)
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
def climatology(tmp_path_factory) -> Path:
    from framecast.sampledata.climatology import generate_climatology

    return generate_climatology(tmp_path_factory.mktemp("clim") / "monthly_means.grib2")


@pytest.fixture(scope="module")
def datasets(runs, climatology):
    from framecast.dataset import RunDataset

    opened = {m: RunDataset.open(d, model=m, climatology=climatology) for m, d in runs.items()}
    yield opened
    for ds in opened.values():
        ds.close()


def feature_value(layer: FilledLayer) -> float:
    """A value in the middle of a bin above ``min_value`` (not at an edge, so exact)."""
    lv = layer.levels
    lo = 0 if layer.min_value is None else int(np.searchsorted(lv, layer.min_value))
    k = lo + (lv.size - 1 - lo) // 2
    return float((lv[k] + lv[min(k + 1, lv.size - 1)]) / 2)


def with_feature(field: Field, value: float, radius_deg: float, lat: float, lon: float
                 ) -> Field:
    """``field`` with ``value`` inside a disc around (lat, lon)."""
    lats, lons = field.grid.lats, field.grid.lons
    if field.grid.kind == "regular":
        lons, lats = np.meshgrid(lons, lats)
    dlon = (lons - lon + 180.0) % 360.0 - 180.0
    dist = np.hypot((lats - lat), dlon * np.cos(np.radians(lat)))
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
    lat, lon, background = REGIONAL_POINT if region.bounds is not None else GLOBAL_POINT
    radius = 2.0 if region.bounds is not None else 9.0
    # Keep lines and barbs off the checked pixels: between two contour levels and no wind
    # (NaN: no barb) in a wider disc; they are drawn everywhere else.
    for layer in product.layers:
        if isinstance(layer, ContourLayer):
            mid = float((layer.levels[0] + layer.levels[1]) / 2)
            fields[layer.field] = with_feature(fields[layer.field], mid, 2 * radius, lat, lon)
        elif isinstance(layer, BarbsLayer):
            for name in (layer.u, layer.v):
                fields[name] = with_feature(fields[name], np.nan, 2 * radius, lat, lon)
    fields[fill.field] = with_feature(fields[fill.field], value, radius, lat, lon)
    frame = MapFrame(product, region)
    img = frame.render(fields, model=model, run_time=RUN, step=STEP).copy()
    return frame, region, img, fill, value, fields, (lat, lon, background)


@pytest.mark.parametrize(("model", "product"), PAIRS, ids=[f"{m}-{p}" for m, p in PAIRS])
def test_product_renders_with_its_colour_at_the_feature(datasets, model, product):
    frame, region, img, fill, value, fields, (lat, lon, background) = render_with_feature(
        datasets[model], model, product)
    assert img.shape == (SIZE[1], SIZE[0], 4)
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 30, "not a blank image"
    for name, f in fields.items():  # every input came from the run and has data
        assert np.isfinite(f.values).any(), name
    r, c = cartopy_pixel(frame, region, lon, lat)
    half = 3 if region.bounds is not None else 1
    patch = img[r - half:r + half + 1, c - half:c + half + 1, :3].reshape(-1, 3).astype(int)
    got = np.median(patch, axis=0)
    want = expected_rgb(fill, value, background)
    assert np.abs(got - want).max() <= 3, (product, model, value, got, want)


def test_every_shipped_product_is_rendered_by_some_model():
    listed = {p for spec in MODELS.values() for p in spec.products}
    assert listed == set(CATALOG.products)
    assert len(CATALOG.products) >= 30
    assert len(MODELS["icon-eu"].products) >= 30


NEW_PRODUCT = """
  dewpoint850:                 # added by YAML only: a derived field, a new palette file
    title: 850 hPa dewpoint (°C) and geopotential (dam)
    regions: [europe]
    layers:
      - {type: filled, field: td850, units: degC, cmap: moist, extend: both,
         colorbar_label: "850 hPa dewpoint (°C)"}
      - {type: contour, field: gh850, units: dam, levels: {start: 120, stop: 168, step: 4},
         color: black, linewidth: 1.0}
"""


def test_a_product_added_by_yaml_only_renders(tmp_path, datasets):
    import shutil

    import yaml

    from framecast.catalog import check_products
    from framecast.products import CONFIG_DIR

    products = tmp_path / "products.yaml"
    products.write_text((CONFIG_DIR / "products.yaml").read_text() + NEW_PRODUCT)
    shutil.copytree(CONFIG_DIR / "palettes", tmp_path / "palettes")
    shutil.copytree(CONFIG_DIR / "style", tmp_path / "style")
    (tmp_path / "palettes" / "moist.cpt").write_text(
        "# dewpoint classes, degC\n-40 120 80 40 -20 120 80 40\n-20 200 170 110 -10 200 170 110\n"
        "-10 180 230 180 0 180 230 180\n0 60 170 90 10 60 170 90\n10 30 90 200 20 30 90 200\n"
        "B 90 60 30\nF 120 40 200\n")
    style = yaml.safe_load((CONFIG_DIR / "style.yaml").read_text())
    style["palettes"]["moist"] = {"file": "palettes/moist.cpt"}
    (tmp_path / "style.yaml").write_text(yaml.safe_dump(style))
    cat = load_catalog(products, style=tmp_path / "style.yaml")
    layer = cat.product("dewpoint850").layers[0]
    assert list(layer.levels) == [-40, -20, -10, 0, 10, 20]  # the .cpt's own boundaries
    check_products(replace(MODELS["icon-eu"], products=("dewpoint850",)), cat)
    frame, region, img, fill, value, fields, (lat, lon, bg) = render_with_feature(
        datasets["icon-eu"], "icon-eu", "dewpoint850", catalog=cat)
    assert value == -5.0  # the middle class, -10..0: (180, 230, 180) in the file
    r, c = cartopy_pixel(frame, region, lon, lat)
    got = np.median(img[r - 3:r + 4, c - 3:c + 4, :3].reshape(-1, 3), axis=0)
    assert np.abs(got - [180, 230, 180]).max() <= 2
    # The derived field really is MetPy's dewpoint of the run's 850 hPa T and RH.
    from metpy.calc import dewpoint_from_relative_humidity
    from metpy.units import units

    ds = datasets["icon-eu"]
    t, rh = ds.field("t850", STEP).values, ds.field("r850", STEP).values
    want = dewpoint_from_relative_humidity(t * units.K, rh * units.percent).to("degC").m
    td = ds.field("td850", STEP).to("degC").values
    assert np.nanmax(np.abs(td - want)) < 0.05


def test_a_model_lacking_inputs_is_refused_naming_them():
    from framecast.catalog import check_products, needed_variables
    from framecast.errors import SpecError

    gfs = replace(MODELS["gfs"], products=("t2m_mslp", "precip_type", "ir_satellite"))
    with pytest.raises(SpecError) as err:
        check_products(gfs, CATALOG)
    msg = str(err.value)
    assert "'precip_type' needs rain_con, rain_gsp, snow_con, snow_gsp" in msg
    assert "'ir_satellite' needs ir_bt" in msg and "t2m_mslp" not in msg
    icon = replace(MODELS["icon"], products=("vort500",))
    with pytest.raises(SpecError, match="'vort500' needs vort500"):
        needed_variables(icon, CATALOG)
    # Anomalies need the climatology of their field: none configured, or not that field.
    no_clim = replace(MODELS["icon-eu"], products=("t2m_mslp", "t2m_anomaly", "z500_anomaly"),
                      climatology=None)
    with pytest.raises(SpecError) as err:
        check_products(no_clim, CATALOG)
    msg = str(err.value)
    assert "'t2m_anomaly' needs climatology of t2m" in msg
    assert "'z500_anomaly' needs climatology of gh500" in msg
    assert "models.icon-eu.climatology is not configured" in msg and "t2m_mslp" not in msg
    partial = replace(no_clim, climatology=replace(MODELS["icon-eu"].climatology,
                                                   fields=("t2m",)))
    with pytest.raises(SpecError, match="'z500_anomaly' needs climatology of gh500") as err:
        check_products(partial, CATALOG)
    assert "t2m_anomaly" not in str(err.value)


def test_models_download_only_what_their_products_need():
    from framecast.catalog import needed_variables, run_files
    from framecast.products import base_variables

    for name, spec in MODELS.items():
        want = set()
        for p in spec.products:
            want |= CATALOG.product(p).variables()
        assert set(needed_variables(spec, CATALOG)) == want, name
    small = replace(MODELS["icon-eu"], products=("t2m_mslp",))
    files = run_files(small, RUN, needed_variables(small, CATALOG), steps=[0, 1])
    assert {v for f in files for v in f.variables} == {"t2m", "msl"}
    gfs = replace(MODELS["gfs"], products=("snow_depth", "jet300"))
    files = run_files(gfs, RUN, needed_variables(gfs, CATALOG), steps=[3])
    assert set(files[0].fields) == {"SNOD:surface", "UGRD:300 mb", "VGRD:300 mb",
                                    "HGT:300 mb"}
    assert base_variables("wind300") == {"u300", "v300"}
