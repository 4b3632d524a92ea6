"""Whole DAG runs (``airflow dags test`` in its own process) against the real local upstream.

Each test has its own AIRFLOW_HOME with a SQLite metadata DB, its own data/publish folders and
its own upstream server serving generated files in the model's real layout.
"""

from __future__ import annotations

import bz2
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import pytest
from PIL import Image

from framecast.catalog import run_files
from framecast.products import load_catalog
from framecast.records import read_records
from framecast.upstream import UpstreamServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)  # what conftest.SampleRuns generates
RUN_ID = "2026112300"
STEPS = [0, 1, 2, 3]
# a scheduled or backfilled DAG run's logical date is the model run time
LOGICAL = dict.fromkeys(("icon-eu", "icon", "gfs"), "2026-11-23T00:00:00+00:00")


def expected_frames(region: str, run: datetime = RUN, steps=STEPS) -> set[str]:
    product = load_catalog().product("t2m_mslp")
    return {f"t2m_mslp/{region}/" + product.format_filename(region=region, model="m", run=run,
                                                            step=s) for s in steps}


def assert_ok(proc) -> None:
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])


#: Candidate places: a lattice over the open sea (no coastline, border or lake within a
#: degree and a half, by Natural Earth 50m), where the fill shows plainly.
LATTICE = {"europe": (np.arange(-18.0, 44.0, 2.5), np.arange(34.0, 67.0, 2.5)),
           "global": (np.arange(-175.0, 180.0, 7.5), np.arange(-55.0, 56.0, 7.5))}
#: Places closer than this (pixels) to an isobar (its line or label) or to a colour band's edge
#: (the 3x3 patch checked) are not checked.
ISOBAR_PX, EDGE_PX = 14.0, 3.0


@cache
def _open_sea(region: str) -> list[tuple[float, float]]:
    import cartopy.io.shapereader as shpreader
    from shapely.geometry import Point
    from shapely.ops import unary_union
    from shapely.prepared import prep

    shapes = unary_union([g for name in ("land", "lakes") for g in shpreader.Reader(
        shpreader.natural_earth(resolution="50m", category="physical", name=name)).geometries()])
    near = prep(shapes)
    lons, lats = LATTICE[region]
    return [(float(lo), float(la)) for la in lats for lo in lons
            if not near.intersects(Point(lo, la).buffer(1.5))]


def _decode(path) -> dict[str, dict]:
    """Every message of a GRIB file by ecCodes ``shortName``: values and, on regular grids,
    the latitudes/longitudes of the rows/columns."""
    import eccodes

    out = {}
    with open(path, "rb") as fh:
        while (h := eccodes.codes_grib_new_from_file(fh)) is not None:
            try:
                msg = {"values": np.asarray(eccodes.codes_get_values(h), float)}
                if eccodes.codes_get(h, "gridType") == "regular_ll":
                    ni, nj = eccodes.codes_get(h, "Ni"), eccodes.codes_get(h, "Nj")
                    lats = np.asarray(eccodes.codes_get_array(h, "latitudes"), float)
                    lons = np.asarray(eccodes.codes_get_array(h, "longitudes"), float)
                    msg.update(values=msg["values"].reshape(nj, ni), lats=lats[::ni],
                               lons=lons[:ni])
                out[eccodes.codes_get(h, "shortName")] = msg
            finally:
                eccodes.codes_release(h)
    return out


def _interpolator(msg: dict, cells: dict | None):
    """Linear interpolation of a decoded field at (lon, lat) by scipy: bilinear on a regular
    grid, barycentric on the Delaunay triangulation of ICON's cell centres (lon/lat plane)."""
    from scipy.interpolate import LinearNDInterpolator, RegularGridInterpolator

    if "lats" in msg:
        lats, values = msg["lats"], msg["values"]
        if lats[0] > lats[-1]:
            lats, values = lats[::-1], values[::-1]
        f = RegularGridInterpolator((lats, msg["lons"]), values)
        lon0 = msg["lons"][0]
        return lambda lon, lat: float(f([[lat, (lon - lon0) % 360.0 + lon0]])[0])
    f = LinearNDInterpolator(np.column_stack([cells["lon"], cells["lat"]]), msg["values"])
    return lambda lon, lat: float(f([[lon, lat]])[0])


