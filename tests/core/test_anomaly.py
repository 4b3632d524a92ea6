"""Anomaly products: forecast minus the monthly climatology named in config, on every model.

Oracles are independent of the code under test: forecast values are read from the run's GRIB
files with ecCodes directly (``codes_grib_find_nearest``; ICON's cells from CLAT/CLON by
nearest distance), climatology values with xarray + cfgrib and interpolated bilinearly by
hand from the four surrounding grid nodes, the pixel of a place is cartopy's projection and
the colour matplotlib's ``BoundaryNorm`` with the product's palette (``tests/oracles.py``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from oracles import fill_rgb, map_pixel

from framecast.catalog import load_models
from framecast.errors import ClimatologyError, DataError
from framecast.field import Field
from framecast.products import ContourLayer, FilledLayer, load_catalog
from framecast.render.frame import MapFrame
from framecast.render.runner import load_fields

CATALOG = load_catalog()
MODELS = load_models()
#: 31 January 00 UTC: +24 h is a February frame, +0 a January one.
RUN = datetime(2026, 1, 31, 0, tzinfo=UTC)
STEP = 24
SIZE = (520, 420)


@pytest.fixture(scope="module")
def climatology(tmp_path_factory) -> Path:
    from framecast.sampledata.climatology import generate_climatology

    return generate_climatology(tmp_path_factory.mktemp("clim") / "monthly_means.grib2")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    from framecast.sampledata import generate_run

    out = {}
    for model in MODELS:
        d = tmp_path_factory.mktemp(f"anom-{model}")
        generate_run(model, RUN, [0, STEP], d, variables=["t2m", "msl", "gh500"],
                     **({"icon_resolution": 40} if model == "icon" else {}))
        out[model] = d
    return out


# --- oracles ----------------------------------------------------------------------------------

def grib_value(run: Path, model: str, short_name: str, step: int, lat: float, lon: float
               ) -> tuple[float, float, float]:
    """(value, lat, lon) of the grid point nearest to (lat, lon), read with ecCodes."""
    import eccodes

    def messages(path: Path):
        with open(path, "rb") as fh:
            while (h := eccodes.codes_grib_new_from_file(fh)) is not None:
                yield h

    if model == "gfs":
        files = list(run.rglob(f"gfs.t00z.pgrb2.0p25.f{step:03d}"))
    else:
        suffix = {"2t": "T_2M", "prmsl": "PMSL"}[short_name]
        files = list(run.rglob(f"*_{step:03d}_{suffix}.grib2"))
    assert len(files) == 1, files
    for h in messages(files[0]):
        try:
            if eccodes.codes_get(h, "shortName") not in (short_name, "pmsl" if short_name ==
                                                           "prmsl" else short_name):
                continue
            if model != "icon":
                (near,) = [n for n in eccodes.codes_grib_find_nearest(h, lat, lon)][:1]
                return float(near["value"]), float(near["lat"]), float(near["lon"])
            values = eccodes.codes_get_values(h)
        finally:
            eccodes.codes_release(h)
        coords = {}
        for name in ("CLAT", "CLON"):
            (path,) = run.rglob(f"*_{name}.grib2")
            (hc,) = list(messages(path))
            coords[name] = eccodes.codes_get_values(hc)
            eccodes.codes_release(hc)
        la, lo = np.radians(coords["CLAT"]), np.radians(coords["CLON"])
        cos_d = (np.sin(la) * np.sin(np.radians(lat))
                 + np.cos(la) * np.cos(np.radians(lat)) * np.cos(lo - np.radians(lon)))
        i = int(np.argmax(cos_d))
        return float(values[i]), float(coords["CLAT"][i]), float(coords["CLON"][i])
    raise AssertionError(f"{short_name} not in {files[0]}")


_CLIM: dict = {}


def clim_value(path: Path, short_name: str, month: int, lat: float, lon: float) -> float:
    """Bilinear interpolation by hand of the month's mean, read with xarray + cfgrib."""
    import xarray as xr

    key = (str(path), short_name)
    if key not in _CLIM:
        ds = xr.open_dataset(path, engine="cfgrib", backend_kwargs={
            "filter_by_keys": {"shortName": short_name}, "indexpath": ""})
        _CLIM[key] = ds[next(iter(ds.data_vars))].load()
    da = _CLIM[key]
    da = da.isel(time=int(np.flatnonzero(da["time"].dt.month.values == month)[0]))
    lats, lons = da["latitude"].values, da["longitude"].values  # 90..-90, 0..359
    x = lon % 360.0
    i0 = int(np.floor(x - lons[0]))
    j0 = int(np.floor(lats[0] - lat))
    fx, fy = x - lons[i0], (lats[j0] - lat) / (lats[j0] - lats[j0 + 1])
    v = da.values
    i1 = (i0 + 1) % lons.size
    return float((1 - fy) * ((1 - fx) * v[j0, i0] + fx * v[j0, i1])
                 + fy * ((1 - fx) * v[j0 + 1, i0] + fx * v[j0 + 1, i1]))


