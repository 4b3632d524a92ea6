"""Every sample variable: publishers' names and GRIB identities, and physical consistency.

The generator writes the extended variable set (upper air 1000-250 hPa, dewpoint, humidity,
cloud layers, present weather, rain/snow, snow depth, freezing level, Tmax/Tmin, CIN, soil
moisture, simulated IR) in the real layouts; the checks here read the files back with ecCodes
and compare with relations that hold in the atmosphere (and with MetPy for the dewpoint).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from framecast.errors import SpecError
from framecast.geo import ensure_cartopy

ensure_cartopy()
import eccodes  # noqa: E402

from framecast.sampledata import (  # noqa: E402
    VARIABLES,
    dwd_path,
    generate_run,
    gfs_path,
    model_variables,
)
from framecast.sampledata.weather import PRESSURE_LEVELS  # noqa: E402

RUN = datetime(2026, 1, 14, 0, tzinfo=UTC)  # winter: snow in the north, rain in the south
STEPS = [0, 1, 2, 3, 6]


@pytest.fixture(scope="module")
def icon_all(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("icon-all")
    generate_run("icon", RUN, STEPS, out, variables="all", icon_resolution=32)
    return out


@pytest.fixture(scope="module")
def gfs_all(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("gfs-all")
    generate_run("gfs", RUN, [0, 3], out, variables="all")
    return out


def _read(path: Path, offset: int = 0, length: int | None = None) -> tuple[dict, np.ndarray]:
    data = path.read_bytes()
    msg = data[offset:offset + length] if length else data[offset:]
    h = eccodes.codes_new_from_message(msg)
    try:
        keys = {k: eccodes.codes_get(h, k) for k in ("shortName", "typeOfLevel", "level",
                                                   "stepType", "startStep", "endStep")}
        return keys, eccodes.codes_get_values(h)
    finally:
        eccodes.codes_release(h)


def _dwd(run: Path, name: str, step: int) -> np.ndarray:
    return _read(run / dwd_path("icon", VARIABLES[name], RUN, step))[1]


# (shortName, typeOfLevel) ecCodes reports for the new DWD fields
DWD_IDENTITY = {
    "td2m": ("2d", "heightAboveGround"), "rh2m": ("2r", "heightAboveGround"),
    "tmax2m": ("max_2t", "heightAboveGround"), "tmin2m": ("min_2t", "heightAboveGround"),
    "lcc": ("lcc", "surface"), "mcc": ("mcc", "surface"), "hcc": ("hcc", "surface"),
    "cin": ("CIN_ML", "unknown"), "sd": ("sde", "surface"), "hzerocl": ("h", "isothermZero"),
    "ww": ("WW", "surface"), "snow_gsp": ("lsfwe", "surface"),
    "snow_con": ("csfwe", "surface"), "r700": ("r", "isobaricInhPa"),
    "t300": ("t", "isobaricInhPa"), "gh300": ("z", "isobaricInhPa"),
}


def test_icon_publishes_every_dwd_field_in_dwd_layout(icon_all):
    names = model_variables("icon")
    assert "ir_bt" not in names and "crain" not in names  # ICON-EU only / GFS only
    for lev in PRESSURE_LEVELS:
        assert {f"t{lev}", f"u{lev}", f"v{lev}", f"gh{lev}", f"r{lev}"} <= set(names)
    for name in names:
        for step in (0, 3):
            assert (icon_all / dwd_path("icon", VARIABLES[name], RUN, step)).is_file(), name
    assert (icon_all / "00/relhum/icon_global_icosahedral_pressure-level_2026011400_003_700_"
            "RELHUM.grib2").is_file()
    assert (icon_all / "00/ww/icon_global_icosahedral_single-level_2026011400_003_WW.grib2"
            ).is_file()
    for name, (short, tol) in DWD_IDENTITY.items():
        keys, values = _read(icon_all / dwd_path("icon", VARIABLES[name], RUN, 3))
        assert (keys["shortName"], keys["typeOfLevel"]) == (short, tol), name
        assert np.isfinite(values).all()
    keys, _ = _read(icon_all / dwd_path("icon", VARIABLES["tmax2m"], RUN, 6))
    # DWD's extremes cover the time since the previous output step (hourly here).
    assert (keys["stepType"], keys["startStep"], keys["endStep"]) == ("max", 5, 6)
    keys, _ = _read(icon_all / dwd_path("icon", VARIABLES["rain_gsp"], RUN, 6))
    assert (keys["stepType"], keys["startStep"]) == ("accum", 0)


def test_dewpoint_matches_metpy_and_never_exceeds_temperature(icon_all):
    from metpy.calc import dewpoint_from_relative_humidity
    from metpy.units import units

    t, td, rh = (_dwd(icon_all, n, 3) for n in ("t2m", "td2m", "rh2m"))
    assert np.all(td <= t + 0.01)
    want = dewpoint_from_relative_humidity(t * units.K, rh * units.percent).to("K").magnitude
    # MetPy 1.7's saturation pressure (Ambaum 2020) differs from Bolton's by < 0.1 K here.
    np.testing.assert_allclose(td, want, atol=0.1)


def test_tmax_tmin_bracket_the_temperature(icon_all):
    for step, before in ((3, 2), (2, 1), (6, 6)):
        t, tb = _dwd(icon_all, "t2m", step), _dwd(icon_all, "t2m", before)
        tx, tn = _dwd(icon_all, "tmax2m", step), _dwd(icon_all, "tmin2m", step)
        assert np.all(tx >= np.maximum(t, tb) - 0.01) and np.all(tn <= np.minimum(t, tb) + 0.01)


def test_upper_air_is_hydrostatic_and_dries_with_height(icon_all):
    gh = [_dwd(icon_all, f"gh{lev}", 3) for lev in PRESSURE_LEVELS]
    t = [_dwd(icon_all, f"t{lev}", 3) for lev in PRESSURE_LEVELS]
    r = [_dwd(icon_all, f"r{lev}", 3) for lev in PRESSURE_LEVELS]
    for lower, upper in zip(gh, gh[1:], strict=False):
        assert np.all(upper > lower)  # geopotential grows upward
    for lower, upper in zip(t[:5], t[1:5], strict=False):  # 1000..500 hPa: troposphere
        assert np.all(upper < lower + 0.01)
    assert all(x.min() >= 0.0 and x.max() <= 100.01 for x in r)
    assert r[0].mean() > r[3].mean() > r[5].mean()
    jet = np.hypot(_dwd(icon_all, "u300", 3), _dwd(icon_all, "v300", 3))
    low = np.hypot(_dwd(icon_all, "u850", 3), _dwd(icon_all, "v850", 3))
    assert jet.max() > 50.0 and jet.mean() > low.mean()


def test_clouds_follow_humidity(icon_all):
    r850, r925 = _dwd(icon_all, "r850", 3), _dwd(icon_all, "r925", 3)
    lcc, mcc, hcc = (_dwd(icon_all, n, 3) for n in ("lcc", "mcc", "hcc"))
    tcc = _dwd(icon_all, "tcc", 3)
    assert np.all(lcc[np.maximum(r850, r925) < 74.0] < 0.5)  # no low cloud in dry air
    assert np.all(hcc[_dwd(icon_all, "r300", 3) < 61.0] < 0.5)
    layers = np.maximum(np.maximum(lcc, mcc), hcc)
    assert np.corrcoef(layers, tcc)[0, 1] > 0.8
    for c in (lcc, mcc, hcc):
        assert c.min() >= 0.0 and c.max() <= 100.01 and c.std() > 5.0


def test_precipitation_splits_add_up_and_snow_falls_only_where_cold(icon_all):
    parts = {n: [_dwd(icon_all, n, s) for s in (3, 6)]
             for n in ("tp", "rain_gsp", "rain_con", "snow_gsp", "snow_con")}
    for i in range(2):
        total = sum(parts[n][i] for n in ("rain_gsp", "rain_con", "snow_gsp", "snow_con"))
        np.testing.assert_allclose(total, parts["tp"][i], atol=0.21)  # four 0.1 mm roundings
        for n in parts:
            assert parts[n][i].min() >= 0.0
    new_snow = (parts["snow_gsp"][1] + parts["snow_con"][1]
                - parts["snow_gsp"][0] - parts["snow_con"][0])
    new_rain = (parts["rain_gsp"][1] + parts["rain_con"][1]
                - parts["rain_gsp"][0] - parts["rain_con"][0])
    t2m = _dwd(icon_all, "t2m", 6)
    snowing, raining = new_snow > 0.3, new_rain > 0.3
    assert snowing.sum() > 20 and raining.sum() > 20  # both happen somewhere in winter
    assert t2m[snowing].max() < 273.15 + 6.0  # a few degrees of diurnal warming at most
    assert np.median(t2m[snowing]) < np.median(t2m[raining]) - 5.0
    sde = _dwd(icon_all, "sd", 6)
    assert sde.min() >= 0.0 and (sde > 0.05).sum() > 20
    assert t2m[sde > 0.05].max() < 273.15 + 6.0  # no snow cover in warm air


def test_present_weather_codes_are_wmo_and_match_the_temperature(icon_all):
    ww = _dwd(icon_all, "ww", 6)
    assert set(np.unique(ww)) <= {0, 1, 2, 3, 45, 61, 63, 65, 68, 69, 71, 73, 75, 80, 81, 82,
                                  85, 86, 95}
    t2m = _dwd(icon_all, "t2m", 6)
    snow = np.isin(ww, [71, 73, 75, 85, 86])
    rain = np.isin(ww, [61, 63, 65, 80, 81, 82, 95])
    assert snow.any() and rain.any()
    assert t2m[snow].max() < 273.15 + 6.0 and np.median(t2m[rain]) > np.median(t2m[snow])
    tcc = _dwd(icon_all, "tcc", 6)
    assert np.all(tcc[ww == 0] < 12.6)


def test_freezing_level_follows_the_temperature(icon_all):
    hz, t2m = _dwd(icon_all, "hzerocl", 3), _dwd(icon_all, "t2m", 3)
    assert hz.min() >= 0.0
    warm = t2m > 285.0
    assert hz[warm].min() > 1000.0 and np.corrcoef(hz, t2m)[0, 1] > 0.8


def _idx(run: Path, step: int) -> dict[str, tuple[int, int | None, str]]:
    path = run / gfs_path(RUN, step)
    lines = (path.parent / (path.name + ".idx")).read_text().splitlines()
    out = {}
    for i, line in enumerate(lines):
        n, off, _, var, level, fcst, _ = line.split(":")
        nxt = int(lines[i + 1].split(":")[1]) if i + 1 < len(lines) else None
        out[f"{var}:{level}"] = (int(off), None if nxt is None else nxt - int(off), fcst)
    return out


def test_gfs_file_has_every_gfs_field_by_idx(gfs_all):
    names = model_variables("gfs")
    assert "ww" not in names and "rain_gsp" not in names and "ir_bt" not in names
    idx3, idx0 = _idx(gfs_all, 3), _idx(gfs_all, 0)
    for name in names:
        v = VARIABLES[name]
        assert f"{v.gfs_name}:{v.gfs_level}" in idx3, name
    # Like NCEP's f000: no extremes or precipitation type at the analysis.
    for key in ("TMAX:2 m above ground", "TMIN:2 m above ground", "CRAIN:surface",
                "CPOFP:surface", "APCP:surface", "WEASD:surface"):
        assert key not in idx0 and key in idx3
    assert idx3["TMAX:2 m above ground"][2] == "3 hour fcst"
    assert idx3["WEASD:surface"][2] == idx3["APCP:surface"][2] == "0-3 hour acc fcst"
    path = gfs_all / gfs_path(RUN, 3)
    want = {"DPT:2 m above ground": ("2d", "heightAboveGround"),
            "LCDC:low cloud layer": ("tcc", "lowCloudLayer"),
            "HGT:0C isotherm": ("gh", "isothermZero"), "CRAIN:surface": ("crain", "surface"),
            "CSNOW:surface": ("csnow", "surface"), "CPOFP:surface": ("cpofp", "surface"),
            "SNOD:surface": ("sde", "surface"), "RH:700 mb": ("r", "isobaricInhPa"),
            "TMAX:2 m above ground": ("tmax", "heightAboveGround"),
            "SOILW:0-0.1 m below ground": ("soilw", "depthBelowLand"),
            "WEASD:surface": ("sdwe", "surface")}
    values = {}
    for key, (short, tol) in want.items():
        off, length, _ = idx3[key]
        keys, values[key] = _read(path, off, length)
        assert (keys["shortName"], keys["typeOfLevel"]) == (short, tol), key
    rain, snow = values["CRAIN:surface"], values["CSNOW:surface"]
    assert set(np.unique(rain)) <= {0.0, 1.0} and not np.any((rain == 1) & (snow == 1))
    assert snow.sum() > 0 and rain.sum() > 0


def test_icon_eu_publishes_simulated_ir(tmp_path):
    files = generate_run("icon-eu", RUN, [3], tmp_path, variables=["ir_bt", "t2m"])
    bt = _read([p for p in files if "SYNMSG" in p.name][0])
    t2m = _read([p for p in files if "T_2M" in p.name][0])[1]
    assert bt[0]["shortName"] == "clbt"
    assert (files[0].parent.name == "synmsg_bt_cl_ir10.8"
            or files[1].parent.name == "synmsg_bt_cl_ir10.8")
    assert bt[1].shape == t2m.shape
    assert np.median(bt[1]) < np.median(t2m) and bt[1].min() < 240.0  # cloud tops are cold


@pytest.mark.parametrize("model, name", [("gfs", "ww"), ("icon", "ir_bt"), ("icon-eu", "crain")])
def test_fields_a_publisher_lacks_are_refused(tmp_path, model, name):
    with pytest.raises(SpecError, match=f"{model} does not publish {name}"):
        generate_run(model, RUN, [0], tmp_path, variables=["t2m", name])
