"""Sample GRIB2 runs: real grids, publishers' layouts, correct GRIB keys, plausible weather."""

from __future__ import annotations

import bz2
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from framecast.errors import SpecError
from framecast.geo import ensure_cartopy

ensure_cartopy()
import eccodes  # noqa: E402

from framecast.icongrid import division_for_cells, icosahedral_grid  # noqa: E402
from framecast.sampledata import (  # noqa: E402
    VARIABLES,
    dwd_path,
    generate_run,
    gfs_path,
    model_steps,
    parse_steps,
)

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
IEU = "icon-eu_europe_regular-lat-lon"


def _keys(path: Path, *names: str, offset: int = 0, length: int | None = None) -> dict:
    data = path.read_bytes()
    data = bz2.decompress(data) if path.name.endswith(".bz2") else data
    msg = data[offset:offset + length] if length else data[offset:]
    h = eccodes.codes_new_from_message(msg)
    try:
        out = {n: eccodes.codes_get(h, n) for n in names if n != "values"}
        if "values" in names:
            out["values"] = eccodes.codes_get_values(h)
        return out
    finally:
        eccodes.codes_release(h)


def _cfgrib(path: Path, **filter_by_keys) -> xr.Dataset:
    kw = {"indexpath": ""}
    if filter_by_keys:
        kw["filter_by_keys"] = filter_by_keys
    return xr.open_dataset(path, engine="cfgrib", backend_kwargs=kw)


# --------------------------------------------------------------------------- step lists


def test_model_step_lists_are_the_real_ones():
    ieu, icon, gfs = model_steps("icon-eu"), model_steps("icon"), model_steps("gfs")
    assert ieu[:79] == list(range(79)) and ieu[79:] == list(range(81, 121, 3))
    assert len(ieu) == 93 and ieu[-1] == 120
    assert icon[:79] == list(range(79)) and icon[79:] == list(range(81, 181, 3))
    assert gfs[:121] == list(range(121)) and gfs[121:] == list(range(123, 385, 3))
    assert len(gfs) == 209
    with pytest.raises(SpecError, match="unknown model 'ecmwf'"):
        model_steps("ecmwf")


@pytest.mark.parametrize("text, expect", [
    ("0-12", list(range(13))), ("0-12/3", [0, 3, 6, 9, 12]), ("0,3,6", [0, 3, 6]),
    ("6", [6]), ("0-6,9-24/3", [0, 1, 2, 3, 4, 5, 6, 9, 12, 15, 18, 21, 24]),
    (" 3 , 1 ", [1, 3]),
])
def test_parse_steps(text, expect):
    assert parse_steps(text) == expect


@pytest.mark.parametrize("text, match", [
    ("0-x", "cannot parse '0-x'"), ("12-6", "bad range '12-6'"), ("0-6/0", "bad range"),
    ("", "no steps"), ("-3", "cannot parse|bad range"),
])
def test_parse_steps_errors(text, match):
    with pytest.raises(SpecError, match=match):
        parse_steps(text)


# --------------------------------------------------------------------------- ICON-EU


def test_icon_eu_files_use_dwd_exact_layout(icon_eu_run):
    files = {str(p.relative_to(icon_eu_run)) for p in icon_eu_run.rglob("*") if p.is_file()}
    assert len(files) == 15 * 7
    for want in (
        f"00/t_2m/{IEU}_single-level_2026112300_003_T_2M.grib2",
        f"00/pmsl/{IEU}_single-level_2026112300_000_PMSL.grib2",
        f"00/tot_prec/{IEU}_single-level_2026112300_006_TOT_PREC.grib2",
        f"00/vmax_10m/{IEU}_single-level_2026112300_001_VMAX_10M.grib2",
        f"00/clct/{IEU}_single-level_2026112300_002_CLCT.grib2",
        f"00/cape_ml/{IEU}_single-level_2026112300_004_CAPE_ML.grib2",
        f"00/u_10m/{IEU}_single-level_2026112300_005_U_10M.grib2",
        f"00/v_10m/{IEU}_single-level_2026112300_005_V_10M.grib2",
        f"00/fi/{IEU}_pressure-level_2026112300_003_500_FI.grib2",
        f"00/fi/{IEU}_pressure-level_2026112300_003_1000_FI.grib2",
        f"00/t/{IEU}_pressure-level_2026112300_003_850_T.grib2",
        f"00/u/{IEU}_pressure-level_2026112300_003_850_U.grib2",
        f"00/v/{IEU}_pressure-level_2026112300_003_850_V.grib2",
    ):
        assert want in files
    assert str(dwd_path("icon-eu", VARIABLES["t500"], RUN, 7, bz2_suffix=True)) == (
        f"00/t/{IEU}_pressure-level_2026112300_007_500_T.grib2.bz2")
    assert str(dwd_path("icon", VARIABLES["msl"], datetime(2026, 11, 23, 12), 120)) == (
        "12/pmsl/icon_global_icosahedral_single-level_2026112312_120_PMSL.grib2")