def oracle_anomaly(run: Path, model: str, clim: Path, month: int, lat: float, lon: float
                   ) -> tuple[float, float, float]:
    t, glat, glon = grib_value(run, model, "2t", STEP, lat, lon)
    return t - clim_value(clim, "2t", month, glat, glon), glat, glon


def bin_of(levels: np.ndarray, value: float) -> int:
    return int(np.searchsorted(levels, value))


# --- the chart ---------------------------------------------------------------------------------

@pytest.mark.parametrize("model", list(MODELS))
def test_anomaly_colour_is_forecast_minus_climatology(runs, climatology, model):
    from framecast.dataset import RunDataset

    product = replace(CATALOG.product("t2m_anomaly"), size=SIZE)
    region = CATALOG.region(MODELS[model].regions[0])
    fill = next(x for x in product.layers if isinstance(x, FilledLayer))
    levels = np.asarray(fill.levels)
    regional = region.bounds is not None
    if regional:
        cands = [(la, lo) for la in np.arange(42.0, 58.0, 2.5) for lo in np.arange(-2.0, 26, 4)]
        d = 0.4
    else:
        cands = [(la, lo) for la in np.arange(-40.0, 61, 10) for lo in np.arange(-160.0, 161, 20)]
        d = 2.0
    chosen = None
    for lat, lon in cands:  # a place whose anomaly is well inside one class, around it too
        value, glat, glon = oracle_anomaly(runs[model], model, climatology, 2, lat, lon)
        k = bin_of(levels, value)
        if not 0 < k < levels.size:
            continue
        width = levels[k] - levels[k - 1]
        if min(value - levels[k - 1], levels[k] - value) < 0.25 * width:
            continue
        around = [oracle_anomaly(runs[model], model, climatology, 2, glat + a, glon + b)[0]
                  for a, b in ((d, 0), (-d, 0), (0, d), (0, -d))]
        if all(bin_of(levels, v) == k for v in around):
            chosen = (value, glat, glon)
            break
    assert chosen is not None, "no place with a clear anomaly class"
    value, lat, lon = chosen
    with RunDataset.open(runs[model], model=model, climatology=climatology) as ds:
        fields = load_fields(ds, product, STEP)
    assert fields["t2m_anomaly"].valid_time.month == 2
    # Keep isobars off the checked pixels (between two levels near the place); the anomaly
    # field itself is what the run and the climatology give.
    iso = next(x for x in product.layers if isinstance(x, ContourLayer))
    f = fields[iso.field]
    lats, lons = f.grid.lats, f.grid.lons
    if f.grid.kind == "regular":
        lons, lats = np.meshgrid(lons, lats)
    near = np.hypot(lats - lat, ((lons - lon + 180) % 360 - 180) * np.cos(np.radians(lat)))
    mid = float((iso.levels[0] + iso.levels[1]) / 2)
    fields[iso.field] = replace(f, values=np.where(near < 4 * d, np.float32(mid), f.values))
    frame = MapFrame(product, region)
    img = frame.render(fields, model=model, run_time=RUN, step=STEP)
    r, c = map_pixel(region, frame.map_px, img.shape[0], lon, lat)
    got = np.median(img[r - 1:r + 2, c - 1:c + 2, :3].reshape(-1, 3), axis=0)
    want = fill_rgb(fill, value)
    assert np.abs(got - want).max() <= 3, (model, lat, lon, value, got, want)


# --- valid month, units, errors ----------------------------------------------------------------

