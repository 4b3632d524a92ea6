"""Natural Earth preseeding: the feature list follows the region table; --check never downloads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from framecast.geo import data_dir
from framecast.products import load_catalog

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def preseed():
    spec = importlib.util.spec_from_file_location(
        "deploy_preseed", ROOT / "deploy" / "preseed_natural_earth.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_features_of_the_shipped_regions(preseed):
    got = set(preseed.needed_features(load_catalog().regions.values()))
    # germany/alps/uk_ireland draw 10m coastlines and borders with 50m land and lakes
    assert {("physical", "coastline", "10m"), ("cultural", "admin_0_boundary_lines_land", "10m"),
            ("physical", "land", "50m"), ("physical", "lakes", "50m")} <= got
    # the global region draws no lakes; 110m lakes are not needed by anything
    assert ("physical", "lakes", "110m") not in got
    assert ("physical", "land", "10m") not in got  # never drawn: land is 50m for 10m regions
    assert ("cultural", "admin_0_countries", "110m") in got  # choropleth maps


def test_a_new_region_adds_its_scale(preseed, tmp_path):
    doc = yaml.safe_load((ROOT / "include/framecast/config/regions.yaml").read_text())
    doc["regions"] = {"iceland": {"description": "Iceland", "bounds": [-25, -13, 63, 67],
                                  "projection": {"name": "platecarree"},
                                  "coastline_scale": "10m", "lakes": False, "borders": False},
                      "europe": {**doc["regions"]["europe"], "coastline_scale": "110m",
                                 "borders": False},
                      "global": doc["regions"]["global"],
                      "north_america": doc["regions"]["global"],
                      **{k: doc["regions"]["global"] for k in doc["regions"]
                         if k not in ("europe", "global", "north_america")}}
    path = tmp_path / "regions.yaml"
    path.write_text(yaml.safe_dump(doc))
    regions = load_catalog(regions=path).regions.values()
    got = set(preseed.needed_features(regions))
    assert ("physical", "coastline", "10m") in got  # iceland
    assert ("cultural", "admin_0_boundary_lines_land", "10m") not in got  # borders: false
    assert ("physical", "coastline", "50m") not in got  # no region draws 50m any more
    assert ("physical", "land", "50m") in got  # iceland's land and lakes scale


def test_check_passes_on_the_preseeded_folder(preseed, capsys):
    assert data_dir() is not None
    assert preseed.main(["--check"]) == 0
    assert "12 of 12" in capsys.readouterr().out


def test_check_lists_missing_files_without_downloading(preseed, tmp_path, capsys):
    assert preseed.main(["--check", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "ne_10m_coastline.shp" in err
    assert list(tmp_path.iterdir()) == []  # nothing fetched, nothing created


def test_add_preseeds_more_layers(preseed, capsys):
    """admin-1 subdivisions beyond the 110m US states: --add names the 10m layer."""
    assert ("cultural", "admin_1_states_provinces_lakes", "110m") in set(
        preseed.needed_features(load_catalog().regions.values()))
    assert preseed.main(["--check", "--add", "cultural/admin_1_states_provinces_lakes/10m"]) == 1
    assert "ne_10m_admin_1_states_provinces_lakes.shp" in capsys.readouterr().err
    assert preseed.main(["--check", "--add", "admin_1/10m"]) == 2