def _distance_px(f, levels, lon: float, lat: float, pixel) -> float:
    """Distance (pixels) from (lon, lat) to the nearest place where ``f`` crosses one of
    ``levels``, to first order: the value's margin over its gradient in pixels."""
    d = 0.05
    r0, c0 = pixel(lon, lat)
    jac = np.array([[a - b for a, b in zip(pixel(lon + d, lat), (r0, c0), strict=True)],
                    [a - b for a, b in zip(pixel(lon, lat + d), (r0, c0), strict=True)]],
                   dtype=float).T / d  # d(row, col) / d(lon, lat)
    v = f(lon, lat)
    grad_ll = np.array([f(lon + d, lat) - v, f(lon, lat + d) - v]) / d
    grad_px = np.linalg.solve(jac.T, grad_ll)  # d value / d(row, col)
    margin = float(np.abs(np.asarray(levels, float) - v).min())
    return margin / max(float(np.hypot(*grad_px)), 1e-12)


def chart_checks(decoded: dict, region_name: str, img: np.ndarray):
    """(lon, lat, median RGB of the 3x3 patch there, expected RGB) per checkable place of a
    t2m_mslp chart of ``region_name`` drawn from the ecCodes-decoded ``decoded``."""
    from oracles import fill_rgb, map_pixel, map_point, patch_rgb

    from framecast.products import ContourLayer, FilledLayer
    from framecast.render.frame import MapFrame

    catalog = load_catalog()
    product = catalog.product("t2m_mslp")
    fill = next(x for x in product.layers if isinstance(x, FilledLayer))
    isobars = next(x for x in product.layers if isinstance(x, ContourLayer)).levels
    frame = MapFrame(product, catalog.region(region_name))
    cells = None
    if "tlat" in decoded:  # ICON: the cell centres come with the run, in degrees
        cells = {"lat": decoded["tlat"]["values"], "lon": decoded["tlon"]["values"]}
    t2m = _interpolator(decoded["2t"], cells)
    msl = _interpolator(decoded["prmsl"], cells)

    def pixel(lon: float, lat: float) -> tuple[float, float]:
        return map_point(frame.region, frame.map_px, img.shape[0], lon, lat)

    def t_c(lon, lat):
        return t2m(lon, lat) - 273.15

    def p_hpa(lon, lat):
        return msl(lon, lat) / 100.0

    out = []
    for lon, lat in _open_sea(region_name):
        if (_distance_px(t_c, fill.levels, lon, lat, pixel) < EDGE_PX
                or _distance_px(p_hpa, isobars, lon, lat, pixel) < ISOBAR_PX):
            continue
        want = fill_rgb(fill, t_c(lon, lat))
        got = patch_rgb(img, map_pixel(frame.region, frame.map_px, img.shape[0], lon, lat))
        out.append((lon, lat, got, want))
    return out


def assert_chart_of_the_run(case, region: str, name: str, path) -> None:
    """A chart of the run's data: on the open sea the fill has the colour of the temperature
    the downloaded GRIB holds there.

    Oracle: the raw files are decoded with ecCodes (ICON's cell centres from its clat/clon
    files) and interpolated by scipy (bilinear on regular grids, barycentric on the Delaunay
    triangulation of ICON's cells); the pixel of a place comes from a fresh cartopy GeoAxes
    (``oracles.map_pixel``), its colour from matplotlib's BoundaryNorm + colormap
    (``oracles.fill_rgb``). Candidates are a lattice of open-sea places (Natural Earth); those
    near an isobar (its line or label) or a band edge, in pixels, are left out; at least ten
    are checked per chart. Checked by hand: with ``framecast.render.runner.load_fields``
    reading step 0 whatever the step, the GFS run fails here (chart +002, 32.5 W 10 S: 17 off
    in green); charts drawn from another step's data miss at 4-8 of 22-45 places each. The
    former check (more than 50 colours in the image) passed that defect.
    """
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] > 300
    step = next(s for s in STEPS if expected_frames(region, steps=[s]) == {name})
    raw = case.data / "raw" / case.spec.name / RUN_ID
    decoded = {}
    for rf in run_files(case.spec, RUN, ["t2m", "msl"], [step]):
        decoded |= _decode(raw / rf.local_path)
    checks = chart_checks(decoded, region, img)
    assert len(checks) >= 10, f"{path.name}: only {len(checks)} places could be checked"
    for lon, lat, got, want in checks:
        # 5: frames are 8-bit palette PNGs (render/encode.py), which move a colour by up to 4;
        # neighbouring bands of this palette differ by 12 or more
        assert np.abs(got - want).max() <= 5, (path.name, lon, lat, got, want)


