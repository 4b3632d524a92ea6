"""First-level subdivisions: US states keyed by ISO 3166-2 codes or by names animate
identically and correctly (checked at each state's cartopy-projected representative point,
read from Natural Earth admin-1 by cartopy); codes the map lacks are grouped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from framecast.choropleth.pipeline import run_animation
from framecast.choropleth.raster import make_layout
from framecast.choropleth.spec import spec_from_dict
from framecast.errors import SpecError

W, H = 800, 440
EXTENT = [-125.0, -66.0, 24.0, 50.0]
BREAKS = [20, 40, 60, 80]
N = 4


def _value(k: int, year: int) -> float:
    return float(((k * 13 + year) % 5) * 20 + 5)


@pytest.fixture(scope="module")
def states(oracles):
    recs = oracles.natural_earth_records("admin_1_states_provinces_lakes", "110m")
    return {r.attributes["iso_3166_2"]: (r.attributes["name"], r.geometry) for r in recs}


@pytest.fixture(scope="module")
def url(tmp_path_factory, states):
    path = tmp_path_factory.mktemp("admin1") / "states.sqlite"
    u = f"sqlite:///{path}"
    eng = create_engine(u)
    rows = []
    for k, (iso, (name, _)) in enumerate(sorted(states.items())):
        for year in range(2000, 2000 + N):
            rows.append({"iso": iso, "name": name, "d": f"{year}-06-30",
                         "v": _value(k, year)})
    for extra, name in (("US", "United States"), ("DE-BY", "Bavaria"), ("XX-ZZ", "Atlantis")):
        rows.append({"iso": extra, "name": name, "d": "2000-06-30", "v": 1.0})
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE st (iso TEXT, name TEXT, d DATE, v REAL)"))
        conn.execute(text("INSERT INTO st VALUES (:iso, :name, :d, :v)"), rows)
    eng.dispose()
    return u


def _spec(url, column, **src):
    return spec_from_dict({
        "name": f"states_{column}",
        "source": {"url": url, "table": "st", "code_column": column, "time_column": "d",
                   "metric": "v", **src},
        "interval": "year", "start": "2000-01-01", "end": f"{2000 + N - 1}-01-01",
        "geography": {"level": "admin1", "projection": "platecarree", "extent": EXTENT},
        "size": [W, H], "style": {"breaks": BREAKS, "cmap": "YlGn"},
        "render": {"crf": 12}}, "states.yaml")


@pytest.mark.slow
def test_states_by_iso_3166_2_and_by_name(url, states, tmp_path, oracles, decode):
    frames = {}
    for column, code_type in (("iso", "iso_3166_2"), ("name", "name")):
        summary = run_animation(_spec(url, column), tmp_path / column)
        assert summary["codes"]["code_type"] == code_type
        assert summary["codes"]["level"] == "admin1"
        frames[column] = decode(Path(summary["outputs"]["mp4"]), list(range(N)), W, H)
        groups = summary["source"]["unmatched"]
        if column == "iso":
            assert groups["aggregates"] == ["US"]
            assert list(groups["absent_at_scale"]) == ["DE-BY"]
            assert groups["unknown"] == ["XX-ZZ"]
        else:
            assert groups["aggregates"] == ["United States"]
            assert groups["unknown"] == ["Atlantis", "Bavaria"]
    for i in range(N):
        assert np.array_equal(frames["iso"][i], frames["name"][i]), i
    spec = _spec(url, "iso")
    pixels = oracles.representative_pixels(
        {iso: g for iso, (_, g) in states.items()}, W, H,
        make_layout(W, H, spec.style, projection="platecarree",
                    extent=tuple(EXTENT)).map_rect,
        projection="platecarree", extent=tuple(EXTENT))
    assert len(pixels) >= 35, sorted(pixels)
    order = sorted(states)
    for i in range(N):
        values = {iso: _value(k, 2000 + i) for k, iso in enumerate(order)}
        oracles.check_frame(frames["iso"][i], pixels, values, BREAKS, "YlGn", f"frame {i}")


def test_admin1_code_types(url):
    with pytest.raises(SpecError, match=r"'fips' is not one of \('detect', 'iso_3166_2', "
                                        r"'name'\) \(geography.level admin1\)"):
        _spec(url, "iso", code_type="fips")