def test_icon_eu_decodes_with_cfgrib_on_dwd_grid(icon_eu_run):
    path = icon_eu_run / f"00/t_2m/{IEU}_single-level_2026112300_003_T_2M.grib2"
    ds = _cfgrib(path)
    t2m = ds["t2m"]
    assert t2m.shape == (657, 1377)
    assert t2m.attrs["units"] == "K" and t2m.attrs["GRIB_gridType"] == "regular_ll"
    assert ds.attrs["GRIB_centre"] == "edzw"
    np.testing.assert_allclose(ds.latitude.values[[0, -1]], [29.5, 70.5])
    np.testing.assert_allclose(ds.longitude.values[[0, 1, -1]], [-23.5, -23.4375, 62.5])
    assert ds.time.values == np.datetime64("2026-11-23T00:00")
    assert ds.step.values == np.timedelta64(3, "h")
    assert ds.valid_time.values == np.datetime64("2026-11-23T03:00")
    assert float(t2m.min()) > 230.0 and float(t2m.max()) < 315.0


# canonical -> (shortName, typeOfLevel, level, units, stepType) as ecCodes reports DWD files
DWD_KEYS = {
    "t2m": ("2t", "heightAboveGround", 2, "K", "instant"),
    "msl": ("prmsl", "meanSea", 0, "Pa", "instant"),
    "tp": ("tp", "surface", 0, "kg m**-2", "accum"),
    "gust10": ("max_i10fg", "heightAboveGround", 10, "m s**-1", "max"),
    "tcc": ("CLCT", "surface", 0, "%", "instant"),
    "cape": ("CAPE_ML", "unknown", 0, "J kg-1", "instant"),
    "u10": ("10u", "heightAboveGround", 10, "m s**-1", "instant"),
    "v10": ("10v", "heightAboveGround", 10, "m s**-1", "instant"),
    "u850": ("u", "isobaricInhPa", 850, "m s**-1", "instant"),
    "v850": ("v", "isobaricInhPa", 850, "m s**-1", "instant"),
    "t850": ("t", "isobaricInhPa", 850, "K", "instant"),
    "t500": ("t", "isobaricInhPa", 500, "K", "instant"),
    "gh500": ("z", "isobaricInhPa", 500, "m**2 s**-2", "instant"),
    "gh850": ("z", "isobaricInhPa", 850, "m**2 s**-2", "instant"),
    "gh1000": ("z", "isobaricInhPa", 1000, "m**2 s**-2", "instant"),
}


@pytest.mark.parametrize("name", sorted(DWD_KEYS))
def test_icon_eu_grib_keys(icon_eu_run, name):
    path = icon_eu_run / dwd_path("icon-eu", VARIABLES[name], RUN, 4)
    k = _keys(path, "shortName", "typeOfLevel", "level", "units", "stepType", "startStep",
              "endStep", "dataDate", "dataTime", "validityDate", "validityTime", "Ni", "Nj",
              "bitsPerValue", "editionNumber", "centre", "numberOfDataPoints")
    short, tol, level, units, step_type = DWD_KEYS[name]
    assert (k["shortName"], k["typeOfLevel"], k["level"], k["units"], k["stepType"]) == (
        short, tol, level, units, step_type)
    assert (k["dataDate"], k["dataTime"], k["validityDate"], k["validityTime"]) == (
        20261123, 0, 20261123, 400)
    assert (k["Ni"], k["Nj"], k["numberOfDataPoints"]) == (1377, 657, 1377 * 657)
    assert (k["editionNumber"], k["centre"]) == (2, "edzw")
    # 16-bit simple packing; tp has a fixed 0.1 mm precision, so it may need fewer bits.
    assert k["bitsPerValue"] == 16 or (name == "tp" and 0 < k["bitsPerValue"] <= 16)
    expect_start = {"accum": 0, "max": 3}.get(step_type, 4)  # gust: max over the last hour
    assert (k["startStep"], k["endStep"]) == (expect_start, 4)