def _wait_for(pred, timeout: float = 600) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_icon_eu_end_to_end_with_faults_then_rerun_downloads_nothing(sample_runs, airflow_case):
    """The full ICON-EU run while the upstream misbehaves, then the same logical date again.

    Faults: the last step is published late (the deferred sensor must wait for it), one file
    answers 500 twice, one connection is dropped mid-body twice, one body arrives corrupt.
    """
    with UpstreamServer(sample_runs.get("icon-eu")) as up:
        case = airflow_case(up.url, "icon-eu")
        files = run_files(case.spec, RUN, ["msl", "t2m"], STEPS)
        late = next(f for f in files if f.step == STEPS[-1])
        flaky, dropped, corrupt = files[0], files[1], files[2]
        up.hide(late.url_path)
        up.fail(flaky.url_path, times=2)
        up.drop(dropped.url_path, times=2)
        up.corrupt(corrupt.url_path, times=1)

        def heads_404() -> int:
            return sum(r.method == "HEAD" and r.path == late.url_path and r.status == 404
                       for r in up.requests)

        def publish_late() -> None:  # publish once the sensor has seen it missing twice
            if _wait_for(lambda: heads_404() >= 2):
                up.publish(late.url_path)

        publisher = threading.Thread(target=publish_late, daemon=True)
        publisher.start()
        proc = case.run(LOGICAL["icon-eu"])
        publisher.join(timeout=5)
        assert_ok(proc)
        assert heads_404() >= 2

        want = expected_frames("europe")
        frames = case.frames(RUN_ID)
        assert set(frames) == want
        for name, p in frames.items():
            assert_chart_of_the_run(case, "europe", name, p)
        assert case.published(RUN_ID) == sorted(want)
        for task in ("chunk.wait", "chunk.download", "chunk.render", "chunk.publish"):
            labels = sorted(r["rendered_map_index"] for r in case.states(task))
            assert labels == ["+000..+001", "+002..+003"], task
        manifest = json.loads((case.publish / "icon-eu" / RUN_ID / "manifest.json").read_text())
        assert manifest["status"] == "complete" and manifest["missing_steps"] == []
        records = read_records(case.data / "frames" / "icon-eu" / RUN_ID)
        assert [r.step for r in records] == STEPS
        assert all(r.render_ms > 0 and r.encode_ms > 0 and r.bytes > 0 for r in records)

        def gets(rf):
            return [r.status for r in up.requests if r.method == "GET" and r.path == rf.url_path]

        assert gets(flaky) == [500, 500, 200]
        assert gets(dropped) == [200, 200, 200]  # two bodies cut short, then a whole one
        assert gets(corrupt) == [200, 200]  # the corrupt body was rejected and fetched again
        assert gets(late) == [200]
        raw = case.data / "raw" / "icon-eu" / RUN_ID
        for rf in (flaky, dropped, corrupt):  # what was kept (and rendered) is the good data
            assert (raw / rf.local_path).read_bytes() == bz2.decompress(
                (up.root / rf.url_path).read_bytes())
        assert [p for p in raw.rglob(".*")] == []  # no temp files left behind

        up.clear_log()
        assert_ok(case.run(LOGICAL["icon-eu"]))
        assert up.gets(".grib2.bz2") == []  # second run of the same logical date: no download
        assert {r["state"] for r in case.states()} == {"success"}
        assert set(case.frames(RUN_ID)) == want


