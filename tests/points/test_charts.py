"""Meteograms, sections, soundings and data files: panels, sizes, values against oracles."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framecast.points.extract import extract
from framecast.points.meteogram import PANELS, draw_meteogram
from framecast.points.output import read_csv, write_csv, write_json
from framecast.points.places import Place
from framecast.points.section import draw_section
from framecast.points.sounding import draw_sounding
from framecast.points.symbols import derived_weather_code, symbol_class
from tests.points import oracle

PLACES = [Place("Hamburg", 53.5507, 9.993, 8, "Europe/Berlin"),
          Place("Madrid", 40.4165, -3.7026, None, "Europe/Madrid"),
          Place("Tunis", 36.819, 10.1658, None, "Africa/Tunis"),
          Place("Athens", 37.9838, 23.7278, None, "Europe/Athens")]


def _png(data: bytes) -> Image.Image:
    img = Image.open(BytesIO(data))
    img.load()
    return img


def _not_blank(img: Image.Image, box) -> bool:
    crop = np.asarray(img.convert("RGB").crop(box), dtype=np.int16)
    colours = len(np.unique(crop.reshape(-1, 3), axis=0))
    return colours > 8 and crop.std() > 3.0


def _oracle_series(root: Path, pattern: str, short: str, steps, place, level=None):
    out = []
    for s in steps:
        (path,) = sorted(root.rglob(f"*_{s:03d}_{pattern}.grib2"))
        vals, lats, lons = oracle.read([path], short, s, level)
        out.append(vals[oracle.nearest(lats, lons, place.lat, place.lon)])
    return np.asarray(out)


@pytest.fixture(scope="module")
def series(points_icon_eu):
    return extract(points_icon_eu, PLACES)


def test_meteogram_has_six_non_blank_panels_and_annotates_extremes(series, points_icon_eu):
    res = draw_meteogram(series, 0)
    img = _png(res.png)
    assert img.size == (1000, 1250)
    assert list(res.panels) == list(PANELS) and len(PANELS) == 6
    assert all(v == "ok" for v in res.panels.values()), res.panels
    assert img.text["panels"].count("=ok") == 6
    for name, box in res.boxes.items():
        assert _not_blank(img, box), name
    t2m = _oracle_series(points_icon_eu, "T_2M", "2t", series.steps, PLACES[0]) - 273.15
    notes = dict(kv.split("=") for kv in img.text["annotations"].split(";"))
    assert float(notes["t2m_max"]) == pytest.approx(round(float(t2m.max()), 1), abs=0.051)
    assert float(notes["t2m_min"]) == pytest.approx(round(float(t2m.min()), 1), abs=0.051)
    msl = _oracle_series(points_icon_eu, "PMSL", "prmsl", series.steps, PLACES[0]) / 100
    assert float(notes["msl_min"]) == pytest.approx(float(msl.min()), abs=0.051)
    gust = _oracle_series(points_icon_eu, "VMAX_10M", "max_i10fg", series.steps, PLACES[0])
    assert float(notes["gust10_max_kmh"]) == pytest.approx(float(gust.max()) * 3.6, abs=0.51)


def test_section_shows_levels_1000_to_300(series):
    assert series.levels("t") == [1000, 925, 850, 700, 500, 300]  # the sample's levels
    res = draw_section(series, 1)
    img = _png(res.png)
    assert img.size == (1000, 600)
    assert res.panels == {"section": "ok"}
    assert _not_blank(img, res.boxes["section"])
    t = np.vstack([series.values[f"t{lev}"][:, 1] for lev in series.levels("t")]) - 273.15
    assert res.annotations["t_min_section"] == pytest.approx(float(t.min()), abs=0.051)


def test_sounding_cape_equals_metpy_for_the_same_profile(series, points_icon_eu):
    import metpy.calc as mpcalc
    from metpy.units import units

    levels = [1000, 925, 850, 700, 500, 300]
    best = None
    for i, place in enumerate(PLACES):
        for step in series.steps:
            t = np.array([_oracle_series(points_icon_eu, f"{lev}_T", "t", [step], place, lev)[0]
                          for lev in levels]) - 273.15
            rh = np.array([_oracle_series(points_icon_eu, f"{lev}_RELHUM", "r", [step], place,
                                          lev)[0] for lev in levels])
            if place.elevation is not None:
                continue  # ground-level filtering: compare full profiles only
            p = np.array(levels, float) * units.hPa
            tq = t * units.degC
            td = mpcalc.dewpoint_from_relative_humidity(tq, rh * units.percent)
            cape, cin = mpcalc.surface_based_cape_cin(p, tq, td)
            if best is None or cape.m > best[2]:
                best = (i, step, float(cape.m_as("J/kg")), float(cin.m_as("J/kg")))
        if best is not None and best[2] > 50:
            break
    i, step, cape, cin = best
    assert cape > 0, "the sample data should have some instability somewhere"
    res = draw_sounding(series, i, step)
    img = _png(res.png)
    assert img.size == (900, 900)
    assert res.panels == {"skewt": "ok", "hodograph": "ok"}
    assert res.annotations["cape"] == pytest.approx(cape, abs=0.051)
    assert res.annotations["cin"] == pytest.approx(cin, abs=0.051)
    assert f"cape={round(cape, 1)}" in img.text["annotations"]


def test_missing_variables_say_not_available(points_icon_eu_charts_only):
    few = extract(points_icon_eu_charts_only, PLACES[:1])
    res = draw_meteogram(few, 0)
    assert res.panels["temperature"] == "ok"  # dew point missing: the line is left out
    assert res.panels["clouds"].startswith("partly") and "not available" in res.panels["clouds"]
    assert res.panels["weather"] == "ok"  # derived from cloud and precipitation
    sec = draw_section(few, 0)  # only t850/t500, no humidity
    assert sec.panels["section"] == "partly: humidity not available"
    bare = extract(points_icon_eu_charts_only, PLACES[:1], names=["msl"])
    res = draw_meteogram(bare, 0)
    assert res.panels["pressure"] == "ok"
    for name in ("temperature", "precipitation", "wind", "clouds", "weather"):
        assert res.panels[name].startswith("not available"), name
    assert _png(res.png).size == (1000, 1250)
    assert draw_section(bare, 0).panels["section"].startswith("not available")
    snd = draw_sounding(bare, 0, 0)
    assert snd.panels["skewt"].startswith("not available")


def test_csv_and_json_columns_units_and_values(series, points_icon_eu, tmp_path):
    csv_path = write_csv(series, 0, tmp_path / "hamburg.csv")
    json_path = write_json(series, 0, tmp_path / "hamburg.json")
    cols = read_csv(csv_path)
    doc = json.loads(json_path.read_text())
    t2m = _oracle_series(points_icon_eu, "T_2M", "2t", series.steps, PLACES[0]) - 273.15
    assert [float(v) for v in cols["t2m"]] == pytest.approx(np.round(t2m, 2), abs=0.006)
    assert doc["data"]["t2m"] == [float(v) for v in cols["t2m"]]
    assert doc["units"]["t2m"] == "degC" and doc["units"]["msl"] == "hPa"
    assert doc["units"]["precip"] == "mm" and doc["units"]["r850"] == "%"
    assert cols["valid_time"][0] == "2026-11-23T00:00:00Z"
    tp = _oracle_series(points_icon_eu, "TOT_PREC", "tp", series.steps, PLACES[0])
    assert [float(v) for v in cols["precip_total"]] == pytest.approx(np.round(tp, 2), abs=0.006)
    per_step = np.diff(tp, prepend=0.0)
    assert doc["data"]["precip"] == pytest.approx(np.round(np.maximum(per_step, 0), 2),
                                                  abs=0.011)
    rain, snow = np.array(doc["data"]["rain"]), np.array(doc["data"]["snow"])
    assert rain + snow == pytest.approx(np.array(doc["data"]["precip"]), abs=0.011)
    assert doc["place"]["name"] == "Hamburg" and doc["grid_point"]["method"] == "nearest"


def test_json_uses_null_where_not_available(points_icon_eu_charts_only, tmp_path):
    few = extract(points_icon_eu_charts_only, PLACES[:1])
    doc = json.loads(write_json(few, 0, tmp_path / "x.json").read_text())
    assert doc["data"]["td2m"] == [None] * 3
    assert doc["weather_code"] == "derived"
    assert "" in read_csv(write_csv(few, 0, tmp_path / "x.csv"))["td2m"]


def test_weather_codes_and_symbol_classes():
    ww = derived_weather_code(np.array([5, 40, 70, 95, 95, 95, 95]),
                              np.array([10, 10, 10, 10, -2, 10, 10.0]),
                              np.array([0, 0, 0, 0, 0, 0, 2000.0]),
                              np.array([0, 0, 0, 0.5, 2.0, 5.0, 1.0]))
    assert ww.tolist() == [0, 1, 2, 61, 73, 65, 95]
    assert [symbol_class(c) for c in ww] == ["clear", "partly", "partly", "rain", "snow",
                                             "rain", "thunder"]
    assert symbol_class(45) == "fog" and symbol_class(81) == "showers"
    assert symbol_class(3) == "cloudy" and symbol_class(float("nan")) is None
