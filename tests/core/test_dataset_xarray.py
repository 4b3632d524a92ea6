"""The xarray + cfgrib face of the dataset layer: decoder="cfgrib" and RunDataset.to_xarray."""

from __future__ import annotations

import bz2
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image

from framecast.cli import main
from framecast.dataset import RunDataset
from framecast.errors import DataError, GribError
from framecast.sampledata import VARIABLES, dwd_path, generate_run, gfs_path

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
DERIVED = ["wind10", "wind850", "thick_500_1000", "tp_1h", "tp_3h"]


def _path(run: Path, name: str, step: int, model: str = "icon-eu") -> Path:
    return run / dwd_path(model, VARIABLES[name], RUN, step)


def _link_tree(src: Path, dst: Path, skip=lambda p: False) -> Path:
    """A copy of a run made of symlinks (cheap); files for which ``skip`` is true left out."""
    for p in src.rglob("*"):
        if p.is_file() and not skip(p):
            target = dst / p.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(p)
    return dst


def _replace_with_copy(link: Path) -> Path:
    real = link.resolve()
    link.unlink()
    shutil.copyfile(real, link)
    return link


# ------------------------------------------------------------------ decoder="cfgrib"


@pytest.mark.parametrize("model,steps", [("icon-eu", [0, 6]), ("gfs", [0, 6]),
                                         ("icon", [0, 1, 6])])
def test_cfgrib_decoder_equals_eccodes(model, steps, request):
    run = request.getfixturevalue(f"{model.replace('-', '_')}_run")
    with (RunDataset.open(run, model=model) as ref,
          RunDataset.open(run, model=model, decoder="cfgrib") as ds):
        assert ds.decoder == "cfgrib" and "decoder cfgrib" in repr(ds)
        assert ds.steps == ref.steps and ds.variables() == ref.variables()
        compared = 0
        for name in ds.variables():
            if name.startswith("tp_") and name not in DERIVED:
                continue
            for step in steps if name not in DERIVED else steps[-1:]:
                if not ref.has(name, step):
                    continue
                a, b = ref.field(name, step), ds.field(name, step)
                assert (b.name, b.units, b.step, b.valid_time, b.run_time) == (
                    a.name, a.units, a.step, a.valid_time, a.run_time), (name, step)
                assert b.values.dtype == np.float32 and b.values.shape == a.values.shape
                np.testing.assert_array_equal(b.values, a.values, err_msg=f"{name} {step}")
                assert b.grid.key == a.grid.key
                assert b.attrs == a.attrs
                compared += 1
        # All 15 base names at every listed step (GFS f000 has no tcc), 5 derived at one.
        assert compared >= 14 * len(steps) + 5
        assert ds.stats.messages_decoded > 15 and ds.stats.bytes_read > 0


def test_cfgrib_decoder_keeps_the_geopotential_scale(icon_eu_run):
    with RunDataset.open(icon_eu_run, decoder="cfgrib") as ds:
        gh = ds.field("gh500", 2)
    z = xr.open_dataset(_path(icon_eu_run, "gh500", 2), engine="cfgrib",
                        backend_kwargs={"indexpath": ""})["z"].values
    assert gh.units == "gpm"
    np.testing.assert_allclose(gh.values, z / 9.80665, rtol=1e-6)
    assert 5000 < float(np.mean(gh.values)) < 6000


def test_cfgrib_decoder_shares_grids(icon_eu_run):
    with RunDataset.open(icon_eu_run, decoder="cfgrib") as ds:
        assert ds.field("t2m", 0).grid is ds.field("msl", 4).grid


def test_unknown_decoder_is_refused(icon_eu_run):
    with pytest.raises(DataError, match=r"unknown decoder 'grib_api'.*eccodes, cfgrib"):
        RunDataset.open(icon_eu_run, decoder="grib_api")


