"""Point series equal ecCodes' own read of the nearest grid point (ICON-EU, ICON, GFS)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from framecast.points.extract import extract, wanted_variables
from framecast.points.index import point_index
from framecast.points.places import Place, PlaceError, load_points_config, lookup
from tests.points import oracle

PLACES = [Place("Hamburg", 53.5507, 9.993), Place("Madrid", 40.4165, -3.7026),
          Place("Reykjavik", 64.1355, -21.8954), Place("Edge", 29.52, 62.49)]
WORLD = [Place("Hamburg", 53.5507, 9.993), Place("Sydney", -33.8679, 151.2073),
         Place("Denver", 39.7392, -104.9847), Place("Dateline", -10.0, 179.97),
         Place("Pole", 89.9, 0.0)]

# canonical name -> (ecCodes shortName, typeOfLevel, level, DWD file pattern)
CHECKS = {
    "t2m": ("2t", None, None, "T_2M"), "td2m": ("2d", None, None, "TD_2M"),
    "msl": ("prmsl", None, None, "PMSL"), "tp": ("tp", None, None, "TOT_PREC"),
    "u10": ("10u", None, None, "U_10M"), "lcc": ("lcc", None, None, "CLCL"),
    "t850": ("t", "isobaricInhPa", 850, "850_T"), "r700": ("r", "isobaricInhPa", 700, "700_RELHUM"),
    "v300": ("v", "isobaricInhPa", 300, "300_V"),
}


def _dwd_files(root: Path, step: int, pattern: str) -> list[Path]:
    files = sorted(root.rglob(f"*_{step:03d}_{pattern}.grib2"))
    assert files, f"no file for {pattern} step {step}"
    return files


def _check_against_ecCodes(series, root: Path, places, steps, files_for, coords=None):
    checked = 0
    for name, (short, tol, level, pattern) in CHECKS.items():
        if name not in series.values:
            continue
        for step in steps:
            files = files_for(step, pattern)
            try:
                vals, lats, lons = oracle.read(files, short, step, level, tol)
            except LookupError:
                if name == "tp" and step == 0:
                    continue  # GFS f000 has no accumulation
                raise
            if lats is None:
                lats, lons = coords
            for i, p in enumerate(places):
                expect = vals[oracle.nearest(lats, lons, p.lat, p.lon)]
                got = series.values[name][series.steps.index(step), i]
                assert got == pytest.approx(expect, rel=1e-6, abs=1e-4), (name, step, p.name)
                checked += 1
    return checked


def test_icon_eu_series_equal_ecCodes_nearest_point(points_icon_eu):
    series = extract(points_icon_eu, PLACES)
    assert series.model == "icon-eu" and series.steps == [0, 3, 6, 9, 12]
    n = _check_against_ecCodes(series, points_icon_eu, PLACES, [0, 6, 12],
                               lambda s, pat: _dwd_files(points_icon_eu, s, pat))
    assert n == len(CHECKS) * 3 * len(PLACES)


def test_icon_icosahedral_series_equal_ecCodes_nearest_cell(points_icon):
    series = extract(points_icon, WORLD)
    coords = oracle.icon_coordinates(points_icon)
    n = _check_against_ecCodes(series, points_icon, WORLD, [0, 6],
                               lambda s, pat: _dwd_files(points_icon, s, pat), coords)
    assert n == len(CHECKS) * 2 * len(WORLD)
    assert series.method == "nearest"


def test_gfs_series_equal_ecCodes_nearest_point(points_gfs):
    from framecast.sampledata import gfs_path
    from tests.points.conftest import RUN

    series = extract(points_gfs, WORLD)
    checks = {k: v for k, v in CHECKS.items() if k != "td2m"}
    n = 0
    # NCEP codes cloud layers as total cloud cover on a cloud-layer level
    checks["lcc"] = ("tcc", "lowCloudLayer", None, "")
    for name, (short, tol, level, _) in checks.items():
        for step in (0, 3, 6):
            if name in ("tp", "lcc") and step == 0:
                continue  # like NCEP's f000: no accumulation or cloud-layer averages yet
            vals, lats, lons = oracle.read([points_gfs / gfs_path(RUN, step)], short, step,
                                           level, tol)
            for i, p in enumerate(WORLD):
                expect = vals[oracle.nearest(lats, lons, p.lat, p.lon)]
                got = series.values[name][series.steps.index(step), i]
                assert got == pytest.approx(expect, rel=1e-6, abs=1e-4), (name, step, p.name)
                n += 1
    assert n == (len(checks) * 3 - 2) * len(WORLD)
    # GFS has no tp at f000: nothing has accumulated at the run start
    assert (series.values["tp"][0] == 0).all()


def test_every_message_is_read_once_for_all_places(points_icon_eu):
    from framecast.dataset import RunDataset

    with RunDataset.open(points_icon_eu) as ds:
        names = wanted_variables(ds.variables())
        present = sum(ds.has(n, s) for n in names for s in ds.steps)
    few = extract(points_icon_eu, PLACES[:1])
    many = extract(points_icon_eu, PLACES)
    assert few.messages == many.messages == present
    two = extract(points_icon_eu, PLACES, workers=2)
    assert two.messages == present
    for name in many.values:
        np.testing.assert_array_equal(two.values[name], many.values[name])


def test_bilinear_matches_an_independent_interpolation(points_icon_eu):
    from scipy.interpolate import RegularGridInterpolator

    series = extract(points_icon_eu, PLACES[:3], method="bilinear", names=["t2m"])
    (path,) = _dwd_files(points_icon_eu, 6, "T_2M")
    vals, lats, lons = oracle.read([path], "2t", 6)
    ulat, ulon = np.unique(lats), np.unique(np.where(lons > 180, lons - 360, lons))
    grid = vals.reshape(ulat.size, ulon.size)
    interp = RegularGridInterpolator((ulat, ulon), grid)
    for i, p in enumerate(PLACES[:3]):
        assert series.values["t2m"][2, i] == pytest.approx(interp([p.lat, p.lon])[0], abs=1e-3)


def test_place_outside_the_domain_names_place_and_domain(points_icon_eu):
    with pytest.raises(PlaceError, match=r"'New York City'.*outside the icon-eu domain.*29\.50"):
        extract(points_icon_eu, [PLACES[0], lookup("New York")])


def test_gazetteer_ranks_by_population_and_suggests_close_matches():
    assert lookup("Hamburg").country == "DE"
    assert lookup("hamburg").tz == "Europe/Berlin"
    assert lookup("München").name == "Munich"
    assert lookup("Paris, US").country == "US"
    with pytest.raises(PlaceError, match="close matches: .*Hamburg"):
        lookup("Hamburgg")
    with pytest.raises(PlaceError, match="unknown place 'Xqzzyv'"):
        lookup("Xqzzyv")


@pytest.mark.parametrize("model", ["icon-eu", "icon", "gfs"])
def test_shipped_places_lie_inside_each_model_grid(model):
    from framecast.field import Grid
    from framecast.icongrid import icosahedral_grid
    from framecast.sampledata.grids import GFS_GRID, ICON_EU_GRID

    cfg = load_points_config(model)
    assert cfg is not None and len(cfg.places) >= 10
    if model == "icon":
        g = icosahedral_grid(24)
        grid = Grid("unstructured", g.clat, g.clon)
    else:
        spec = ICON_EU_GRID if model == "icon-eu" else GFS_GRID
        grid = Grid("regular", spec.lats, spec.lons)
    idx = point_index(grid, cfg.places, cfg.method, model)
    assert len(idx.unique) == len(cfg.places)


def test_bad_places_file_names_the_fault(tmp_path):
    bad = tmp_path / "places.yaml"
    bad.write_text("lists: {a: [{name: X, lat: 95, lon: 0}]}\nmodels: {icon-eu: {places: a}}\n")
    with pytest.raises(PlaceError, match=r"places.yaml: lists.a\[0\]: latitude 95"):
        load_points_config("icon-eu", bad)
    bad.write_text("models: {icon-eu: {places: nolist}}\n")
    with pytest.raises(PlaceError, match="no list 'nolist'"):
        load_points_config("icon-eu", bad)
