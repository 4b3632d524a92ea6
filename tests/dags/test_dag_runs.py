"""Whole DAG runs (``airflow dags test`` in its own process) against the real local upstream.

Each test has its own AIRFLOW_HOME with a SQLite metadata DB, its own data/publish folders and
its own upstream server serving generated files in the model's real layout.
"""

from __future__ import annotations

import bz2
import json
import threading
import time
from datetime import UTC, datetime, timedelta

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


def assert_real_chart(path) -> None:
    img = np.asarray(Image.open(path).convert("RGB"))
    assert img.shape[0] > 300 and img.shape[1] > 300
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # a map, not a blank canvas


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
        for p in frames.values():
            assert_real_chart(p)
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
        for p in frames.values():
            assert_real_chart(p)
        fetched = {r.path.split("/")[1] for r in up.gets(".bz2")}
        assert fetched == {"clat", "clon", "t_2m", "pmsl"}  # grid coordinates + fields
        assert case.published(RUN_ID) == sorted(frames)


def test_gfs_end_to_end_with_ranged_downloads(sample_runs, airflow_case):
    with UpstreamServer(sample_runs.get("gfs")) as up:
        case = airflow_case(up.url, "gfs")
        assert_ok(case.run(LOGICAL["gfs"]))
        frames = case.frames(RUN_ID)
        assert set(frames) == expected_frames("global")
        for p in frames.values():
            assert_real_chart(p)
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