def test_month_is_the_valid_times_not_the_runs(runs, climatology):
    """A 31 January run: +0 subtracts January's mean, +24 h February's."""
    from framecast.dataset import RunDataset

    run = runs["icon-eu"]
    # places where January's and February's means differ (by the oracle), so the check tells
    # the two months apart
    places = [(la, lo) for la in (35.0, 45.0, 55.0, 65.0) for lo in (-15.0, 0.0, 15.0, 30.0)
              if abs(clim_value(climatology, "2t", 2, la, lo)
                     - clim_value(climatology, "2t", 1, la, lo)) > 0.3]
    assert len(places) >= 3
    with RunDataset.open(run, model="icon-eu", climatology=climatology) as ds:
        for step, month, other in ((0, 1, 2), (STEP, 2, 1)):
            a = ds.field("t2m_anomaly", step)
            assert a.valid_time.month == month and a.units == "K"
            for lat, lon in places:
                t, glat, glon = grib_value(run, "icon-eu", "2t", step, lat, lon)
                i = int(np.argmin(np.abs(a.grid.lats - glat)))
                j = int(np.argmin(np.abs(a.grid.lons - glon)))
                right = t - clim_value(climatology, "2t", month, glat, glon)
                wrong = t - clim_value(climatology, "2t", other, glat, glon)
                assert abs(a.values[i, j] - right) < 0.01, (step, lat, lon)
                assert abs(a.values[i, j] - wrong) > 0.1, (step, lat, lon)


def test_geopotential_climatology_is_height_in_the_right_units(tmp_path, runs):
    """An ERA5-style file with geopotential (z, m2 s-2) serves gh500 as z / g; the anomaly in
    dam is (forecast - climatology) / 10, both in metres (pint)."""
    import eccodes

    from framecast.dataset import RunDataset
    from framecast.sampledata.climatology import monthly_means

    g = 9.80665
    lat = np.linspace(90.0, -90.0, 73)
    lon = np.arange(144) * 2.5
    glon, glat = np.meshgrid(lon, lat)
    gh = monthly_means("gh500", 2, glat, glon)
    h = eccodes.codes_grib_new_from_samples("regular_ll_pl_grib2")
    for key, v in {"Ni": 144, "Nj": 73, "latitudeOfFirstGridPointInDegrees": 90.0,
                   "latitudeOfLastGridPointInDegrees": -90.0,
                   "longitudeOfFirstGridPointInDegrees": 0.0,
                   "longitudeOfLastGridPointInDegrees": 357.5,
                   "iDirectionIncrementInDegrees": 2.5, "jDirectionIncrementInDegrees": 2.5,
                   "centre": "ecmf", "shortName": "z", "level": 500, "dataDate": 19910201,
                   "bitsPerValue": 24}.items():
        eccodes.codes_set(h, key, v)
    eccodes.codes_set_values(h, (gh * g).ravel())
    assert eccodes.codes_get(h, "units") == "m**2 s**-2"
    path = tmp_path / "era5_z500_feb.grib"
    path.write_bytes(eccodes.codes_get_message(h))
    eccodes.codes_release(h)
    with RunDataset.open(runs["gfs"], model="gfs", climatology=path) as ds:
        anom = ds.field("gh500_anomaly", STEP)
        fc = ds.field("gh500", STEP)
    assert anom.units == "gpm"
    i, j = 160, 40  # 50 N, 10 E on GFS 0.25 deg (north to south, 0..359.75)
    assert fc.grid.lats[i] == 50.0 and fc.grid.lons[j] == 10.0
    want = fc.values[i, j] - monthly_means("gh500", 2, np.array(50.0), np.array(10.0))
    assert abs(anom.values[i, j] - want) < 0.05
    assert abs(anom.to("dam").values[i, j] - want / 10) < 0.005


def test_units_go_through_pint(climatology):
    """A forecast in degC against a climatology in K: the anomaly is the same in K, and an
    anomaly spec in degC (a difference with an offset) is refused."""
    from metpy.units import units

    from framecast.variables import load_catalogue
    from framecast.variables.derived import anomaly

    spec = load_catalogue().derived("t2m_anomaly")
    grid_lats, grid_lons = np.array([50.0]), np.array([10.0, 11.0])
    from framecast.field import Grid

    grid = Grid("regular", grid_lats, grid_lons)

    class Source:
        def field(self, name, step):
            return Field("t2m", "degC", np.array([[3.0, -2.0]], np.float32), grid, RUN, step,
                         RUN, {})

        def climate(self, name, like):
            return Field("t2m", "K", np.array([[274.15, 274.15]], np.float32), grid, RUN, 0,
                         RUN, {"source": "x"})

    got = anomaly(spec, 0, Source()).values
    want = (units.Quantity(np.array([3.0, -2.0]), "degC").to("K")
            - units.Quantity(274.15, "K")).to("K").m
    np.testing.assert_allclose(got[0], want, atol=1e-4)
    with pytest.raises(DataError, match="offset"):
        anomaly(replace(spec, units="degC"), 0, Source())


