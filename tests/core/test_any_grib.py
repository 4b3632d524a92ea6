"""Any GRIB a forecaster has: GRIB1/2, scanning modes, bitmaps, several analysis times,
Lambert grids, centre labels, truncated files, GRIB names, ``framecast plot``.

Files are written by ecCodes in each test; values are checked against cfgrib (the
reference decoder) and positions against cartopy's projection of known points.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from siblings import load_sibling

from framecast.cli import main
from framecast.dataset import RunDataset
from framecast.errors import DataError, GribError


def _sibling(name: str):
    """A helper module beside this file (see tests/siblings.py)."""
    return load_sibling(__file__, name)


gc = _sibling("gribcases")
hot_pixel_offset = _sibling("placement").hot_pixel_offset

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
LATS = np.arange(30.0, 70.01, 0.25)
LONS = np.arange(-20.0, 40.01, 0.25)
LO, LA = np.meshgrid(LONS, LATS)
WARM = gc.warm_spot(LA, LO)


def _write(path: Path, *messages: bytes) -> Path:
    path.write_bytes(b"".join(messages))
    return path


def _cfgrib(path: Path, **flt) -> xr.Dataset:
    return xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": "",
                                                                  "filter_by_keys": flt})


@pytest.mark.parametrize("edition", [1, 2])
@pytest.mark.parametrize("north_first", [True, False], ids=["scan0", "scan64"])
def test_grib1_and_grib2_in_both_scanning_directions(tmp_path, edition, north_first):
    path = _write(tmp_path / f"t2m.grib{edition}",
                  gc.regular(WARM, LATS, LONS, edition=edition, run=RUN, step=6,
                             north_first=north_first))
    with RunDataset.open(path) as ds:
        assert ds.model == "ECMWF" and ds.steps == [6] and "t2m" in ds.variables()
        f = ds.field("t2m", 6)
        ref = _cfgrib(path)["t2m"]
        # cfgrib's own coordinates and values, point by point
        lat = np.asarray(ref.latitude)
        rows = np.searchsorted(np.asarray(f.grid.lats) if f.grid.lats[0] < f.grid.lats[-1]
                               else -np.asarray(f.grid.lats), lat if f.grid.lats[0] <
                               f.grid.lats[-1] else -lat)
        np.testing.assert_allclose(f.values[rows], ref.values, atol=0.01)
        i = int(np.argmin(np.abs(f.grid.lats - 48.0)))
        j = int(np.argmin(np.abs(f.grid.lons - 11.0)))
        assert f.values[i, j] == pytest.approx(310.0, abs=0.05)  # the warm spot's centre
        assert np.unravel_index(np.argmax(f.values), f.values.shape) == (i, j)


def test_bitmap_points_are_missing_not_9999(tmp_path):
    gap = (LA > 60) & (LO > 20)
    path = _write(tmp_path / "gap.grib2", gc.regular(WARM, LATS, LONS, run=RUN, missing=gap))
    with RunDataset.open(path) as ds:
        f = ds.field("t2m", 0)
    rows = np.arange(LATS.size)[::-1] if f.grid.lats[0] > f.grid.lats[-1] else np.arange(LATS.size)
    assert np.array_equal(np.isnan(f.values), gap[rows])
    assert np.nanmax(f.values) < 320


def test_two_analysis_times_give_one_frame_per_valid_time(tmp_path):
    """ERA5-style: one file, analyses at 00 and 12 UTC (step 0) and a 6 h forecast from 00."""
    run12 = RUN.replace(hour=12)
    path = _write(tmp_path / "era.grib",
                  gc.regular(WARM, LATS, LONS, run=RUN, step=0),
                  gc.regular(WARM + 1, LATS, LONS, run=RUN, step=6),
                  gc.regular(WARM + 2, LATS, LONS, run=run12, step=0))
    with RunDataset.open(path) as ds:
        assert ds.run_time == RUN and ds.steps == [0, 6, 12]
        f12 = ds.field("t2m", 12)
        assert f12.valid_time == run12 and f12.attrs["analysis_time"] == run12.isoformat()
        assert np.nanmax(f12.values) == pytest.approx(312.0, abs=0.05)
    out = tmp_path / "png"
    assert main(["plot", str(path), "--field", "2t", "--out", str(out), "--region",
                 "europe"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == [
        "2t_europe_202611230000.png", "2t_europe_202611230600.png",
        "2t_europe_202611231200.png"]


def test_files_of_several_model_runs_are_still_refused(tmp_path, icon_eu_run):
    """Publisher-named files of different runs in one directory are an operator mistake."""
    from framecast.sampledata import generate_run

    generate_run("icon-eu", RUN.replace(hour=6), [0], tmp_path, variables=["t2m"])
    for p in (icon_eu_run / "00" / "pmsl").iterdir():
        (tmp_path / "00" / "pmsl").mkdir(parents=True, exist_ok=True)
        (tmp_path / "00" / "pmsl" / p.name).symlink_to(p)
    with pytest.raises(DataError, match="several runs"):
        RunDataset.open(tmp_path)


def test_source_label_comes_from_the_grib_centre(tmp_path):
    ncep = tmp_path / "ncep"
    ncep.mkdir()
    _write(ncep / "analysis.grib2",
           gc.regular(WARM, LATS, LONS, run=RUN, centre="kwbc"),
           gc.regular(101300 + 0 * WARM, LATS, LONS, run=RUN, centre="kwbc",
                      short_name="prmsl", type_of_level="meanSea"))
    out = tmp_path / "out"
    assert main(["render", "--data", str(ncep), "--out", str(out), "--product", "t2m_mslp",
                 "--region", "europe", "--workers", "1", "--no-progress"]) == 0
    assert list((out / "NCEP" / "2026112300" / "t2m_mslp" / "europe").glob("*.png"))
    assert not (out / "icon-eu").exists()


def test_lambert_grid_renders_with_the_spot_where_cartopy_puts_it(tmp_path):
    path = _write(tmp_path / "arome.grib2", gc.lambert(180, 140, run=RUN))
    with RunDataset.open(path) as ds:
        assert ds.model == "Meteo-France"
        f = ds.field("t2m", 0)
        assert f.grid.kind == "unstructured" and f.values.shape == (180 * 140,)
    assert hot_pixel_offset(path, "t2m", "germany", 11.0, 48.0) <= 3.0


def test_unsupported_grid_names_the_grid_type_and_file(tmp_path):
    from framecast.dataset.grib import eccodes

    h = eccodes.codes_grib_new_from_samples("sh_ml_grib2")
    try:
        msg = eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)
    path = _write(tmp_path / "spectral.grib2", msg)
    with pytest.raises(GribError, match=rf"{path}: .*on a 'sh' grid, which framecast cannot "
                                        r"draw"):
        RunDataset.open(path)


def test_truncated_message_names_file_and_byte(tmp_path):
    one = gc.regular(WARM, LATS, LONS, run=RUN)
    for edition, data in ((2, one), (1, gc.regular(WARM, LATS, LONS, edition=1, run=RUN))):
        path = _write(tmp_path / f"cut{edition}.grib", data + data[: len(data) // 3])
        with pytest.raises(GribError, match=rf"{path}: truncated: message at byte {len(data)}"):
            RunDataset.open(path)


def test_any_grib_field_by_short_name_with_header_units(tmp_path):
    path = _write(tmp_path / "sfc.grib2",
                  gc.regular(WARM, LATS, LONS, run=RUN, short_name="skt",
                             type_of_level="surface"),
                  gc.regular(WARM - 5, LATS, LONS, run=RUN, short_name="2d"),
                  gc.regular(WARM * 0 + 70, LATS, LONS, run=RUN, short_name="r",
                             type_of_level="isobaricInhPa", level=700),
                  gc.regular(WARM * 0 + 50, LATS, LONS, run=RUN, short_name="r",
                             type_of_level="isobaricInhPa", level=500))
    with RunDataset.open(path) as ds:
        skt = ds.field("skt", 0)
        assert skt.units == "K" and np.nanmax(skt.values) == pytest.approx(310, abs=0.05)
        assert ds.field("skt@surface:0", 0).values is skt.values
        assert ds.field("2d", 0).name == "td2m"
        assert float(np.nanmean(ds.field("r@isobaricInhPa:700", 0).values)) == \
            pytest.approx(70, abs=0.01)
        assert float(np.nanmean(ds.field("r500", 0).values)) == pytest.approx(50, abs=0.01)
        with pytest.raises(DataError, match=r"'sktt'.*did you mean.*skt|'sktt'"):
            ds.field("sktt", 0)
    out = tmp_path / "png"
    assert main(["plot", str(path), "--field", "skt", "--out", str(out)]) == 0
    (png,) = out.glob("skt_data_*.png")
    with Image.open(png) as im:
        assert im.size == (1000, 800)
    assert hot_pixel_offset(path, "skt", "europe", 11.0, 48.0) <= 3.0
