"""RunDataset: lazy indexing of real-layout runs, fields equal to cfgrib's, derived, errors."""

from __future__ import annotations

import bz2
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from framecast.dataset import FIELD_CACHE_ENV, LRU_SIZE, RunDataset, validate_grib
from framecast.errors import DataError, GribError
from framecast.icongrid import icosahedral_grid
from framecast.sampledata import VARIABLES, dwd_path, generate_run, gfs_path

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
BASE = ["cape", "gh1000", "gh500", "gh850", "gust10", "msl", "t2m", "t500", "t850", "tcc", "tp",
        "u10", "u850", "v10", "v850"]


def _path(run: Path, name: str, step: int, model: str = "icon-eu") -> Path:
    return run / dwd_path(model, VARIABLES[name], RUN, step)


def _cfgrib(path: Path, **filter_by_keys) -> xr.Dataset:
    kw = {"indexpath": ""}
    if filter_by_keys:
        kw["filter_by_keys"] = filter_by_keys
    return xr.open_dataset(path, engine="cfgrib", backend_kwargs=kw)


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


# --------------------------------------------------------------------------- opening


def test_open_indexes_without_reading_values(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        assert ds.model == "icon-eu"
        assert ds.run_time == RUN and ds.run_time.tzinfo is not None
        assert ds.run_time.utcoffset() == timedelta(0)
        assert ds.steps == list(range(7))
        names = ds.variables()
        assert set(BASE) <= set(names)
        assert {"wind10", "wind850", "thick_500_1000", "tp_1h", "tp_3h", "tp_6h"} <= set(names)
        assert ds.stats.messages_decoded == 0 and ds.stats.bytes_read == 0
        assert len(ds.files()) == 105


def test_field_matches_cfgrib_and_reads_one_message(icon_eu_run):
    path = _path(icon_eu_run, "t2m", 3)
    ref = _cfgrib(path)
    with RunDataset.open(icon_eu_run) as ds:
        f = ds.field("t2m", 3)
        assert ds.stats.messages_decoded == 1
        assert ds.stats.bytes_read == path.stat().st_size
    assert f.name == "t2m" and f.units == "K" and f.step == 3
    assert f.values.dtype == np.float32 and f.values.shape == (657, 1377)
    np.testing.assert_array_equal(f.values, ref["t2m"].values)
    assert f.grid.kind == "regular"
    np.testing.assert_allclose(f.grid.lats, ref.latitude.values)
    np.testing.assert_allclose(f.grid.lons, ref.longitude.values)
    assert f.run_time == RUN and f.valid_time == RUN + timedelta(hours=3)
    assert f.attrs["source"] == str(path)


def test_files_outside_the_requested_field_are_never_read(icon_eu_run, tmp_path):
    """Truncate another file after opening: only its own field() notices."""
    run = _link_tree(icon_eu_run, tmp_path / "run")
    victim = _replace_with_copy(_path(run, "msl", 5))
    with RunDataset.open(run) as ds:
        victim.write_bytes(victim.read_bytes()[:100000])
        assert ds.field("msl", 4).values.min() > 90000.0
        with pytest.raises(GribError, match=rf"{victim}: incomplete GRIB message"):
            ds.field("msl", 5)


def test_grid_is_shared_between_fields(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        a, b = ds.field("t2m", 0), ds.field("gh500", 6)
        assert a.grid is b.grid
        assert a.grid.key == b.grid.key


def test_lru_keeps_a_few_fields_only(icon_eu_run, monkeypatch):
    monkeypatch.setenv(FIELD_CACHE_ENV, "0")  # this dataset's own LRU alone
    with RunDataset.open(icon_eu_run) as ds:
        first = ds.field("msl", 0)
        assert ds.field("msl", 0) is first and ds.stats.cache_hits == 1
        with pytest.raises(ValueError, match="read-only"):
            first.values[0, 0] = 0.0  # shared with later callers: must not be changed
        for step in range(1, 7):
            ds.field("msl", step)
        assert len(ds._cache) == LRU_SIZE
        ds.field("msl", 0)
        assert ds.stats.messages_decoded == 8  # evicted, decoded again


def test_datasets_of_one_process_share_decoded_fields(icon_eu_run, tmp_path, monkeypatch):
    """A render task opens the run once per product and region: the second dataset takes the
    fields the first decoded, a file replaced since is decoded anew, and the byte budget
    evicts the least recently used."""
    run = _link_tree(icon_eu_run, tmp_path / "run")
    with RunDataset.open(run) as a:
        msl = a.field("msl", 1)
        a.field("t2m", 1)
    with RunDataset.open(run) as b:
        assert b.field("msl", 1) is msl
        assert b.stats.messages_decoded == 0 and b.stats.cache_hits == 1
    victim = _replace_with_copy(_path(run, "msl", 1))  # a new inode: a later download
    with RunDataset.open(run) as c:
        again = c.field("msl", 1)
        assert again is not msl and c.stats.messages_decoded == 1
        np.testing.assert_array_equal(again.values, msl.values)
    assert victim.exists()
    one_field_mb = msl.values.nbytes / 2**20
    monkeypatch.setenv(FIELD_CACHE_ENV, str(one_field_mb * 1.5))  # room for one field
    with RunDataset.open(run) as d:
        d.field("msl", 2)
        d.field("t2m", 2)
    with RunDataset.open(run) as e:
        e.field("t2m", 2)
        assert e.stats.messages_decoded == 0  # the newest stayed
        e.field("msl", 2)
        assert e.stats.messages_decoded == 1  # the older was evicted
    monkeypatch.setenv(FIELD_CACHE_ENV, "lots")
    with RunDataset.open(run) as f, pytest.raises(DataError, match=f"{FIELD_CACHE_ENV}='lots'"):
        f.field("msl", 3)


def test_open_explicit_file_list(icon_eu_run):
    files = [_path(icon_eu_run, "t2m", s) for s in (0, 2)] + [_path(icon_eu_run, "msl", 2)]
    with RunDataset.open(files) as ds:
        assert ds.steps == [0, 2] and ds.variables() == ["msl", "t2m"]
        assert ds.field("msl", 2).units == "Pa"


# --------------------------------------------------------------------------- values & units


def test_geopotential_becomes_geopotential_height(icon_eu_run):
    ref = _cfgrib(_path(icon_eu_run, "gh500", 2))["z"].values
    with RunDataset.open(icon_eu_run) as ds:
        gh = ds.field("gh500", 2)
    assert gh.units == "gpm"
    np.testing.assert_allclose(gh.values, ref / 9.80665, rtol=1e-6)
    assert gh.values.min() > 4900.0 and gh.values.max() < 6000.0


def test_units_are_cfgrib_spelling_and_convert(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        units = {n: ds.field(n, 1).units for n in BASE}
        t2m, msl, tp, gh, wind = (ds.field("t2m", 1), ds.field("msl", 1), ds.field("tp", 4),
                                  ds.field("gh500", 1), ds.field("wind10", 1))
        cape = ds.field("cape", 1)
    assert units == {"t2m": "K", "msl": "Pa", "tp": "kg m**-2", "gust10": "m s**-1",
                     "tcc": "%", "u10": "m s**-1", "v10": "m s**-1", "cape": "J kg**-1",
                     "u850": "m s**-1", "v850": "m s**-1", "t850": "K", "t500": "K",
                     "gh500": "gpm", "gh850": "gpm", "gh1000": "gpm"}
    np.testing.assert_allclose(t2m.to("degC").values, t2m.values - 273.15, atol=1e-4)
    np.testing.assert_allclose(msl.to("hPa").values, msl.values / 100.0, rtol=1e-6)
    np.testing.assert_array_equal(tp.to("mm").values, tp.values)
    np.testing.assert_allclose(wind.to("km/h").values, wind.values * 3.6, rtol=1e-6)
    np.testing.assert_allclose(gh.to("dam").values, gh.values / 10.0, rtol=1e-6)
    assert cape.to("J/kg").units == "J/kg"
    assert t2m.to("degC").units == "degC" and -40.0 < t2m.to("degC").values.mean() < 30.0


def test_derived_quantities(icon_eu_run):
    def ref(name, step):
        return _cfgrib(_path(icon_eu_run, name, step)).to_array().values[0]

    with RunDataset.open(icon_eu_run) as ds:
        wind10 = ds.field("wind10", 4)
        wind850 = ds.field("wind850", 4)
        thick = ds.field("thick_500_1000", 4)
        tp3 = ds.field("tp_3h", 5)
        tp6 = ds.field("tp_6h", 3)  # step < 6: accumulation since the start
        tp1 = ds.field("tp_1h", 1)
    np.testing.assert_allclose(wind10.values, np.hypot(ref("u10", 4), ref("v10", 4)), rtol=1e-6)
    np.testing.assert_allclose(wind850.values, np.hypot(ref("u850", 4), ref("v850", 4)),
                               rtol=1e-6)
    assert wind10.units == wind850.units == "m s**-1"
    np.testing.assert_allclose(thick.values, (ref("gh500", 4) - ref("gh1000", 4)) / 9.80665,
                               rtol=1e-5)
    assert thick.units == "gpm" and 4900.0 < thick.values.mean() < 5800.0
    np.testing.assert_allclose(tp3.values, ref("tp", 5) - ref("tp", 2), atol=1e-5)
    assert tp3.units == "kg m**-2" and tp3.attrs["period_hours"] == "3"
    np.testing.assert_array_equal(tp6.values, ref("tp", 3))
    np.testing.assert_allclose(tp1.values, ref("tp", 1) - ref("tp", 0), atol=1e-5)
    assert tp3.values.min() >= 0.0 and tp3.values.max() > 0.0
    assert tp3.valid_time == RUN + timedelta(hours=5)


def test_tp_period_needs_the_earlier_step(icon_eu_run, tmp_path):
    run = _link_tree(icon_eu_run, tmp_path / "run", skip=lambda p: p.name.endswith(
        "_003_TOT_PREC.grib2"))
    with RunDataset.open(run) as ds:
        assert ds.field("tp_1h", 5).values.max() > 0.0
        with pytest.raises(DataError, match=r"tp_3h at step 6 needs tp at step 3.*tp steps: "
                                            r"0-2, 4-6"):
            ds.field("tp_3h", 6)
        with pytest.raises(DataError, match=r"'tp' has no step 3"):
            ds.field("tp", 3)


# --------------------------------------------------------------------------- GFS


def test_gfs_run_from_idx(gfs_run):
    path = gfs_run / gfs_path(RUN, 6)
    with RunDataset.open(gfs_run) as ds:
        assert ds.model == "gfs" and ds.steps == [0, 3, 6]
        assert ds.stats.bytes_read == 0
        t850 = ds.field("t850", 6)
        assert ds.stats.bytes_read < path.stat().st_size / 10  # one message, not the file
        gh = ds.field("gh1000", 6)
        tp3 = ds.field("tp_3h", 6)
        tp0 = ds.field("tp", 0)
        tp_first = ds.field("tp_6h", 3)
        with pytest.raises(DataError, match=r"'tcc' has no step 0.*steps present: 3, 6"):
            ds.field("tcc", 0)
    ref = _cfgrib(path, typeOfLevel="isobaricInhPa", shortName="t", level=850)
    np.testing.assert_array_equal(t850.values, ref["t"].values)
    np.testing.assert_allclose(t850.grid.lats, ref.latitude.values)
    np.testing.assert_allclose(t850.grid.lons, ref.longitude.values)
    assert t850.grid.is_global
    assert gh.units == "gpm"
    tp = {s: _cfgrib(gfs_run / gfs_path(RUN, s), shortName="tp")["tp"].values for s in (3, 6)}
    np.testing.assert_allclose(tp3.values, tp[6] - tp[3], atol=1e-5)
    assert tp0.values.shape == (721, 1440) and not tp0.values.any()  # f000 has no APCP
    np.testing.assert_array_equal(tp_first.values, tp[3])


def test_gfs_without_idx_is_indexed_from_headers(gfs_run, tmp_path):
    src = gfs_run / gfs_path(RUN, 3)
    dst = tmp_path / src.name
    dst.symlink_to(src)
    with RunDataset.open(tmp_path) as ds:
        assert ds.steps == [3] and "cape" in ds.variables()
        assert ds.stats.messages_decoded == 0
        np.testing.assert_array_equal(
            ds.field("cape", 3).values,
            _cfgrib(src, shortName="cape")["cape"].values)


def test_gfs_subset_with_stale_idx_falls_back_to_headers(gfs_run, tmp_path):
    """A ranged download keeps some messages; a copied full inventory must not mislead."""
    src = gfs_run / gfs_path(RUN, 6)
    lines = src.with_name(src.name + ".idx").read_text().splitlines()
    data = src.read_bytes()
    offsets = [int(line.split(":")[1]) for line in lines] + [len(data)]
    keep = [i for i, line in enumerate(lines) if ":TMP:" in line or ":PRMSL:" in line]
    dst = tmp_path / src.name
    dst.write_bytes(b"".join(data[offsets[i]:offsets[i + 1]] for i in keep))
    dst.with_name(dst.name + ".idx").write_text("\n".join(lines) + "\n")
    with RunDataset.open(tmp_path) as ds:
        assert ds.variables() == ["msl", "t2m", "t500", "t850"]
        ref = _cfgrib(src, typeOfLevel="isobaricInhPa", shortName="t", level=500)
        np.testing.assert_array_equal(ds.field("t500", 6).values, ref["t"].values)


# --------------------------------------------------------------------------- ICON global


def test_icon_global_fields_on_cell_centres(icon_run):
    with RunDataset.open(icon_run) as ds:
        assert ds.model == "icon" and ds.steps == list(range(7))
        f = ds.field("t2m", 2)
        wind = ds.field("wind850", 2)
    assert f.grid.kind == "unstructured" and f.values.shape == (46080,)
    assert f.grid.shape == (46080,) and wind.grid is f.grid
    g = icosahedral_grid(48)
    np.testing.assert_allclose(f.grid.lats, g.clat, atol=1e-4)
    np.testing.assert_allclose(f.grid.lons, g.clon, atol=1e-4)
    path = icon_run / dwd_path("icon", VARIABLES["t2m"], RUN, 2)
    np.testing.assert_array_equal(f.values, _cfgrib(path)["t2m"].values)


def test_icon_global_without_coordinates_is_a_clear_error(icon_run, tmp_path):
    run = _link_tree(icon_run, tmp_path / "run", skip=lambda p: "CLON" in p.name)
    with RunDataset.open(run) as ds, pytest.raises(DataError, match="needs the CLON file"):
        ds.field("msl", 0)


def test_icon_global_coordinates_of_another_grid_are_rejected(icon_run, tmp_path):
    run = _link_tree(icon_run, tmp_path / "run", skip=lambda p: "CLAT" in p.name)
    other = tmp_path / "other"
    written = generate_run("icon", RUN, [0], other, variables=["t2m"], icon_resolution=47)
    clat = [p for p in written if p.name.endswith("CLAT.grib2")][0]
    target = run / clat.relative_to(other)
    target.parent.mkdir(parents=True)
    shutil.copyfile(clat, target)
    with RunDataset.open(run) as ds, pytest.raises(DataError, match="different grid"):
        ds.field("t2m", 0)


# --------------------------------------------------------------------------- bz2


def test_bz2_run_decompresses_on_the_fly(tmp_path, icon_eu_run):
    generate_run("icon", RUN, [0, 1], tmp_path, variables=["t2m", "tp"], bz2=True,
                 icon_resolution=12)
    assert all(p.name.endswith(".bz2") for p in tmp_path.rglob("*") if p.is_file())
    with RunDataset.open(tmp_path) as ds:
        f = ds.field("tp_1h", 1)
        assert f.values.shape == (2880,) and f.grid.kind == "unstructured"
    bad = tmp_path / "00/t_2m/icon_global_icosahedral_single-level_2026112300_001_T_2M.grib2.bz2"
    bad.write_bytes(bz2.compress(b"GRIB" + b"\0" * 40)[:-10])
    with RunDataset.open(tmp_path) as ds, pytest.raises(GribError, match=str(bad)):
        ds.field("t2m", 1)
    bad.write_bytes(b"plain text")
    with pytest.raises(GribError, match="not bzip2"):
        RunDataset.open(tmp_path)


# --------------------------------------------------------------------------- errors


def test_missing_variable_and_step_name_what_and_where(icon_eu_run):
    with RunDataset.open(icon_eu_run) as ds:
        with pytest.raises(DataError, match=rf"'t2m' has no step 9 in {icon_eu_run}.*0-6"):
            ds.field("t2m", 9)
        with pytest.raises(DataError, match=r"unknown variable 'snoww'; did you mean snow.*"
                                            r"\(step 1\)"):
            ds.field("snoww", 1)
        with pytest.raises(DataError, match=r"'t700' \(step 1\) not found.*available"):
            ds.field("t700", 1)
    with pytest.raises(DataError, match="closed"):
        ds.field("t2m", 0)


def test_non_grib_and_truncated_files_fail_at_open(icon_eu_run, tmp_path):
    run = _link_tree(icon_eu_run, tmp_path / "run")
    victim = _replace_with_copy(_path(run, "t2m", 2))
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.raises(GribError, match=rf"{victim}: truncated"):
        RunDataset.open(run)
    victim.write_bytes(b"<html>404 Not Found</html>" + b" " * 40)
    with pytest.raises(GribError, match=rf"{victim}: no GRIB message at byte 0"):
        RunDataset.open(run)
    victim.write_bytes(data[:-4] + b"XXXX")
    with pytest.raises(GribError, match=rf"{victim}.*'7777'"):
        RunDataset.open(run)


def test_truncated_gfs_file_fails_at_open(gfs_run, tmp_path):
    src = gfs_run / gfs_path(RUN, 6)
    dst = tmp_path / src.name
    dst.write_bytes(src.read_bytes()[:-5000])
    shutil.copyfile(src.with_name(src.name + ".idx"), dst.with_name(dst.name + ".idx"))
    with pytest.raises(GribError, match=rf"{dst}: truncated"):
        RunDataset.open(tmp_path)
    dst.with_name(dst.name + ".idx").unlink()
    with pytest.raises(GribError, match=rf"{dst}: truncated"):
        RunDataset.open(tmp_path)


def test_file_whose_content_contradicts_its_name(icon_eu_run, tmp_path):
    run = _link_tree(icon_eu_run, tmp_path / "run")
    wrong = _path(run, "t2m", 1)
    wrong.unlink()
    shutil.copyfile(_path(icon_eu_run, "msl", 1), wrong)
    with RunDataset.open(run) as ds, pytest.raises(GribError, match="expected 't2m'.*prmsl"):
        ds.field("t2m", 1)


def test_source_errors(tmp_path, icon_eu_run, gfs_run):
    with pytest.raises(DataError, match="does not exist"):
        RunDataset.open(tmp_path / "nope")
    with pytest.raises(DataError, match="no GRIB files"):
        RunDataset.open(tmp_path)
    with pytest.raises(DataError, match="empty file list"):
        RunDataset.open([])
    with pytest.raises(DataError, match="holds icon-eu files, not gfs"):
        RunDataset.open(icon_eu_run, model="gfs")
    (tmp_path / "x.grib2").write_bytes(b"GRIB")
    with pytest.raises(GribError, match="x.grib2"):
        RunDataset.open(tmp_path)


def test_mixed_runs_are_refused(icon_eu_run, tmp_path):
    generate_run("icon-eu", datetime(2026, 11, 23, 6, tzinfo=UTC), [0], tmp_path,
                 variables=["t2m"])
    _link_tree(icon_eu_run / "00" / "pmsl", tmp_path / "00" / "pmsl")
    with pytest.raises(DataError, match="several runs.*2026112300.*2026112306"):
        RunDataset.open(tmp_path)


def test_fields_outside_the_catalogue_are_indexed_by_grib_name(tmp_path, gfs_run):
    """A field the catalogue lacks is still usable, under shortName@typeOfLevel:level."""
    src = gfs_run / gfs_path(RUN, 3)
    lines = src.with_name(src.name + ".idx").read_text().splitlines()
    data = src.read_bytes()
    offsets = [int(line.split(":")[1]) for line in lines] + [len(data)]
    i = next(i for i, line in enumerate(lines) if ":PWAT:" in line)
    (tmp_path / "pwat.grib2").write_bytes(data[offsets[i]:offsets[i + 1]])
    with RunDataset.open(tmp_path) as ds:
        assert "pwat" in ds.variables()
        assert ds.field("pwat", 3).values.shape == (721, 1440)


# --------------------------------------------------------------------------- validate_grib


def test_validate_grib(icon_eu_run, gfs_run, tmp_path):
    assert validate_grib(_path(icon_eu_run, "t2m", 0)) == 1
    assert validate_grib(_path(icon_eu_run, "t2m", 0), {"shortName": "2t"}) == 1
    gfs = gfs_run / gfs_path(RUN, 6)
    n = len(gfs.with_name(gfs.name + ".idx").read_text().splitlines())
    assert validate_grib(gfs, {"shortName": "tp", "endStep": 6, "dataDate": "20261123"}) == n
    with pytest.raises(GribError, match=rf"{gfs}: none of its {n} GRIB message\(s\) has "
                                        r"shortName=snow"):
        validate_grib(gfs, {"shortName": "snow"})
    data = gfs.read_bytes()
    second = int(gfs.with_name(gfs.name + ".idx").read_text().splitlines()[1].split(":")[1])
    cases = {
        "truncated.grib2": (data[:-1000], "truncated"),
        "junk.grib2": (data[:second] + b"garbage!" * 4, f"no GRIB message at byte {second}"),
        "empty.grib2": (b"", "empty file"),
        "html.grib2": (b"<html>" * 10, "no GRIB message at byte 0"),
        "grib3.grib2": (b"GRIB\x00\x00\x40\x03" + b"\x00" * 60, "GRIB edition 3, not 1 or 2"),
    }
    for name, (content, match) in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(GribError, match=rf"{p}.*{match}|{match}.*{p}"):
            validate_grib(p)
    packed = tmp_path / "t.grib2.bz2"
    packed.write_bytes(bz2.compress(_path(icon_eu_run, "msl", 0).read_bytes()))
    assert validate_grib(packed, {"shortName": "prmsl"}) == 1
    with pytest.raises(GribError, match="no such file"):
        validate_grib(tmp_path / "missing.grib2")


# --------------------------------------------------------------------------- naming table


@pytest.mark.parametrize("short, level_type, level, expect", [
    ("2t", "heightAboveGround", 2, "t2m"), ("prmsl", "meanSea", 0, "msl"),
    ("msl", "meanSea", 0, "msl"), ("tp", "surface", 0, "tp"),
    ("10fg", "heightAboveGround", 10, "gust10"), ("i10fg", "heightAboveGround", 10, "gust10"),
    ("max_i10fg", "heightAboveGround", 10, "gust10"), ("gust", "surface", 0, "gust10"),
    ("tcc", "atmosphere", 0, "tcc"), ("CLCT", "surface", 0, "tcc"),
    ("cape", "surface", 0, "cape"), ("CAPE_ML", "unknown", 0, "cape"),
    ("10u", "heightAboveGround", 10, "u10"), ("10v", "heightAboveGround", 10, "v10"),
    ("u", "isobaricInhPa", 850, "u850"), ("t", "isobaricInhPa", 500, "t500"),
    ("gh", "isobaricInhPa", 1000, "gh1000"), ("z", "isobaricInhPa", 500, "gh500"),
    # GFS fields with the same shortName that are something else (GFS's LCDC is low cloud):
    ("tcc", "lowCloudLayer", 0, "lcc"), ("cape", "pressureFromGroundLayer", 18000, None),
    ("tp", "heightAboveGround", 2, None),
    # fields of the catalogue beyond the first fifteen:
    ("t", "surface", 0, "tsurf"), ("sp", "surface", 0, "sp"), ("2d", "heightAboveGround", 2,
                                                               "td2m"),
    ("r", "isobaricInhPa", 700, "r700"), ("sde", "surface", 0, "sd"),
])
def test_grib_identities_map_to_canonical_names(short, level_type, level, expect):
    from framecast.dataset.names import G, grib_name

    got = grib_name(short, level_type, level)
    assert (got[0] if got else None) == expect
    if expect:
        assert got[1] == (1.0 / G if short == "z" else 1.0)


@pytest.mark.parametrize("var, level, expect", [
    ("TMP", "2 m above ground", "t2m"), ("PRMSL", "mean sea level", "msl"),
    ("APCP", "surface", "tp"), ("GUST", "surface", "gust10"),
    ("TCDC", "entire atmosphere", "tcc"), ("CAPE", "surface", "cape"),
    ("UGRD", "10 m above ground", "u10"), ("HGT", "500 mb", "gh500"),
    ("TMP", "850 mb", "t850"), ("VGRD", "250 mb", "v250"),
    ("TCDC", "low cloud layer", None), ("LCDC", "low cloud layer", "lcc"), ("CAPE", "180-0 mb above ground", None),
    ("MSLET", "mean sea level", None), ("HGT", "surface", "orog"), ("RH", "700 mb", "r700"),
    ("HGT", "0C isotherm", "hzerocl"), ("DPT", "2 m above ground", "td2m"),
])
def test_wgrib2_inventory_names(var, level, expect):
    from framecast.dataset.names import idx_name

    assert idx_name(var, level) == expect


def test_accumulation_from_the_run_start_wins_over_buckets(tmp_path):
    """Real GFS files carry both 'N-M hour acc' buckets and '0-M hour acc' for tp."""
    from framecast.dataset.index import Entry, RunIndex

    index = RunIndex()
    index.add(Entry("tp", 9, tmp_path / "f", 100, 10, start_step=6), RUN)
    index.add(Entry("tp", 9, tmp_path / "f", 200, 10, start_step=0), RUN)
    index.add(Entry("tp", 9, tmp_path / "f", 300, 10, start_step=6), RUN)
    assert index.entries[("tp", 9)].offset == 200


def test_index_is_reused_until_a_file_changes(icon_eu_run, tmp_path, monkeypatch):
    """A render task opens the run once per product and region: the index is built once, and
    a file added (a step arriving) or changed is seen at the next open."""
    from framecast.dataset import index as index_mod

    step6 = f"_{RUN:%Y%m%d%H}_006_"
    run = _link_tree(icon_eu_run, tmp_path / "run", skip=lambda p: step6 in p.name)
    built: list[int] = []
    real = index_mod._build_index
    monkeypatch.setattr(index_mod, "_build_index", lambda files: built.append(1) or real(files))

    with RunDataset.open(run) as ds:
        steps = ds.steps
    with RunDataset.open(run) as again:
        assert again.steps == steps
    assert len(built) == 1  # the second open reused the index
    for p in icon_eu_run.rglob(f"*{step6}*"):  # a step arrives: its files are indexed
        target = run / p.relative_to(icon_eu_run)
        shutil.copyfile(p, target)
    with RunDataset.open(run) as grown:
        assert grown.steps == sorted([*steps, 6])
    assert len(built) == 2
    victim = _replace_with_copy(_path(run, "t2m", 0))  # truncated: checked again, refused
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(GribError):
        RunDataset.open(run)
    assert len(built) == 3