def test_cfgrib_decoder_bz2_run(tmp_path):
    generate_run("icon", RUN, [0, 1], tmp_path / "plain", variables=["t2m", "tp"],
                 icon_resolution=12)
    generate_run("icon", RUN, [0, 1], tmp_path / "bz", variables=["t2m", "tp"], bz2=True,
                 icon_resolution=12)
    with (RunDataset.open(tmp_path / "plain") as ref,
          RunDataset.open(tmp_path / "bz", decoder="cfgrib") as ds):
        for name in ("t2m", "tp_1h"):
            np.testing.assert_array_equal(ds.field(name, 1).values, ref.field(name, 1).values)
    bad = (tmp_path / "bz" / "00/t_2m/"
           "icon_global_icosahedral_single-level_2026112300_000_T_2M.grib2.bz2")
    bad.write_bytes(bz2.compress(b"GRIB" + b"\0" * 40)[:-10])
    with (RunDataset.open(tmp_path / "bz", decoder="cfgrib") as ds,
          pytest.raises(GribError, match=str(bad))):
        ds.field("t2m", 0)


def test_cfgrib_decoder_leaves_no_temporary_files(tmp_path, monkeypatch):
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    generate_run("icon-eu", RUN, [0], tmp_path / "bz", variables=["t2m"], bz2=True)
    with RunDataset.open(tmp_path / "bz", decoder="cfgrib") as ds:
        assert ds.field("t2m", 0).values.shape == (657, 1377)
        assert ds.stats.messages_decoded == 1
    assert list((tmp_path / "tmp").iterdir()) == []


def test_cfgrib_decoder_errors_at_open(icon_eu_run, tmp_path):
    run = _link_tree(icon_eu_run, tmp_path / "run")
    victim = _replace_with_copy(_path(run, "t2m", 2))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(GribError, match=rf"{victim}: truncated"):
        RunDataset.open(run, decoder="cfgrib")
    victim.write_bytes(b"<html>404 Not Found</html>" + b" " * 40)
    with pytest.raises(GribError, match=rf"{victim}: no GRIB message at byte 0"):
        RunDataset.open(run, decoder="cfgrib")


