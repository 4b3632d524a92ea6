"""Model catalog: real upstream names, schedules, run-time mapping, batching and chunking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import yaml

from framecast.catalog import (
    batches,
    completion_files,
    latest_complete_run,
    load_models,
    needed_variables,
    parse_duration,
    parse_steps,
    render_chunks,
    run_files,
    run_time_for,
)
from framecast.errors import SpecError
from framecast.sampledata import VARIABLES, dwd_path, gfs_path, model_steps

RUN = datetime(2026, 11, 23, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def models():
    return load_models()


def test_shipped_catalog_has_three_models_with_real_step_lists(models):
    assert set(models) == {"icon-eu", "icon", "gfs"}
    for name, spec in models.items():
        assert list(spec.steps) == model_steps(name)
        assert spec.cycles == (0, 6, 12, 18)


def test_dwd_paths_match_the_real_layout(models):
    spec = models["icon-eu"]
    files = run_files(spec, RUN, ["t2m", "gh500"], steps=[7])
    got = {f.url_path for f in files}
    assert got == {
        "06/t_2m/icon-eu_europe_regular-lat-lon_single-level_2026112306_007_T_2M.grib2.bz2",
        "06/fi/icon-eu_europe_regular-lat-lon_pressure-level_2026112306_007_500_FI.grib2.bz2",
    }
    # identical to what the sample generator (which mimics DWD) writes
    for v in ("t2m", "gh500"):
        assert str(dwd_path("icon-eu", VARIABLES[v], RUN, 7, bz2_suffix=True)) in got
    assert all(not f.local_path.endswith(".bz2") for f in files)
    assert files[0].expect == {"dataDate": "20261123", "dataTime": "600", "endStep": "7"}


def test_icon_global_includes_grid_coordinates(models):
    files = run_files(models["icon"], RUN, ["t2m"], steps=[0])
    paths = [f.url_path for f in files]
    assert paths[:2] == [
        "06/clat/icon_global_icosahedral_time-invariant_2026112306_CLAT.grib2.bz2",
        "06/clon/icon_global_icosahedral_time-invariant_2026112306_CLON.grib2.bz2",
    ]
    assert paths[2] == "06/t_2m/icon_global_icosahedral_single-level_2026112306_000_T_2M.grib2.bz2"


def test_gfs_one_file_per_step_with_idx_fields(models):
    files = run_files(models["gfs"], RUN, ["t2m", "msl", "tp"], steps=[0, 3])
    assert [f.url_path for f in files] == [str(gfs_path(RUN, 0)), str(gfs_path(RUN, 3))]
    assert files[0].url_path == "gfs.20261123/06/atmos/gfs.t06z.pgrb2.0p25.f000"
    # NCEP has no accumulated precipitation at +0
    assert "APCP:surface" not in files[0].fields and files[0].messages == 2
    assert set(files[1].fields) == {"TMP:2 m above ground", "PRMSL:mean sea level", "APCP:surface"}


def test_schedule_fires_delay_after_each_cycle(models):
    spec = models["icon-eu"]
    assert spec.delay == timedelta(hours=2)
    assert spec.cron() == "0 2,8,14,20 * * *"
    assert models["gfs"].cron() == "30 3,9,15,21 * * *"


@pytest.mark.parametrize(("logical", "run"), [
    (datetime(2026, 11, 23, 6, 0, tzinfo=UTC), datetime(2026, 11, 23, 6, tzinfo=UTC)),
    (datetime(2026, 11, 23, 5, 59, tzinfo=UTC), datetime(2026, 11, 23, 0, tzinfo=UTC)),
    (datetime(2026, 11, 23, 2, 0), datetime(2026, 11, 23, 0, tzinfo=UTC)),  # naive = UTC
])
def test_logical_date_maps_to_its_cycle(models, logical, run):
    assert run_time_for(models["icon-eu"], logical) == run


@pytest.mark.parametrize(("now", "run"), [
    (datetime(2026, 11, 23, 8, 0, tzinfo=UTC), datetime(2026, 11, 23, 6, tzinfo=UTC)),
    (datetime(2026, 11, 23, 7, 59, tzinfo=UTC), datetime(2026, 11, 23, 0, tzinfo=UTC)),
    (datetime(2026, 11, 23, 1, 59, tzinfo=UTC), datetime(2026, 11, 22, 18, tzinfo=UTC)),
])
def test_latest_arriving_run_allows_for_the_delay(models, now, run):
    assert latest_complete_run(models["icon-eu"], now) == run


def test_needed_variables_follow_the_products(models):
    spec = models["icon-eu"]
    assert set(needed_variables(spec)) >= {"t2m", "msl", "tp", "gust10", "tcc", "cape",
                                           "gh500", "t500"}
    from dataclasses import replace
    only = replace(spec, products=("t2m_mslp",))
    assert needed_variables(only) == ("msl", "t2m")


def test_batches_and_chunks_put_early_steps_first(models):
    spec = models["icon-eu"]
    files = run_files(spec, RUN, ["t2m", "msl"], steps=[0, 1, 2, 3, 4])
    b = batches(files, 3)
    assert [len(x) for x in b] == [3, 3, 3, 1]
    assert [d["step"] for d in b[0]] == [0, 0, 1]
    chunks = render_chunks(["a", "b"], ["europe"], range(0, 5), 2)
    assert [c["label"] for c in chunks] == [
        "a/europe/+000..+001", "b/europe/+000..+001", "a/europe/+002..+003",
        "b/europe/+002..+003", "a/europe/+004..+004", "b/europe/+004..+004"]
    last = completion_files(spec, files)
    assert {f.step for f in last} == {4} and len(last) == 2


def test_parsers_name_the_bad_value():
    assert parse_steps([[0, 6, 3], 7], "x") == (0, 3, 6, 7)
    assert parse_duration("3h30m", "x") == timedelta(hours=3, minutes=30)
    with pytest.raises(SpecError, match="models.x.delay.*'soon'"):
        parse_duration("soon", "models.x.delay")
    with pytest.raises(SpecError, match=r"steps\[1\].*\[5, 1, 1\]"):
        parse_steps([0, [5, 1, 1]], "steps")


@pytest.mark.parametrize(("patch", "message"), [
    ({"layout": "ecmwf"}, "layout: expected one of"),
    ({"variables": {"t2m": {"dir": "t_2m"}}}, "variables.t2m: unknown field"),
    ({"colour": 1}, "unknown field"),
    ({"cycles": [0, 25]}, "cycles"),
    ({"sensor": {"mode": "sometimes"}}, "sensor.mode"),
])
def test_malformed_catalog_names_file_and_field(tmp_path, patch, message):
    doc = yaml.safe_load((load_models.__globals__["DEFAULT_MODELS_FILE"]).read_text())
    doc["models"]["icon-eu"].update(patch)
    p = tmp_path / "models.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError, match=message) as exc:
        load_models(p)
    assert str(p) in str(exc.value) and "icon-eu" in str(exc.value)


def test_unknown_product_is_a_clear_error(models):
    from dataclasses import replace

    with pytest.raises(SpecError, match="unknown product 'nope'"):
        needed_variables(replace(models["gfs"], products=("nope",)))


def test_streaming_settings_are_read_and_checked(tmp_path):
    """latest_when, lookback_hours and publish_windows: values, defaults, and refusals that
    name the field."""
    from framecast.catalog import DEFAULT_MODELS_FILE, load_models, pipeline_chunks

    doc = yaml.safe_load(DEFAULT_MODELS_FILE.read_text())
    m = doc["models"]["icon-eu"]
    m.update({"steps": [0, 1, 2, 3, 4, 5, 6, 9], "latest_when": "first_chunk",
              "chunk_size": 3, "lookback_hours": 2,
              "publish_windows": [{"steps": 24, "within": "2h30m"}, {"steps": 6, "within": "2h"}]})
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(doc))
    spec = load_models(path)["icon-eu"]
    assert spec.latest_after_step() == 2  # the first chunk is +0..+2
    assert [(w.upto_step, w.within) for w in spec.publish_windows] == [
        (6, timedelta(hours=2)), (24, timedelta(hours=2, minutes=30))]
    chunks = pipeline_chunks(spec)
    assert [c["label"] for c in chunks] == ["+000..+002", "+003..+005", "+006..+009"]
    # a chunk also fetches the 2 h before it (windowed charts), never later steps
    assert [c["inputs"] for c in chunks] == [[0, 1, 2], [1, 2, 3, 4, 5], [4, 5, 6, 9]]
    assert load_models(DEFAULT_MODELS_FILE)["gfs"].latest_after_step() == 24  # default

    for bad, match in ((("latest_when", "first_day"), r"icon-eu\.latest_when: expected"),
                       (("publish_windows", [{"steps": 24}]), r"publish_windows\[0\]")):
        m[bad[0]] = bad[1]
        path.write_text(yaml.safe_dump(doc))
        with pytest.raises(SpecError, match=match):
            load_models(path)
        m.pop(bad[0])