PLAUSIBLE = {  # native units
    "t2m": (235.0, 315.0), "msl": (94000.0, 106000.0), "gust10": (0.0, 60.0),
    "tcc": (0.0, 100.01), "u10": (-40.0, 40.0), "v10": (-40.0, 40.0), "cape": (0.0, 4000.0),
    "u850": (-60.0, 70.0), "v850": (-60.0, 60.0), "t850": (240.0, 300.0),
    "t500": (215.0, 275.0), "gh500": (4900.0 * 9.80665, 6000.0 * 9.80665),
    "gh850": (1000.0 * 9.80665, 1700.0 * 9.80665), "gh1000": (-600.0 * 9.80665, 500 * 9.80665),
}


@pytest.mark.parametrize("name", sorted(PLAUSIBLE))
def test_icon_eu_values_are_plausible_and_vary(icon_eu_run, name):
    v = _keys(icon_eu_run / dwd_path("icon-eu", VARIABLES[name], RUN, 6), "values")["values"]
    lo, hi = PLAUSIBLE[name]
    assert lo <= v.min() and v.max() <= hi, (name, v.min(), v.max())
    assert v.std() > 0.0 and np.isfinite(v).all()


def test_icon_eu_has_real_lows_and_highs(icon_eu_run, gfs_run):
    eu = _keys(icon_eu_run / dwd_path("icon-eu", VARIABLES["msl"], RUN, 0), "values")["values"]
    g = _cfgrib(gfs_run / gfs_path(RUN, 0), shortName="prmsl")["prmsl"].values
    for msl in (eu, g.ravel()):
        assert msl.min() < 99500.0 and msl.max() > 102500.0
    assert g.min() > 95000.0 and g.max() < 105000.0


def test_precipitation_accumulates_from_zero(icon_eu_run):
    tp = [_keys(icon_eu_run / dwd_path("icon-eu", VARIABLES["tp"], RUN, s), "values")["values"]
          for s in range(7)]
    assert np.all(tp[0] == 0.0)
    for a, b in zip(tp, tp[1:], strict=False):
        assert np.all(b >= a)  # exactly non-decreasing after 16-bit packing
    assert tp[6].max() > 1.0 and (tp[6] == 0.0).mean() > 0.2  # rain somewhere, dry elsewhere


def test_temperatures_lapse_and_heights_follow_the_hypsometric_equation(icon_eu_run):
    def get(n):
        return _keys(icon_eu_run / dwd_path("icon-eu", VARIABLES[n], RUN, 2), "values")["values"]

    t2m, t850, t500 = get("t2m"), get("t850"), get("t500")
    # Mostly warmer near the ground (cold nights over land and mountains allow inversions).
    assert np.mean(t2m > t850) > 0.8 and np.mean(t2m - t850) > 5.0 and np.all(t850 > t500)
    thick = (get("gh500") - get("gh1000")) / 9.80665
    # Thickness 1000-500 hPa = Rd/g * Tmean * ln 2, with Tmean between T850+10 and T500.
    tmean = thick / (287.05 / 9.80665 * np.log(2.0))
    assert np.all(tmean < t850 + 15.0) and np.all(tmean > t500)


# --------------------------------------------------------------------------- GFS


IDX_RE = re.compile(r"^(\d+):(\d+):d=2026112300:([A-Z]+):([^:]+):([^:]+):$")


def _idx(gfs_run, step):
    path = gfs_run / gfs_path(RUN, step)
    lines = path.with_name(path.name + ".idx").read_text().splitlines()
    return path, [IDX_RE.match(line).groups() for line in lines]


