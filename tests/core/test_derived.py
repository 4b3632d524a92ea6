"""Derived quantities equal MetPy's on known inputs, read through the dataset layer.

Inputs are written as DWD open-data files (ICON-EU grid) with ecCodes; the expected values
are MetPy's ``calc`` applied by the test to the same decoded inputs, or closed-form values
for windows over steps (precipitation, new snow, Tmax) and the precipitation type.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import metpy.calc as mpcalc
import numpy as np
import pytest
from metpy.units import units

from framecast.dataset import RunDataset
from framecast.errors import DataError
from framecast.sampledata.encode import GribIdentity, encode
from framecast.sampledata.grids import ICON_EU_GRID

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
G = 9.80665
LAT2, LON2 = np.meshgrid(ICON_EU_GRID.lats, ICON_EU_GRID.lons, indexing="ij")
PREFIX = "icon-eu_europe_regular-lat-lon"


def _put(root: Path, suffix: str, ident: GribIdentity, values: np.ndarray, step: int,
         level: int | None = None, start: int = 0) -> None:
    stamp = f"{RUN:%Y%m%d%H}"
    name = (f"{PREFIX}_single-level_{stamp}_{step:03d}_{suffix}.grib2" if level is None else
            f"{PREFIX}_pressure-level_{stamp}_{step:03d}_{level}_{suffix}.grib2")
    path = root / suffix.lower() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode("icon-eu", ident, values, RUN, step, start_step=start,
                            decimal_scale=3 if ident.stat == "accum" else None, bits=24))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("derived")
    wave = np.sin(np.radians(LON2) * 4) * np.cos(np.radians(LAT2) * 3)
    for step in (0, 3, 6):
        _put(root, "T_2M", GribIdentity(0, 0, 0, 103, 2), 283.0 + 8 * wave, step)
        _put(root, "TD_2M", GribIdentity(0, 0, 6, 103, 2), 278.0 + 5 * wave, step)
        _put(root, "RELHUM_2M", GribIdentity(0, 1, 1, 103, 2), 60.0 + 30 * wave, step)
        _put(root, "U_10M", GribIdentity(0, 2, 2, 103, 10), 8.0 * np.sin(np.radians(LAT2) * 9),
             step)
        _put(root, "V_10M", GribIdentity(0, 2, 3, 103, 10), 6.0 * np.cos(np.radians(LON2) * 7),
             step)
        for lev, t0 in ((850, 275.0), (500, 252.0)):
            _put(root, "T", GribIdentity(0, 0, 0, 100, lev), t0 + 6 * wave, step, lev)
            _put(root, "RELHUM", GribIdentity(0, 1, 1, 100, lev), 55.0 + 40 * wave, step, lev)
            _put(root, "U", GribIdentity(0, 2, 2, 100, lev), 20 * np.cos(np.radians(LAT2) * 5),
                 step, lev)
            _put(root, "V", GribIdentity(0, 2, 3, 100, lev), 15 * np.sin(np.radians(LON2) * 6),
                 step, lev)
        _put(root, "FI", GribIdentity(0, 3, 4, 100, 500), (5600.0 + 50 * wave) * G, step, 500)
        _put(root, "FI", GribIdentity(0, 3, 4, 100, 1000), (110.0 + 20 * wave) * G, step, 1000)
        # accumulations since the start: rain 1 mm/h grid-scale + 0.5 convective where wave>0,
        # snow 2 mm/h where lat > 60; snow depth grows 1 cm/h there
        snowy = (LAT2 > 60).astype(float)
        _put(root, "RAIN_GSP", GribIdentity(0, 1, 77, 1, stat="accum"), 1.0 * step * (1 - snowy),
             step)
        _put(root, "RAIN_CON", GribIdentity(0, 1, 76, 1, stat="accum"),
             0.5 * step * (wave > 0) * (1 - snowy), step)
        _put(root, "SNOW_GSP", GribIdentity(0, 1, 56, 1, stat="accum"), 2.0 * step * snowy, step)
        _put(root, "SNOW_CON", GribIdentity(0, 1, 55, 1, stat="accum"), 0.0 * LAT2, step)
        _put(root, "TOT_PREC", GribIdentity(0, 1, 52, 1, stat="accum"), 1.5 * step + 0 * LAT2,
             step)
        _put(root, "H_SNOW", GribIdentity(0, 1, 11, 1), 0.10 + 0.01 * step * snowy, step)
        if step:
            # per-interval maxima: 290 K in the 0-3 h interval, 295 K in 3-6 h
            _put(root, "TMAX_2M", GribIdentity(0, 0, 0, 103, 2, stat="max"),
                 (285.0 + 5 * step / 3) + 0 * LAT2, step, start=step - 3)
    return root


@pytest.fixture(scope="module")
def ds(run_dir):
    with RunDataset.open(run_dir) as d:
        yield d


def _q(f):
    return units.Quantity(np.asarray(f.values, np.float64), {"%": "percent"}.get(f.units, f.units))


def test_humidity_conversions_match_metpy(ds):
    t, td, rh = ds.field("t2m", 3), ds.field("td2m", 3), ds.field("rh2m", 3)
    want = mpcalc.relative_humidity_from_dewpoint(_q(t), _q(td)).to("percent").m
    np.testing.assert_allclose(ds.field("rh2m_from_td", 3).values, want, rtol=1e-5, atol=1e-4)
    want = mpcalc.dewpoint_from_relative_humidity(_q(t), _q(rh)).to("K").m
    np.testing.assert_allclose(ds.field("td2m_from_rh", 3).values, want, rtol=1e-6, atol=1e-3)
    t850, r850 = ds.field("t850", 3), ds.field("r850", 3)
    td850 = mpcalc.dewpoint_from_relative_humidity(_q(t850), _q(r850))
    np.testing.assert_allclose(ds.field("td850", 3).values, td850.to("K").m, atol=1e-3)


def test_theta_e_matches_metpy(ds):
    t, r = ds.field("t850", 6), ds.field("r850", 6)
    td = mpcalc.dewpoint_from_relative_humidity(_q(t), _q(r))
    want = mpcalc.equivalent_potential_temperature(850 * units.hPa, _q(t), td).to("K").m
    got = ds.field("theta_e850", 6)
    assert got.units == "K"
    np.testing.assert_allclose(got.values, want, rtol=1e-6, atol=1e-3)
    # known value (the MetPy docs' example): 850 hPa, 10 degC, dewpoint 5 degC -> 315.7 K
    assert float(mpcalc.equivalent_potential_temperature(
        850 * units.hPa, 10 * units.degC, 5 * units.degC).m) == pytest.approx(315.7, abs=0.1)


def test_vorticity_divergence_and_wind_speed_match_metpy(ds):
    u, v = ds.field("u500", 0), ds.field("v500", 0)
    dx, dy = mpcalc.lat_lon_grid_deltas(ICON_EU_GRID.lons, ICON_EU_GRID.lats)
    want = mpcalc.vorticity(_q(u), _q(v), dx=dx, dy=dy).to("1/s").m
    np.testing.assert_allclose(ds.field("vort500", 0).values, want, rtol=1e-4, atol=1e-9)
    u10, v10 = ds.field("u10", 0), ds.field("v10", 0)
    div = mpcalc.divergence(_q(u10), _q(v10), dx=dx, dy=dy).to("1/s").m
    np.testing.assert_allclose(ds.field("div10", 0).values, div, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(ds.field("conv10", 0).values, -div, rtol=1e-4, atol=1e-9)
    want = mpcalc.wind_speed(_q(u), _q(v)).m
    np.testing.assert_allclose(ds.field("wind500", 0).values, want, rtol=1e-6)
    assert ds.field("wind850", 0).units == "m s**-1"


def test_thickness_from_geopotential(ds):
    got = ds.field("thick_500_1000", 3).values
    want = ds.field("gh500", 3).values - ds.field("gh1000", 3).values
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert 5400 < float(np.mean(got)) < 5600


def test_precipitation_windows_rain_snow_and_type(ds):
    np.testing.assert_allclose(ds.field("tp_3h", 6).values, 4.5, atol=2e-3)
    np.testing.assert_allclose(ds.field("tp_run", 6).values, 9.0, atol=2e-3)
    np.testing.assert_allclose(ds.field("tp_24h", 6).values, 9.0, atol=2e-3)  # from the start
    snowy = LAT2 > 60
    wet = ~snowy & (np.sin(np.radians(LON2) * 4) * np.cos(np.radians(LAT2) * 3) > 0)
    rain3 = ds.field("rain_3h", 6).values
    np.testing.assert_allclose(rain3[~snowy & ~wet], 3.0, atol=2e-3)
    np.testing.assert_allclose(rain3[wet], 4.5, atol=2e-3)
    np.testing.assert_allclose(ds.field("snow_3h", 6).values[snowy], 6.0, atol=2e-3)
    ptype = ds.field("ptype_3h", 6).values
    assert set(np.unique(ptype[snowy])) == {3.0} and set(np.unique(ptype[~snowy])) == {1.0}
    np.testing.assert_allclose(ds.field("new_snow_3h", 6).values[snowy], 0.03, atol=1e-4)
    np.testing.assert_allclose(ds.field("new_snow_3h", 6).values[~snowy], 0.0, atol=1e-4)


def test_tmax_over_a_window_of_interval_maxima(ds):
    np.testing.assert_allclose(ds.field("tmax_6h", 6).values, 295.0, atol=1e-3)
    np.testing.assert_allclose(ds.field("tmax_3h", 3).values, 290.0, atol=1e-3)
    assert "tmax_6h" in ds.variables() and "vort500" in ds.variables()


def test_derived_names_explain_what_is_missing(ds):
    with pytest.raises(DataError, match=r"variable 't700' \(step 0\) not found"):
        ds.field("theta_e700", 0)
    with pytest.raises(DataError, match=r"tp_2h at step 6 needs tp at step 4, which is not in "
                                        r"the data \(tp steps: 0-6/3\)"):
        ds.field("tp_2h", 6)


def test_units_convert_through_pint(ds):
    f = ds.field("vort500", 0).to("1e-5 s**-1")
    np.testing.assert_allclose(f.values, ds.field("vort500", 0).values * 1e5, rtol=1e-5)
