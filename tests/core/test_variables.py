"""The variable catalogue: names, publisher identities, GRIB names and close-match errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framecast.commands.variables import markdown_table
from framecast.errors import SpecError
from framecast.variables import (
    Catalogue,
    Derived,
    GribName,
    UnknownVariableError,
    Variable,
    load_catalogue,
)
from framecast.variables.catalogue import DEFAULT_VARIABLES_FILE

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = ["t2m", "msl", "tp", "gust10", "tcc", "u10", "v10", "cape", "u850", "v850", "t850",
            "gh850", "t500", "gh500", "gh1000"]
#: Names the chart library builds on (2 m dewpoint, humidity, levels, clouds, snow, ...).
CHART_LIBRARY = ["td2m", "rh2m", "r700", "r850", "lcc", "mcc", "hcc", "sd", "rain_gsp",
                 "rain_con", "snow_gsp", "snow_con", "hzerocl", "tmax2m", "tmin2m",
                 "soil_moisture", "cin", "ir_bt", "ww", "wind300", "theta_e850", "vort500",
                 "conv10", "tp_24h", "tp_run", "rain_3h", "snow_3h", "ptype_3h",
                 "new_snow_24h", "tmax_24h", "tmin_24h", "thick_500_1000", "td850"]


def test_existing_names_keep_their_meaning():
    cat = load_catalogue()
    for name in ORIGINAL:
        assert isinstance(cat.resolve(name), Variable), name
    assert cat.units_of("gh500") == "gpm" and cat.units_of("msl") == "Pa"
    for name in ("wind10", "wind850", "thick_500_1000", "tp_6h", "tp_48h"):
        assert isinstance(cat.resolve(name), Derived), name
    assert cat.base_inputs("wind850") == {"u850", "v850"}
    assert cat.base_inputs("tp_17h") == {"tp"}
    assert cat.long_name_of("t700") == "700 hPa temperature"


@pytest.mark.parametrize("levels", [(1000, 925, 850, 700, 500, 300)])
def test_chart_library_names_resolve_with_publisher_identities(levels):
    cat = load_catalogue()
    for name in CHART_LIBRARY:
        assert cat.is_known(name), name
    for fam in ("t", "u", "v", "gh", "r"):
        for lv in levels:
            v = cat.base(f"{fam}{lv}")
            assert v.dwd_suffix and v.idx == f"{ {'t': 'TMP', 'u': 'UGRD', 'v': 'VGRD', 'gh': 'HGT', 'r': 'RH'}[fam]}:{lv} mb"
    assert cat.from_dwd("SYNMSG_BT_CL_IR10.8", None) == ("ir_bt", 1.0)
    assert cat.from_dwd("RAIN_GSP", None) == ("rain_gsp", 1.0)
    assert cat.from_dwd("HZEROCL", None) == ("hzerocl", 1.0)
    assert cat.from_idx("TMAX", "2 m above ground") == "tmax2m"
    assert cat.from_grib("2d", "heightAboveGround", 2) == ("td2m", 1.0)
    name, scale = cat.from_grib("z", "isobaricInhPa", 500)
    assert name == "gh500" and scale == pytest.approx(1 / 9.80665)
    assert cat.base_inputs("ptype_3h") == {"rain_gsp", "rain_con", "snow_gsp", "snow_con"}


def test_grib_names_resolve_to_the_catalogue_or_stay_grib_names():
    cat = load_catalogue()
    assert cat.resolve("2d").name == "td2m"
    assert cat.resolve("r@isobaricInhPa:700").name == "r700"
    skt = cat.resolve("skt")
    assert isinstance(skt, GribName) and skt.short_name == "skt"
    q = cat.resolve("cape@pressureFromGroundLayer:18000")
    assert isinstance(q, GribName) and q.level == 18000
    t = cat.resolve("t")  # on every level: not one variable
    assert isinstance(t, GribName)


def test_unknown_names_list_close_matches():
    cat = load_catalogue()
    with pytest.raises(UnknownVariableError, match=r"unknown variable 'tmep'; did you mean"):
        cat.resolve("tmep")
    with pytest.raises(UnknownVariableError, match=r"'thetae850'.*theta_e850"):
        cat.resolve("thetae850")
    with pytest.raises(UnknownVariableError, match=r"'wind_10'.*wind10"):
        cat.resolve("wind_10")


def test_a_variable_added_by_yaml_only(tmp_path, monkeypatch):
    doc = yaml.safe_load(DEFAULT_VARIABLES_FILE.read_text())
    doc["variables"]["alb"] = {"long_name": "surface albedo", "units": "%", "kind": "other",
                               "dwd": {"var": "alb_rad"}, "idx": "ALBDO:surface",
                               "grib": [{"shortName": "al"}]}
    doc["derived"]["wind{level}_kmh"] = {"function": "wind_speed",
                                        "inputs": ["u{level}", "v{level}"], "units": "km/h"}
    path = tmp_path / "variables.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("FRAMECAST_VARIABLES_FILE", str(path))
    cat = load_catalogue()
    assert cat.from_dwd("ALB_RAD", None) == ("alb", 1.0)
    assert cat.from_idx("ALBDO", "surface") == "alb"
    assert cat.from_grib("al", "surface", 0) == ("alb", 1.0)
    assert cat.resolve("wind700_kmh").inputs == ("u700", "v700")


@pytest.mark.parametrize("edit, match", [
    (lambda d: d["variables"]["t2m"].update(kind="warm"), r"variables\.t2m\.kind: unknown kind"),
    (lambda d: d["variables"]["t2m"].update(colour="red"), r"variables\.t2m: unknown field"),
    (lambda d: d["variables"]["t2m"].update(idx="TMP"), r"variables\.t2m\.idx: expected 'VAR:LEVEL'"),
    (lambda d: d["derived"]["wind10"].update(function="speed"), r"derived\.wind10\.function: "
                                                                r"unknown function 'speed'"),
    (lambda d: d["derived"]["wind10"].update(inputs=["u10", "vv10"]),
     r"derived\.wind10\.inputs: unknown input 'vv10'; did you mean v10"),
    (lambda d: d["variables"]["t2m"]["grib"][0].update(level="two"),
     r"variables\.t2m\.grib\[0\]\.level: expected an integer"),
])
def test_catalogue_errors_name_file_and_field(tmp_path, edit, match):
    doc = yaml.safe_load(DEFAULT_VARIABLES_FILE.read_text())
    edit(doc)
    with pytest.raises(SpecError, match=match):
        Catalogue(doc, str(tmp_path / "v.yaml"))


def test_docs_table_is_the_catalogue():
    """docs/variables.md holds the one table of names: regenerate it with
    ``framecast variables --markdown`` when variables.yaml changes."""
    text = (ROOT / "docs" / "variables.md").read_text()
    assert markdown_table(load_catalogue(DEFAULT_VARIABLES_FILE).table()) in text