def test_gfs_layout_and_idx_lines(gfs_run):
    assert str(gfs_path(RUN, 6)) == "gfs.20261123/00/atmos/gfs.t00z.pgrb2.0p25.f006"
    names = sorted(str(p.relative_to(gfs_run)) for p in gfs_run.rglob("*") if p.is_file())
    assert names == [f"gfs.20261123/00/atmos/gfs.t00z.pgrb2.0p25.f00{s}{x}"
                     for s in (0, 3, 6) for x in ("", ".idx")]
    path, recs = _idx(gfs_run, 6)
    text = path.with_name(path.name + ".idx").read_text().splitlines()
    assert text[0] == "1:0:d=2026112300:PRMSL:mean sea level:6 hour fcst:"
    assert "APCP:surface:0-6 hour acc fcst:" in "\n".join(text)
    fields = {(r[2], r[3]) for r in recs}
    for want in [("TMP", "2 m above ground"), ("GUST", "surface"), ("HGT", "500 mb"),
                 ("TCDC", "entire atmosphere"), ("UGRD", "850 mb"), ("CAPE", "surface"),
                 ("PRES", "surface"), ("RH", "2 m above ground")]:  # last two: unused extras
        assert want in fields
    assert [int(r[0]) for r in recs] == list(range(1, len(recs) + 1))
    _, recs0 = _idx(gfs_run, 0)
    assert all(r[4] == "anl" for r in recs0)
    assert not {"APCP", "TCDC"} & {r[2] for r in recs0}  # as NCEP's f000


def test_gfs_idx_offsets_point_at_whole_messages(gfs_run):
    path, recs = _idx(gfs_run, 3)
    data = path.read_bytes()
    offsets = [int(r[1]) for r in recs] + [len(data)]
    idx_to_short = {("PRMSL", "mean sea level"): "prmsl", ("TMP", "850 mb"): "t",
                    ("APCP", "surface"): "tp", ("HGT", "500 mb"): "gh",
                    ("UGRD", "10 m above ground"): "10u", ("GUST", "surface"): "gust",
                    ("TCDC", "entire atmosphere"): "tcc", ("CAPE", "surface"): "cape"}
    for rec, start, end in zip(recs, offsets, offsets[1:], strict=False):
        assert data[start:start + 4] == b"GRIB" and data[start + 7] == 2
        assert int.from_bytes(data[start + 8:start + 16], "big") == end - start
        assert data[end - 4:end] == b"7777"
        if (rec[2], rec[3]) in idx_to_short:
            k = _keys(path, "shortName", "endStep", "level", offset=start, length=end - start)
            assert k["shortName"] == idx_to_short[(rec[2], rec[3])]
            assert k["endStep"] == 3
            m = re.match(r"(\d+) mb", rec[3])
            if m:
                assert k["level"] == int(m.group(1))


def test_gfs_decodes_with_cfgrib(gfs_run):
    path = gfs_run / gfs_path(RUN, 6)
    ds = _cfgrib(path, typeOfLevel="isobaricInhPa", shortName="gh")
    assert ds["gh"].shape == (3, 721, 1440)
    assert ds["gh"].attrs["units"] == "gpm"
    assert sorted(ds.isobaricInhPa.values.tolist()) == [500, 850, 1000]
    np.testing.assert_allclose(ds.latitude.values[[0, -1]], [90.0, -90.0])
    np.testing.assert_allclose(ds.longitude.values[[0, -1]], [0.0, 359.75])
    tp = _cfgrib(path, shortName="tp")["tp"]
    assert tp.attrs["GRIB_stepType"] == "accum" and tp.attrs["units"] == "kg m**-2"
    assert tp.valid_time.values == np.datetime64("2026-11-23T06:00")


def test_pressure_systems_move_east(gfs_run):
    """Mid-latitude pressure anomalies at +6 h match those at +0 h shifted east, not west."""
    def band(step):
        msl = _cfgrib(gfs_run / gfs_path(RUN, step), shortName="prmsl")["prmsl"].values
        b = msl[100:221]  # 65N..35N
        return b - b.mean(axis=1, keepdims=True)

    a0, a6 = band(0), band(6)
    shifts = range(-40, 41)
    score = [float((np.roll(a0, k, axis=1) * a6).sum()) for k in shifts]
    best = list(shifts)[int(np.argmax(score))]
    assert 2 <= best <= 30, best  # 0.5..7.5 deg of longitude in 6 h


def test_winds_circulate_cyclonically_around_northern_lows(gfs_run):
    ds = _cfgrib(gfs_run / gfs_path(RUN, 3), typeOfLevel="isobaricInhPa", level=850)
    msl = _cfgrib(gfs_run / gfs_path(RUN, 3), shortName="prmsl")["prmsl"].values
    u, v = ds["u"].values, ds["v"].values
    band = msl[100:201]  # 65N..40N
    j, i = np.unravel_index(np.argmin(band), band.shape)
    j += 100
    i = min(max(i, 20), 1419)
    # Circulation around a box centred on the low (counter-clockwise: positive).
    box = 12
    south, north = u[j + box, i - box:i + box + 1], u[j - box, i - box:i + box + 1]
    west, east = v[j - box:j + box + 1, i - box], v[j - box:j + box + 1, i + box]
    circulation = south.sum() - north.sum() + east.sum() - west.sum()
    assert circulation > 0.0