def test_icon_global_end_to_end(sample_runs, airflow_case):
    with UpstreamServer(sample_runs.get("icon")) as up:
        case = airflow_case(up.url, "icon")
        assert_ok(case.run(LOGICAL["icon"]))
        frames = case.frames(RUN_ID)
        assert set(frames) == expected_frames("global")
        for name, p in frames.items():
            assert_chart_of_the_run(case, "global", name, p)
        fetched = {r.path.split("/")[1] for r in up.gets(".bz2")}
        assert fetched == {"clat", "clon", "t_2m", "pmsl"}  # grid coordinates + fields
        assert case.published(RUN_ID) == sorted(frames)


def test_gfs_end_to_end_with_ranged_downloads(sample_runs, airflow_case):
    with UpstreamServer(sample_runs.get("gfs")) as up:
        case = airflow_case(up.url, "gfs")
        assert_ok(case.run(LOGICAL["gfs"]))
        frames = case.frames(RUN_ID)
        assert set(frames) == expected_frames("global")
        for name, p in frames.items():
            assert_chart_of_the_run(case, "global", name, p)
        data = [r for r in up.gets() if not r.path.endswith(".idx")]
        assert data and all(r.status == 206 for r in data)  # only byte ranges, never whole files
        assert len(up.gets(".idx")) == len(STEPS)


def _manifest(case, run_id: str = RUN_ID) -> dict:
    return json.loads((case.publish / "icon-eu" / run_id / "manifest.json").read_text())


def test_a_step_that_never_arrives_fails_its_chunk_and_the_rest_is_published(
        sample_runs, airflow_case, smtp_inbox):
    """The last chunk's wait times out naming the missing file; the first chunk's charts are
    published anyway, the run is flagged incomplete with its missing steps, and operators get
    an e-mail through the real SMTP server."""
    with UpstreamServer(sample_runs.get("icon-eu")) as up:
        case = airflow_case(up.url, "icon-eu", sensor_timeout=4)
        case.airflow.extra_env.update({"FRAMECAST_ALERT_EMAILS": "ops@example.com",
                                       "AIRFLOW_CONN_SMTP_DEFAULT": smtp_inbox.connection_json()})
        files = run_files(case.spec, RUN, ["msl", "t2m"], STEPS)
        missing = next(f for f in files if f.step == STEPS[-1])
        up.hide(missing.url_path)
        proc = case.run(LOGICAL["icon-eu"])
        assert proc.returncode != 0  # the run failed: a chunk is missing
        states = {(r["task_id"], r["map_index"]): r["state"] for r in case.states()}
        assert states[("chunk.wait", 0)] == "success"
        assert states[("chunk.wait", 1)] == "failed"
        for task in ("chunk.download", "chunk.render", "chunk.publish"):
            assert states[(task, 0)] == "success", task
            assert states[(task, 1)] == "upstream_failed", task
        assert states[("publish", -1)] == "success"
        step3 = [f for f in files if f.step == 3]
        got = {r.path for r in up.gets(".bz2")}
        assert not got & {f.url_path for f in step3}  # nothing of the missing chunk fetched
        heads = [r for r in up.requests if r.method == "HEAD" and r.path == missing.url_path]
        assert len(heads) >= 3  # it kept checking while deferred
        logs = case.logs() + proc.stdout + proc.stderr
        assert "+002..+003: upstream run still incomplete after 4s" in logs
        assert missing.url_path in logs
        want = sorted(k for k in expected_frames("europe") if k.endswith(("_000.png", "_001.png")))
        assert case.published(RUN_ID) == want
        manifest = _manifest(case)
        assert manifest["status"] == "incomplete" and manifest["missing_steps"] == [2, 3]
        assert manifest["steps"] == [0, 1]
        runs = json.loads((case.publish / "icon-eu" / "runs.json").read_text())
        assert runs["runs"][0]["status"] == "incomplete"
        mails = [m for m in smtp_inbox.messages if "INCOMPLETE" in str(m["Subject"])]
        assert len(mails) == 1, [m["Subject"] for m in smtp_inbox.messages]
        assert mails[0]["Subject"] == ("[framecast] INCOMPLETE: icon-eu 2026112300: "
                                       "2 step(s) missing (+2..+3 h)")
        assert mails[0]["To"] == "ops@example.com"
        body = mails[0].get_payload(0).get_payload(decode=True).decode()
        assert "+2, +3" in body and "framecast_icon_eu" in body