def test_climatology_errors_name_file_variable_and_month(tmp_path, runs):
    from framecast.dataset import RunDataset
    from framecast.sampledata.climatology import generate_climatology

    run = runs["icon-eu"]
    missing = tmp_path / "nowhere" / "means.grib2"
    with pytest.raises(ClimatologyError, match=f"{missing}.*does not exist"):
        RunDataset.open(run, model="icon-eu", climatology=missing)
    junk = tmp_path / "junk.grib2"
    junk.write_bytes(b"this is not GRIB at all" * 10)
    with pytest.raises(ClimatologyError, match=f"{junk} is not readable GRIB"):
        RunDataset.open(run, model="icon-eu", climatology=junk)
    january_t2m = generate_climatology(tmp_path / "jan.grib2", variables=["t2m"], months=[1])
    with RunDataset.open(run, model="icon-eu", climatology=january_t2m) as ds:
        assert ds.field("t2m_anomaly", 0).valid_time.month == 1
        with pytest.raises(ClimatologyError, match=r"jan\.grib2 has no February \(month 2\) "
                                                   r"for 't2m' \(months present: January\)"):
            ds.field("t2m_anomaly", STEP)
        with pytest.raises(ClimatologyError, match=r"jan\.grib2 has no variable 'gh500' "
                                                   r"\(it holds: t2m\)"):
            ds.field("gh500_anomaly", 0)
        assert not ds.has("gh500_anomaly", 0) and ds.has("t2m_anomaly", 0)
    with RunDataset.open(run, model="icon-eu") as ds:  # none given: a clear error, not a crash
        assert "t2m_anomaly" not in ds.variables()
        with pytest.raises(ClimatologyError, match="no climatology file was given for icon-eu"):
            ds.field("t2m_anomaly", 0)


def test_climatology_config_is_validated(tmp_path):
    import yaml

    from framecast.catalog import DEFAULT_MODELS_FILE
    from framecast.errors import SpecError

    doc = yaml.safe_load(DEFAULT_MODELS_FILE.read_text())
    doc["models"]["gfs"]["climatology"] = {"path": "c.grib2", "fields": ["t2m", "t2m_anomaly"]}
    bad = tmp_path / "models.yaml"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=r"models\.gfs\.climatology\.fields: \['t2m_anomaly'\] "
                                        "are not base variables"):
        load_models(bad)
    doc["models"]["gfs"]["climatology"] = {"path": "climatology/monthly_means.grib2",
                                           "fields": ["t2m", "gh500"]}
    bad.write_text(yaml.safe_dump(doc))
    spec = load_models(bad)["gfs"].climatology
    assert spec.fields == ("t2m", "gh500")
    assert spec.resolve(Path("/srv/data")) == Path("/srv/data/climatology/monthly_means.grib2")
    assert replace(spec, path="/abs/c.grib2").resolve(Path("/srv")) == Path("/abs/c.grib2")


def test_cli_writes_a_climatology_cfgrib_reads(tmp_path, capsys):
    import xarray as xr

    from framecast.cli import main

    out = tmp_path / "clim" / "monthly_means.grib2"
    assert main(["sample-data", "--climatology", str(out)]) == 0
    assert "12 monthly means" in capsys.readouterr().out
    for short, units in (("2t", "K"), ("gh", "gpm"), ("t", "K"), ("prmsl", "Pa")):
        ds = xr.open_dataset(out, engine="cfgrib", backend_kwargs={
            "filter_by_keys": {"shortName": short}, "indexpath": ""})
        da = ds[next(iter(ds.data_vars))]
        assert da.attrs["units"] == units
        assert sorted(da["time"].dt.month.values.tolist()) == list(range(1, 13))
        assert da.shape == (12, 181, 360)
    assert main(["sample-data", "--model", "icon"]) == 2  # a run needs --run and --out
    assert "--model, --run and --out are needed" in capsys.readouterr().err
