"""Product and region specs: the shipped catalog is valid, malformed specs fail clearly."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from framecast.errors import SpecError
from framecast.products import CONFIG_DIR, base_variables, load_catalog

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


def test_shipped_catalog_has_the_products_and_regions_a_forecast_site_needs():
    cat = load_catalog()
    assert {"t2m_mslp", "precip_mslp", "gusts", "clouds", "cape", "z500_t500"} <= set(cat.products)
    assert {"europe", "germany", "global"} <= set(cat.regions)
    assert cat.regions["europe"].projection == "lambert_conformal"
    assert cat.regions["global"].bounds is None
    assert cat.product("t2m_mslp").variables() == {"t2m", "msl"}
    assert cat.product("wind850").variables() == {"u850", "v850", "gh850"}
    assert cat.product("precip_mslp").variables() == {"tp", "msl"}


def test_derived_variables_resolve_to_grib_variables():
    assert base_variables("wind10") == {"u10", "v10"}
    assert base_variables("tp_24h") == {"tp"}
    assert base_variables("thick_500_1000") == {"gh500", "gh1000"}
    with pytest.raises(KeyError):
        base_variables("tp_h")


def test_filename_and_title_templates():
    p = load_catalog().product("t2m_mslp")
    assert p.format_filename(region="europe", model="icon-eu", run=RUN, step=7) == \
        "t2m_mslp_europe_2026112300_007.png"
    title = p.format_title(region="europe", model="icon-eu", run=RUN, step=30)
    assert "+030 h" in title and "valid Tue 24 Nov 2026 06 UTC" in title


def _write(tmp_path: Path, products: dict, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"products": products}))
    return path


def _good() -> dict:
    return {"title": "T", "regions": ["europe"], "layers": [
        {"type": "filled", "field": "t2m", "units": "degC", "cmap": "viridis",
         "levels": {"start": 0, "stop": 10, "step": 2}}]}


def test_adding_a_product_is_a_config_change(tmp_path):
    path = _write(tmp_path, {"my_t2m": _good()})
    cat = load_catalog(path)
    assert list(cat.products) == ["my_t2m"]
    assert list(cat.product("my_t2m").layers[0].levels) == [0, 2, 4, 6, 8, 10]


@pytest.mark.parametrize(("mutate", "expect"), [
    (lambda d: d["layers"][0].update(field="t3m"), "layers[0].field: unknown variable 't3m'"),
    (lambda d: d["layers"][0].update(cmap="nosuchmap"), "unknown colormap 'nosuchmap'"),
    (lambda d: d["layers"][0].update(levels=[3, 2, 1]), "strictly increasing"),
    (lambda d: d["layers"][0].update(type="pie"), "layer type must be one of"),
    (lambda d: d["layers"][0].update(cmap=["red", "blue"]), "2 colours for 7 bins"),
    (lambda d: d.update(regions=["atlantis"]), "unknown region 'atlantis'"),
    (lambda d: d.update(size=[10, 10]), "size: expected [width, height]"),
    (lambda d: d.update(filename="{product}.png"), "must use ['step']"),
    (lambda d: d.update(filename="{product}_{stepp}.png"), "unknown placeholder(s) ['stepp']"),
    (lambda d: d.update(colour="red"), "unknown field(s) ['colour']"),
    (lambda d: d.pop("layers"), "missing required field(s) ['layers']"),
])
def test_malformed_product_specs_name_file_product_and_field(tmp_path, mutate, expect):
    spec = _good()
    mutate(spec)
    path = _write(tmp_path, {"bad_product": spec})
    with pytest.raises(SpecError) as info:
        load_catalog(path)
    msg = str(info.value)
    assert str(path) in msg and "bad_product" in msg and expect in msg


def test_malformed_yaml_and_unknown_names(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("products: {a: [1, 2\n")
    with pytest.raises(SpecError, match="broken.yaml: malformed YAML"):
        load_catalog(bad)
    with pytest.raises(SpecError, match="cannot read"):
        load_catalog(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="unknown product 'nope'"):
        load_catalog().product("nope")


def test_bad_region_projection_is_reported(tmp_path):
    regions = yaml.safe_load((CONFIG_DIR / "regions.yaml").read_text())
    regions["regions"]["europe"]["projection"] = {"name": "lambert_conformal", "bogus": 1}
    rpath = tmp_path / "r.yaml"
    rpath.write_text(yaml.safe_dump(regions))
    with pytest.raises(SpecError, match=r"regions\.europe\.projection: invalid projection"):
        load_catalog(regions=rpath)
    regions["regions"]["europe"]["bounds"] = [10, 5, 40, 50]
    regions["regions"]["europe"]["projection"] = "mercator"
    rpath.write_text(yaml.safe_dump(regions))
    with pytest.raises(SpecError, match=r"regions\.europe\.bounds"):
        load_catalog(regions=rpath)
