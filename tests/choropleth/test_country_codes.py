"""Country codes in any system give the same animation: the same table keyed by ISO alpha-3,
alpha-2, FIPS 10-4 (GM = Germany, where ISO GM is the Gambia), ISO numeric and names as
statistics offices spell them ("Korea, Rep.", "Côte d'Ivoire", "Congo, Dem. Rep."). The
system is detected; the decoded frames must be identical and show each country's class
colour at its cartopy-projected representative point. A table whose two-letter codes fit
ISO and FIPS with different meanings is refused with examples.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framecast.choropleth.pipeline import run_animation
from framecast.choropleth.raster import make_layout
from framecast.choropleth.spec import spec_from_dict
from framecast.errors import DataError, SpecError

W, H = 800, 440
N = 10  # frames: 1960..1969
SYSTEMS = ("iso_a3", "iso_a2", "fips", "iso_numeric", "name")


def _spec(url, table, realdata, **src):
    breaks, cmap = realdata.METRICS["life"]
    d = {"name": "life", "source": {"url": url, "table": table, "time_column": "t",
                                    "metric": "life", "aggregate": "mean", **src},
         "interval": "year", "start": "1960-01-01", "end": f"{1960 + N - 1}-01-01",
         "size": [W, H], "style": {"breaks": breaks, "cmap": cmap}}
    return spec_from_dict(d, "life.yaml")


@pytest.fixture(scope="module")
def db(tmp_path_factory, realdata):
    path = tmp_path_factory.mktemp("codes") / "codes.sqlite"
    url = f"sqlite:///{path}"
    for system in SYSTEMS:
        realdata.load(url, f"life_{system}", "epoch_s", system)
    return url


@pytest.mark.slow
def test_every_code_system_gives_identical_correct_frames(db, tmp_path, realdata, oracles,
                                                          decode):
    frames = {}
    for system in SYSTEMS:
        summary = run_animation(_spec(db, f"life_{system}", realdata), tmp_path / system)
        assert summary["codes"]["code_type"] == system
        assert summary["codes"]["detected"] is True
        assert summary["source"]["unknown_codes"] == {}, system
        assert len(summary["codes"]["mapping"]) == len(realdata.ROWS)
        frames[system] = decode(Path(summary["outputs"]["mp4"]), list(range(N)), W, H)
        if system == "fips":
            m = summary["codes"]["mapping"]
            assert m["GM"].startswith("DEU") and m["SZ"].startswith("CHE")
            assert m["AS"].startswith("AUS") and m["IV"].startswith("CIV")
    for system in SYSTEMS[1:]:
        for i in range(N):
            assert np.array_equal(frames[system][i], frames["iso_a3"][i]), (system, i)
    breaks, cmap = realdata.METRICS["life"]
    style = _spec(db, "life_iso_a3", realdata).style
    pixels = oracles.representative_pixels(
        realdata.country_geoms(oracles.natural_earth_records()), W, H,
        make_layout(W, H, style).map_rect)
    assert len(pixels) >= 35
    for i in (0, 4, 9):
        oracles.check_frame(frames["fips"][i], pixels, realdata.frame_values("life", i),
                            breaks, cmap, f"frame {i}")


def test_ambiguous_two_letter_codes_are_refused(tmp_path, realdata):
    """Only the FIPS codes that are also ISO codes of other countries: no way to tell."""
    url = f"sqlite:///{tmp_path / 'amb.sqlite'}"
    (tmp_path / "amb.sqlite").touch()
    realdata.load(url, "amb", "date", "fips")
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    clash = ("GM", "AS", "SZ", "CH", "CI", "NI")  # all valid in both systems
    with eng.begin() as conn:
        conn.execute(text(f"DELETE FROM amb WHERE code NOT IN {clash!r}"))
    eng.dispose()
    with pytest.raises(DataError) as ei:
        run_animation(_spec(url, "amb", realdata), tmp_path / "out")
    msg = str(ei.value)
    assert "ambiguous" in msg and "set source.code_type to iso_a2 or fips" in msg
    assert "GM (ISO: Gambia, FIPS: Germany)" in msg and "life.yaml" in msg
    assert not list((tmp_path / "out").rglob("*.mp4"))
    # Saying which system it is makes it work (and paints Germany, not the Gambia).
    summary = run_animation(_spec(url, "amb", realdata, code_type="fips"), tmp_path / "ok")
    assert summary["codes"]["mapping"]["GM"].startswith("DEU")
    assert summary["codes"]["detected"] is False


def test_unmatched_codes_in_three_groups(tmp_path, realdata):
    url = f"sqlite:///{tmp_path / 'wb.sqlite'}"
    (tmp_path / "wb.sqlite").touch()
    extra = ("WLD", "EUU", "OED", "HIC", "SGP", "HKG", "MLT", "BHR", "ZZZ")
    realdata.load(url, "wb", "epoch_ms", "iso_a3", extra_codes=extra)
    summary = run_animation(_spec(url, "wb", realdata), tmp_path / "out")
    groups = summary["source"]["unmatched"]
    assert groups["aggregates"] == ["EUU", "HIC", "OED", "WLD"]
    assert sorted(groups["absent_at_scale"]) == ["BHR", "HKG", "MLT", "SGP"]
    assert all("the 50m map has it" in v for v in groups["absent_at_scale"].values())
    assert groups["unknown"] == ["ZZZ"]
    warnings = "\n".join(summary["source"]["warnings"])
    assert "4 aggregate code(s)" in warnings and "geography.scale: 50m" in warnings
    assert "1 unknown code(s)" in warnings and "'ZZZ'" in warnings
    saved = (tmp_path / "out" / "life.summary.json").read_text()
    assert '"absent_at_scale"' in saved and '"aggregates"' in saved
    # Names: aggregates spelled out are aggregates too.
    realdata.load(url, "wbn", "date", "name", extra_codes=("World", "High income", "Narnia"))
    s2 = run_animation(_spec(url, "wbn", realdata), tmp_path / "out2")
    assert s2["codes"]["code_type"] == "name"
    assert s2["source"]["unmatched"]["aggregates"] == ["High income", "World"]
    assert s2["source"]["unmatched"]["unknown"] == ["Narnia"]


def test_unknown_code_type_is_a_spec_error(realdata):
    with pytest.raises(SpecError, match=r"source.code_type: 'iso3' is not one of \('detect', "
                                        r"'iso_a2', 'iso_a3', 'iso_numeric', 'fips', 'name'\)"):
        _spec("sqlite:///x", "t", realdata, code_type="iso3")