def test_diurnal_cycle_in_2m_temperature(gfs_run):
    """From 00 to 06 UTC it warms where the sun rises (East Asia) and cools in North America,
    and the cycle is much weaker over the sea (North Pacific)."""
    def t2m(step):
        return _cfgrib(gfs_run / gfs_path(RUN, step), shortName="2t")["t2m"].values

    d = t2m(6) - t2m(0)
    rows = slice(140, 181)  # 55N..45N
    morning = d[rows, 480:520].mean()  # 120E..130E (land): local 08 h -> 14 h
    night = d[rows, 1040:1120].mean()  # 100W..80W (land): local 17 h -> 23 h
    pacific = d[rows, 680:720].mean()  # 170E..180E (sea): local 11 h -> 17 h
    assert morning > 2.0 and night < -2.0, (morning, night)
    assert abs(pacific) < morning / 2.0, (pacific, morning)


def test_land_and_sea_differ(icon_eu_run):
    from framecast.sampledata.land import land_mask

    mask = land_mask(np.array([50.0, 45.0, 40.0, 64.0]), np.array([10.0, -30.0, 5.0, 380.0]))
    np.testing.assert_array_equal(mask, [1.0, 0.0, 0.0, 1.0])  # Germany, Atlantic, Med., Finland
    lats, lons = np.linspace(29.5, 70.5, 657), np.linspace(-23.5, 62.5, 1377)
    land = land_mask(*(a.ravel() for a in np.meshgrid(lats, lons, indexing="ij"))) > 0.5
    def get(n):
        return _keys(icon_eu_run / dwd_path("icon-eu", VARIABLES[n], RUN, 3), "values")["values"]

    wind_ratio = np.hypot(get("u10"), get("v10")) / np.hypot(get("u850"), get("v850"))
    assert np.median(wind_ratio[~land]) > np.median(wind_ratio[land]) + 0.1  # rougher land


# --------------------------------------------------------------------------- ICON global


def test_icon_global_is_icosahedral_with_clat_clon(icon_run):
    single = icon_run / "00/t_2m/icon_global_icosahedral_single-level_2026112300_005_T_2M.grib2"
    pressure = icon_run / "00/fi/icon_global_icosahedral_pressure-level_2026112300_005_500_FI.grib2"
    clat = icon_run / "00/clat/icon_global_icosahedral_time-invariant_2026112300_CLAT.grib2"
    clon = icon_run / "00/clon/icon_global_icosahedral_time-invariant_2026112300_CLON.grib2"
    for p in (single, pressure, clat, clon):
        assert p.is_file(), p
    k = _keys(single, "gridType", "numberOfDataPoints", "uuidOfHGrid", "shortName", "centre",
              "validityTime")
    assert k["gridType"] == "unstructured_grid" and k["numberOfDataPoints"] == 46080
    assert (k["shortName"], k["centre"], k["validityTime"]) == ("2t", "edzw", 500)
    lat = _keys(clat, "values", "uuidOfHGrid", "shortName")
    lon = _keys(clon, "values", "uuidOfHGrid", "shortName")
    assert lat["uuidOfHGrid"] == lon["uuidOfHGrid"] == k["uuidOfHGrid"] != "0" * 32
    assert (lat["shortName"], lon["shortName"]) == ("tlat", "tlon")
    grid = icosahedral_grid(48)
    np.testing.assert_allclose(lat["values"], grid.clat, atol=1e-4)
    np.testing.assert_allclose(lon["values"], grid.clon, atol=1e-4)
    ds = _cfgrib(single)
    assert ds["t2m"].dims == ("values",) and ds["t2m"].size == 46080