def test_rerunning_a_failed_chunk_rerenders_only_its_frames(sample_runs, airflow_case):
    with UpstreamServer(sample_runs.get("icon-eu")) as up:
        case = airflow_case(up.url, "icon-eu")
        region_dir = case.data / "frames" / "icon-eu" / RUN_ID / "t2m_mslp" / "europe"
        blocked = region_dir / sorted(expected_frames("europe"))[-1].rsplit("/", 1)[1]
        blocked.mkdir(parents=True)  # a directory where step 3's PNG must go: chunk 2 fails
        proc = case.run(LOGICAL["icon-eu"])
        assert proc.returncode != 0
        render = {r["map_index"]: r for r in case.states("chunk.render")}
        assert render[0]["state"] == "success" and render[1]["state"] == "failed"
        assert render[1]["rendered_map_index"] == "+002..+003"
        first = {k: p.stat().st_mtime_ns for k, p in case.frames(RUN_ID).items()}
        assert len(first) == 3  # steps 0, 1 and the 2 of the failed chunk before it hit 3
        manifest = _manifest(case)  # the first chunk is public, the run flagged
        assert manifest["status"] == "incomplete" and manifest["missing_steps"] == [2, 3]
        run_id = render[1]["run_id"]

        blocked.rmdir()
        dag = case.spec.dag_id
        # what an operator does: clear the failed chunk (and its skipped publish) only
        # (-t is a substring of task ids; -d takes the chunk's publish along)
        case.airflow.airflow("tasks", "clear", dag, "-t", "chunk.render", "-d",
                             "--only-failed", "-y",
                             "-s", LOGICAL["icon-eu"], "-e", LOGICAL["icon-eu"])
        states = {(r["task_id"], r["map_index"]): r["state"] for r in case.states()}
        assert states[("chunk.render", 0)] == "success"
        assert states[("chunk.publish", 0)] == "success"
        assert states[("chunk.render", 1)] in (None, "none")
        assert states[("chunk.publish", 1)] in (None, "none")
        for task in ("chunk.render", "chunk.publish"):
            case.airflow.airflow("tasks", "test", dag, task, run_id, "--map-index", "1")

        render = {r["map_index"]: r for r in case.states("chunk.render")}
        assert render[1]["state"] == "success"
        after = {k: p.stat().st_mtime_ns for k, p in case.frames(RUN_ID).items()}
        assert set(after) == expected_frames("europe")
        chunk0 = {k for k in after if k.endswith(("_000.png", "_001.png"))}
        assert len(chunk0) == 2
        for k in chunk0:
            assert after[k] == first[k], f"{k} was re-rendered"
        for k in set(after) - chunk0:
            assert k not in first or after[k] > first[k], f"{k} was not re-rendered"
        records = read_records(case.data / "frames" / "icon-eu" / RUN_ID)
        assert [r.step for r in records] == STEPS
        # the chunk's increment completed the published run
        manifest = _manifest(case)
        assert manifest["status"] == "complete" and manifest["steps"] == STEPS
        assert case.published(RUN_ID) == sorted(expected_frames("europe"))