def test_cfgrib_decoder_file_damaged_after_open(icon_eu_run, tmp_path):
    run = _link_tree(icon_eu_run, tmp_path / "run")
    victim = _replace_with_copy(_path(run, "t2m", 2))
    data = victim.read_bytes()
    with RunDataset.open(run, decoder="cfgrib") as ds:
        victim.write_bytes(b"<html>404 Not Found</html>" + b" " * 40)
        with pytest.raises(GribError, match=rf"{victim}.*'t2m'.* step 2"):
            ds.field("t2m", 2)
        victim.write_bytes(data[: len(data) // 2])
        with pytest.raises(GribError, match=rf"{victim}.*'t2m'.* step 2"):
            ds.field("t2m", 2)
        victim.unlink()
        with pytest.raises(GribError, match=rf"{victim}: file vanished"):
            ds.field("t2m", 2)
        assert ds.field("t2m", 3).values.shape == (657, 1377)  # the rest still works


def test_cfgrib_decoder_content_contradicting_the_name(icon_eu_run, tmp_path):
    run = _link_tree(icon_eu_run, tmp_path / "run")
    wrong = _path(run, "t2m", 1)
    wrong.unlink()
    shutil.copyfile(_path(icon_eu_run, "msl", 1), wrong)
    with (RunDataset.open(run, decoder="cfgrib") as ds,
          pytest.raises(GribError, match=r"expected 't2m' \(step 1\).*prmsl")):
        ds.field("t2m", 1)


def test_cfgrib_decoder_gfs_file_damaged_after_open(gfs_run, tmp_path):
    src = gfs_run / gfs_path(RUN, 6)
    dst = tmp_path / src.name
    shutil.copyfile(src, dst)
    shutil.copyfile(src.with_name(src.name + ".idx"), dst.with_name(dst.name + ".idx"))
    with RunDataset.open(tmp_path, decoder="cfgrib") as ds:
        np.testing.assert_array_equal(ds.field("msl", 6).values,
                                      RunDataset.open(gfs_run).field("msl", 6).values)
        dst.write_bytes(src.read_bytes()[: dst.stat().st_size // 3])
        with pytest.raises(GribError, match=rf"{dst}: no GRIB message at byte \d+ "
                                            r"\(variable 'v850' step 6\)"):
            ds.field("v850", 6)  # late in the file: its offset is gone
        with pytest.raises(GribError, match=rf"{dst}: cfgrib cannot decode variable 't2m'"):
            ds.field("t2m", 6)  # early in the file, but cfgrib scans all of it


def test_bitmap_missing_points_are_nan_with_both_decoders(icon_eu_run, tmp_path):
    from framecast.dataset.grib import eccodes

    src = _path(icon_eu_run, "cape", 3)
    h = eccodes.codes_new_from_message(src.read_bytes())
    try:
        vals = eccodes.codes_get_values(h)
        vals[:1000] = 9999.0
        eccodes.codes_set(h, "bitmapPresent", 1)
        eccodes.codes_set(h, "missingValue", 9999.0)
        eccodes.codes_set_values(h, vals)
        data = eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)
    dst = tmp_path / src.relative_to(icon_eu_run)
    dst.parent.mkdir(parents=True)
    dst.write_bytes(data)
    got = {}
    for decoder in ("eccodes", "cfgrib"):
        with RunDataset.open(tmp_path, decoder=decoder) as ds:
            got[decoder] = ds.field("cape", 3).values
    for v in got.values():
        assert int(np.isnan(v).sum()) == 1000 and np.isnan(v[0, :1000]).all()
        assert float(np.nanmax(v)) < 9000
    np.testing.assert_array_equal(got["eccodes"], got["cfgrib"])


# ------------------------------------------------------------------ to_xarray


def test_to_xarray_is_lazy_and_decodes_one_message_per_variable(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        x = ds.to_xarray(["t2m", "msl", "gh500"])
        assert ds.stats.messages_decoded == 0
        assert dict(x.sizes) == {"step": 7, "latitude": 657, "longitude": 1377}
        assert list(x.data_vars) == ["t2m", "msl", "gh500"]
        repr(x)
        assert ds.stats.messages_decoded == 0
        one = x.isel(step=3).load()
        assert ds.stats.messages_decoded == 3
        np.testing.assert_array_equal(one["t2m"].values, ds.field("t2m", 3).values)
        np.testing.assert_array_equal(one["gh500"].values, ds.field("gh500", 3).values)
        # a spatial window of another step: still one message for that variable
        box = x["t2m"].sel(step=np.timedelta64(5, "h"), latitude=slice(47, 55),
                           longitude=slice(5, 15))
        n = ds.stats.messages_decoded
        vals = box.values
        assert ds.stats.messages_decoded == n + 1
        assert vals.shape == (129, 161)
        full = ds.field("t2m", 5)
        lat = (full.grid.lats >= 47) & (full.grid.lats <= 55)
        lon = (full.grid.lons >= 5) & (full.grid.lons <= 15)
        np.testing.assert_array_equal(vals, full.values[np.ix_(lat, lon)])


def test_to_xarray_coordinates_and_attributes(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        x = ds.to_xarray(["t2m", "tp_3h", "gh850"])
        grid = ds.field("t2m", 0).grid
    assert x["step"].dtype == np.dtype("timedelta64[ns]")
    assert list(x["step"].values) == [np.timedelta64(h, "h") for h in range(7)]
    assert x["time"].values == np.datetime64("2026-11-23T00:00")
    assert x["valid_time"].values[6] == np.datetime64("2026-11-23T06:00")
    np.testing.assert_array_equal(x["latitude"].values, grid.lats)
    np.testing.assert_array_equal(x["longitude"].values, grid.lons)
    assert x["latitude"].attrs["units"] == "degrees_north"
    assert x["t2m"].attrs == {"units": "K", "long_name": "2 metre temperature"}
    assert x["tp_3h"].attrs["long_name"] == "total precipitation over the last 3 h"
    assert x["gh850"].attrs == {"units": "gpm", "long_name": "850 hPa geopotential height"}
    assert x.attrs["model"] == "icon-eu" and x.attrs["decoder"] == "eccodes"
    assert x.attrs["forecast_reference_time"] == "2026-11-23T00:00:00+00:00"


def test_to_xarray_matches_cfgrib_on_the_same_file(icon_eu_run):
    ref = xr.open_dataset(_path(icon_eu_run, "t2m", 4), engine="cfgrib",
                          backend_kwargs={"indexpath": ""})
    with RunDataset.open(icon_eu_run) as ds:
        x = ds.to_xarray(["t2m"])
        mine = x["t2m"].sel(step=ref["step"].values)
        xr.testing.assert_equal(mine.reset_coords(drop=True),
                                ref["t2m"].reset_coords(drop=True))
        for c in ("step", "time", "valid_time"):
            assert mine[c].values == ref[c].values, c


def test_to_xarray_derived_variables(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        x = ds.to_xarray(["wind10", "thick_500_1000", "tp_3h"])
        assert ds.stats.messages_decoded == 0
        w = x["wind10"].isel(step=2).values
        assert ds.stats.messages_decoded == 2  # u10 and v10, nothing else
        u, v = ds.field("u10", 2).values, ds.field("v10", 2).values
        np.testing.assert_allclose(w, np.hypot(u, v), rtol=1e-6)
        th = x["thick_500_1000"].isel(step=4).values
        np.testing.assert_array_equal(
            th, ds.field("gh500", 4).values - ds.field("gh1000", 4).values)
        assert 4500 < float(np.mean(th)) < 6000
        tp3 = x["tp_3h"].isel(step=[2, 5]).values
        assert tp3.shape == (2, 657, 1377) and float(tp3.min()) >= 0
        np.testing.assert_array_equal(tp3[1], ds.field("tp_3h", 5).values)
        # normal xarray on derived data: a time mean over the run
        mean = x["wind10"].isel(latitude=slice(0, 10), longitude=slice(0, 10)).mean("step")
        assert mean.shape == (10, 10) and np.isfinite(mean.values).all()


def test_to_xarray_outer_indexing(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        x = ds.to_xarray(["msl"])
        sub = x["msl"].isel(step=[0, 6], latitude=[0, 5], longitude=[1, 2, 3]).values
        assert ds.stats.messages_decoded == 2
        for i, s in enumerate((0, 6)):
            np.testing.assert_array_equal(sub[i], ds.field("msl", s).values[np.ix_([0, 5],
                                                                                    [1, 2, 3])])
        assert x["msl"].isel(step=slice(3, 3)).values.shape == (0, 657, 1377)


def test_to_xarray_missing_steps_read_as_nan(icon_eu_run, tmp_path):
    run = _link_tree(icon_eu_run, tmp_path / "run",
                     skip=lambda p: p.name.endswith("_002_TOT_PREC.grib2"))
    with RunDataset.open(run) as ds:
        x = ds.to_xarray(["tp", "tp_1h", "t2m"])
        assert not ds.has("tp", 2) and not ds.has("tp_1h", 3) and ds.has("tp_1h", 4)
        tp1 = x["tp_1h"].isel(step=[2, 3, 4]).values
        assert np.isnan(tp1[0]).all() and np.isnan(tp1[1]).all()
        assert np.isfinite(tp1[2]).all()
        assert np.isnan(x["tp"].isel(step=2).values).all()
        assert np.isfinite(x["t2m"].isel(step=2).values).all()


def test_to_xarray_errors(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        with pytest.raises(DataError, match=rf"'snow' is not available.*{icon_eu_run}"):
            ds.to_xarray(["t2m", "snow"])
        with pytest.raises(DataError, match=r"'t700' is not available.*available: cape"):
            ds.to_xarray(["t700"])
        x = ds.to_xarray(["t2m"])
    with pytest.raises(DataError, match="closed"):
        ds.to_xarray()
    with pytest.raises(DataError, match="closed"):
        x["t2m"].isel(step=0).load()


def test_to_xarray_gfs_all_variables(gfs_run):
    with RunDataset.open(gfs_run, model="gfs") as ds:
        x = ds.to_xarray()
        assert ds.stats.messages_decoded == 0
        assert set(x.data_vars) == set(ds.variables())
        assert dict(x.sizes) == {"step": 3, "latitude": 721, "longitude": 1440}
        assert float(x["latitude"][0]) == 90.0
        t850 = x["t850"].sel(step=np.timedelta64(6, "h")).values
        assert ds.stats.messages_decoded == 1
        np.testing.assert_array_equal(t850, ds.field("t850", 6).values)
        # GFS f000 has no tp: the run starts with nothing accumulated
        assert float(np.abs(x["tp"].isel(step=0).values).max()) == 0.0
        assert np.isnan(x["tcc"].isel(step=0).values).all()  # NCEP's f000 has no TCDC
        assert np.isfinite(x["tcc"].isel(step=1).values).all()


def test_to_xarray_icon_unstructured(icon_run):
    with RunDataset.open(icon_run, model="icon") as ds:
        x = ds.to_xarray(["t2m", "wind10"])
        coords = ds.stats.messages_decoded  # CLAT and CLON, once
        assert coords == 2
        assert dict(x.sizes) == {"step": 7, "values": 46080}
        assert x["t2m"].dims == ("step", "values")
        assert x["latitude"].dims == ("values",)
        grid = ds.field("t2m", 0).grid
        np.testing.assert_array_equal(x["latitude"].values, grid.lats)
        np.testing.assert_array_equal(x["longitude"].values, grid.lons)
        n = ds.stats.messages_decoded
        one = x.isel(step=4).load()
        assert ds.stats.messages_decoded == n + 3  # t2m, u10, v10
        np.testing.assert_array_equal(one["t2m"].values, ds.field("t2m", 4).values)
        # per-cell coordinates allow normal xarray selection of a region
        europe = x["t2m"].isel(step=0).where((x.latitude > 35) & (x.latitude < 70), drop=True)
        assert 0 < europe.sizes["values"] < 46080


def test_to_xarray_with_cfgrib_decoder(gfs_run):
    with (RunDataset.open(gfs_run) as ref,
          RunDataset.open(gfs_run, decoder="cfgrib") as ds):
        a = ref.to_xarray(["msl", "wind850"]).isel(step=2).load()
        b = ds.to_xarray(["msl", "wind850"]).isel(step=2).load()
        assert ds.stats.messages_decoded == 3
    assert b.attrs["decoder"] == "cfgrib"
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


# ------------------------------------------------------------------ render CLI


@pytest.mark.slow
def test_render_cli_with_cfgrib_decoder_gives_the_same_png(icon_eu_run, tmp_path):
    pngs = {}
    for decoder in ("eccodes", "cfgrib"):
        out = tmp_path / decoder
        rc = main(["render", "--data", str(icon_eu_run), "--out", str(out), "--model",
                   "icon-eu", "--product", "t2m_mslp", "--region", "germany", "--steps", "3",
                   "--workers", "1", "--no-progress", "--decoder", decoder])
        assert rc == 0
        (png,) = sorted(out.rglob("*.png"))
        pngs[decoder] = np.asarray(Image.open(png).convert("RGB")).astype(int)
    a, b = pngs["eccodes"], pngs["cfgrib"]
    assert a.shape == b.shape == (800, 1000, 3)
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 100
    assert int(np.abs(a - b).max()) <= 1


def test_render_cli_rejects_an_unknown_decoder(icon_eu_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["render", "--data", str(icon_eu_run), "--out", str(tmp_path), "--decoder", "x"])
    assert "invalid choice: 'x'" in capsys.readouterr().err