@pytest.mark.parametrize("division", [1, 5, 48])
def test_icosahedral_grid_geometry(division):
    g = icosahedral_grid(division)
    assert g.n_cells == 20 * division**2 == g.cells.shape[0]
    assert division_for_cells(g.n_cells) == division
    v = g.vertices[g.cells]
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    area = np.linalg.norm(cross, axis=1) / 2.0
    # Flat triangles under-estimate the sphere a little; coarse grids more.
    assert 0.6 * 4.0 * np.pi < area.sum() <= 4.0 * np.pi
    assert area.max() / area.min() < 2.5
    assert np.all(np.einsum("ij,ij->i", cross, v[:, 0]) > 0)  # consistently oriented
    assert np.all(np.abs(g.clat) < 90.0) and np.all(np.abs(g.clon) <= 180.0)
    with pytest.raises(ValueError):
        division_for_cells(g.n_cells + 1)


def test_icon_resolution_is_selectable(tmp_path):
    files = generate_run("icon", RUN, [0], tmp_path, variables=["t2m"], icon_resolution=10)
    data = [p for p in files if "T_2M" in p.name][0]
    assert _keys(data, "numberOfDataPoints")["numberOfDataPoints"] == 2000


# --------------------------------------------------------------------------- options


def test_bz2_is_the_same_grib_compressed(tmp_path, icon_eu_run):
    files = generate_run("icon-eu", RUN, [2], tmp_path, variables=["t2m", "tp"], bz2=True)
    assert {p.name for p in files} == {
        f"{IEU}_single-level_2026112300_002_T_2M.grib2.bz2",
        f"{IEU}_single-level_2026112300_002_TOT_PREC.grib2.bz2"}
    for p in files:
        raw = p.read_bytes()
        assert raw[:3] == b"BZh"
        plain = icon_eu_run / p.relative_to(tmp_path).with_suffix("")
        # Deterministic: same seed, same bytes, even when generated with fewer variables.
        assert bz2.decompress(raw) == plain.read_bytes()


def test_seed_changes_the_weather_and_same_seed_repeats(tmp_path):
    a = generate_run("icon", RUN, [1], tmp_path / "a", variables=["msl"], icon_resolution=8)
    b = generate_run("icon", RUN, [1], tmp_path / "b", variables=["msl"], icon_resolution=8)
    c = generate_run("icon", RUN, [1], tmp_path / "c", variables=["msl"], icon_resolution=8,
                     seed=7)
    assert a[0].read_bytes() == b[0].read_bytes() != c[0].read_bytes()


def test_writes_are_atomic_and_world_readable(tmp_path):
    files = generate_run("icon-eu", RUN, [0, 1], tmp_path, variables=["msl"])
    assert len(files) == 2
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary leftovers
    mask = os.umask(0)
    os.umask(mask)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask


def test_naive_run_time_is_taken_as_utc(tmp_path):
    files = generate_run("icon", datetime(2026, 11, 23, 6), [0], tmp_path, variables=["t2m"],
                         icon_resolution=4)
    assert "2026112306" in files[0].name and files[0].parts[-3] == "06"


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "ecmwf"}, "unknown model 'ecmwf'"),
    ({"variables": ["t2m", "snow"]}, "unknown sample variable.*snow"),
    ({"variables": []}, "empty"),
    ({"steps": []}, "at least one step"),
    ({"steps": [-3, 0]}, "at least one step >= 0"),
    ({"model": "gfs", "bz2": True}, "bz2"),
    ({"model": "icon", "icon_resolution": 0}, "icon_resolution"),
])
def test_bad_arguments_are_spec_errors(tmp_path, kwargs, match):
    args = {"model": "icon-eu", "steps": [0], "variables": ["t2m"]} | kwargs
    model, steps = args.pop("model"), args.pop("steps")
    with pytest.raises(SpecError, match=match):
        generate_run(model, RUN, steps, tmp_path, **args)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- CLI


def test_cli_sample_data(tmp_path, capsys):
    from framecast.cli import main

    rc = main(["sample-data", "--model", "icon", "--run", "2026112312", "--steps", "0-6/3",
               "--out", str(tmp_path), "--variables", "t2m,tp", "--icon-resolution", "6"])
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("sample-data: icon run 2026112312: 3 steps, 8 files")
    assert (tmp_path / "12/tot_prec/icon_global_icosahedral_single-level_2026112312_006_TOT_PREC"
            ".grib2").is_file()
    rc = main(["sample-data", "--model", "icon", "--run", "2026-13-45", "--out", str(tmp_path)])
    assert rc == 2
    assert "run time '2026-13-45': expected YYYYMMDDHH" in capsys.readouterr().err