def test_upstream_resetting_mid_chunk_fails_that_chunk_alone_then_its_rerun_completes(
        sample_runs, airflow_case):
    """The upstream cuts every connection of the second chunk's files mid-body (a reset
    server, a broken proxy) for longer than the download retries last: that chunk fails naming
    a file, nothing half-downloaded is left, the first chunk is published and the run flagged
    incomplete; once the upstream is healthy, re-running that chunk's tasks alone downloads
    only its files and completes the published run."""
    with UpstreamServer(sample_runs.get("icon-eu")) as up:
        case = airflow_case(up.url, "icon-eu")
        files = run_files(case.spec, RUN, ["msl", "t2m"], STEPS)
        second = [f for f in files if f.step in (2, 3)]
        for f in second:
            up.drop(f.url_path, times=100)  # every GET of them cut short
        proc = case.run(LOGICAL["icon-eu"])
        assert proc.returncode != 0
        states = {(r["task_id"], r["map_index"]): r["state"] for r in case.states()}
        assert states[("chunk.wait", 1)] == "success"  # the files were there (HEAD answers)
        assert states[("chunk.download", 1)] == "failed"
        for task in ("chunk.download", "chunk.render", "chunk.publish"):
            assert states[(task, 0)] == "success", task
        assert states[("chunk.render", 1)] == "upstream_failed"
        logs = case.logs() + proc.stdout + proc.stderr
        assert any(f.url_path in logs for f in second)
        cut = Counter(r.path for r in up.requests
                      if r.method == "GET" and r.path in {f.url_path for f in second})
        assert max(cut.values()) >= 2  # retried before the chunk gave up
        raw = case.data / "raw" / "icon-eu" / RUN_ID
        assert [p for p in raw.rglob(".*")] == []  # no temp file of a cut body
        assert not any((raw / f.local_path).exists() for f in second)  # nothing half-written
        want0 = sorted(k for k in expected_frames("europe") if k.endswith(("_000.png", "_001.png")))
        assert case.published(RUN_ID) == want0
        manifest = _manifest(case)
        assert manifest["status"] == "incomplete" and manifest["missing_steps"] == [2, 3]
        run_id = next(r["run_id"] for r in case.states("chunk.download"))

        up.faults.drops.clear()  # the upstream is healthy again
        up.clear_log()
        dag = case.spec.dag_id
        case.airflow.airflow("tasks", "clear", dag, "-t", "chunk.download", "-d",
                             "--only-failed", "-y",
                             "-s", LOGICAL["icon-eu"], "-e", LOGICAL["icon-eu"])
        for task in ("chunk.download", "chunk.render", "chunk.publish"):
            case.airflow.airflow("tasks", "test", dag, task, run_id, "--map-index", "1")
        assert sorted(r.path for r in up.gets(".bz2")) == sorted(f.url_path for f in second)
        for f in second:  # what was kept is the upstream's file, whole
            assert (raw / f.local_path).read_bytes() == bz2.decompress(
                (up.root / f.url_path).read_bytes())
        frames = case.frames(RUN_ID)
        assert set(frames) == expected_frames("europe")
        for name, p in frames.items():
            assert_chart_of_the_run(case, "europe", name, p)
        manifest = _manifest(case)
        assert manifest["status"] == "complete" and manifest["steps"] == STEPS
        assert case.published(RUN_ID) == sorted(expected_frames("europe"))


def test_two_logical_dates_give_two_separate_runs(sample_runs, airflow_case):
    """Two logical dates (as a backfill of 00 and 06 UTC creates them) give two separate runs.

    Each DAG run is executed with ``airflow dags test``; the schedule's logical dates are
    checked in test_dagbag.py, a real `airflow backfill` in tests/deploy/test_celery_e2e.py.
    With ``retention_runs: 1`` the older run's raw data goes once
    the newer run is done, while its charts stay published.
    """
    run2 = datetime(2026, 11, 23, 6, tzinfo=UTC)
    sample_runs.get("icon-eu", RUN)
    with UpstreamServer(sample_runs.get("icon-eu", run2)) as up:
        case = airflow_case(up.url, "icon-eu", retention_runs=1)
        for run in (RUN, run2):
            assert_ok(case.run(run.isoformat()))

        runs = case.airflow.run_states(case.spec.dag_id)
        assert [r["state"] for r in runs] == ["success", "success"]
        for run, rid in ((RUN, RUN_ID), (run2, "2026112306")):
            assert set(case.frames(rid)) == expected_frames("europe", run)
            records = read_records(case.data / "frames" / "icon-eu" / rid)
            assert {r.run for r in records} == {run.isoformat()}
            assert [r.valid_time for r in records] == [
                (run + timedelta(hours=s)).isoformat() for s in STEPS]
            assert case.published(rid) == sorted(expected_frames("europe", run))
        raw = case.data / "raw" / "icon-eu"
        assert sorted(p.name for p in raw.iterdir()) == ["2026112306"]
