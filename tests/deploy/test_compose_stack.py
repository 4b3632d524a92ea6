"""The docker-compose deployment, built and run for real on a Docker engine.

One module-scoped stack serves every test here: the image is built from the Dockerfile (on the
Debian-based stand-in base of deploy/local-images.sh, pip given the machine's CA bundle as a
build secret), ``docker-compose up -d`` starts docker-compose.yaml with the loopback override
(host networking, free loopback ports, a project name of its own) and a local upstream server
on the host serves generated ICON-EU runs in DWD's layout. Then:

1. the ICON-EU DAG is unpaused and triggered through the REST API with a real login, and the
   run (every shipped ICON-EU product and region, two steps) completes through the Celery
   workers in the containers: charts and manifest in the publish volume, each frame non-blank,
   one metrics row per frame;
2. ``docker-compose kill worker-render`` while it renders: the run still completes, the killed
   container's task finished on ``worker``, every frame exactly once;
3. bad configuration is caught before start: a missing secret (compose refuses), a
   placeholder secret (airflow-init refuses, naming the variable), a wrong superuser password
   (airflow-init stops at once), a wrong role password (a component's entrypoint stops at
   once instead of retrying), an unreachable upstream (airflow-init names model, connection
   and URL);
4. ``docker-compose down -v`` leaves no container and no volume of the project.

Build time, image size and the duration of each phase are printed and written to
var/compose-test-timings.json.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from framecast.catalog import format_run, get_model, needed_variables
from framecast.products import load_catalog
from framecast.records import read_records

from .compose_stack import (
    ROOT,
    AirflowApi,
    ComposeStack,
    build_framecast_image,
    build_local_images,
    docker,
    docker_engine,
    new_secrets,
    stage_natural_earth,
    write_env_file,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

MODEL = "icon-eu"
DAG_ID = "framecast_icon_eu"
# Model runs safely in the past (the scheduler does not start runs whose logical date lies in
# the future), different from the ones the Celery tests use.
RUN1 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
RUN2 = RUN1 + timedelta(hours=6)
STEPS = [0, 1, 2, 3]
#: One step per chunk: four render tasks per run, so both workers that consume the render queue
#: get some (one chunk of every product would land on either worker).
CHUNK = 1
#: A representative part of the library (fills, isobars, barbs, translucent clouds).
PRODUCTS = ["t2m_mslp", "precip_mslp", "wind850", "clouds"]
HEARTBEAT_TIMEOUT = 30
TIMINGS_FILE = ROOT / "var" / "compose-test-timings.json"


def _note(timings: dict, key: str, value: float | int | str) -> None:
    timings[key] = value
    TIMINGS_FILE.parent.mkdir(parents=True, exist_ok=True)
    TIMINGS_FILE.write_text(json.dumps(timings, indent=2))
    print(f"compose test: {key} = {value}", flush=True)


@pytest.fixture(scope="module")
def timings() -> dict:
    return {"started": datetime.now(UTC).isoformat(timespec="seconds")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, celery_local, timings):
    """Engine, images, upstream with two runs, the compose stack up; all undone afterwards."""
    t0 = time.monotonic()
    work = tmp_path_factory.mktemp("compose")
    work.chmod(0o755)  # the models file is bind-mounted into containers running as uid 50000
    models = celery_local.write_models_file(
        work / "models.yaml", steps=STEPS, chunk_size=CHUNK,
        products=PRODUCTS, regions=list(get_model(MODEL).regions),
        retries=2, retry_delay_seconds=1)
    models.chmod(0o644)
    spec = get_model(MODEL, models)
    errors: list[BaseException] = []

    def generate() -> None:  # overlaps with the image build
        try:
            for run in (RUN1, RUN2):
                celery_local.generate_sample_run(work / "upstream", run, STEPS,
                                                 list(needed_variables(spec)))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            errors.append(exc)

    (work / "upstream").mkdir()
    gen = threading.Thread(target=generate, name="sample-runs")
    gen.start()
    with docker_engine(work / "dockerd.log") as started_engine:
        _note(timings, "engine_started_by_test", str(started_engine))
        stack = None
        image = None
        try:
            _note(timings, "local_images_s", round(build_local_images(), 1))
            stage_natural_earth(Path(os.environ.get(
                "CARTOPY_DATA_DIR", ROOT.parent / "shared" / "cartopy-data")))
            tag = f"framecast-test:{os.getpid()}-{int(time.time())}"
            built = build_framecast_image(tag, work / "build.log")
            image = built.tag
            _note(timings, "image_build_s", round(built.seconds, 1))
            _note(timings, "image_size_mb", round(built.size_bytes / 1e6))
            gen.join()
            if errors:
                raise errors[0]
            with celery_local.local_upstream(work / "upstream") as upstream_url:
                secrets = new_secrets()
                env_file = write_env_file(work / "framecast.env", secrets)
                stack = ComposeStack(work, image, env_file, models, variables={
                    "FRAMECAST_UPSTREAM_ICON_EU": celery_local.connection_json(upstream_url),
                    "FRAMECAST_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
                    "FRAMECAST_QUEUED_TIMEOUT": "120",
                    "FRAMECAST_WORKER_CONCURRENCY": "2",
                    "FRAMECAST_RENDER_WORKER_CONCURRENCY": "1",
                    "FRAMECAST_PARALLELISM": "8",
                })
                stack.secrets = secrets
                stack.upstream_url = upstream_url
                t_up = time.monotonic()
                stack.compose("up", "-d", "--no-build", timeout=900)
                _note(timings, "compose_up_s", round(time.monotonic() - t_up, 1))
                stack.api = AirflowApi(stack.api_url, "admin",
                                       secrets["FRAMECAST_ADMIN_PASSWORD"])
                yield stack
        finally:
            gen.join()
            if stack is not None:
                kept = ROOT / "var" / "compose-test-logs" / stack.project
                stack.save_logs(kept)  # task and container logs outlive the volumes
                print(f"compose test: logs kept in {kept}", flush=True)
                t_down = time.monotonic()
                stack.down()
                _note(timings, "compose_down_s", round(time.monotonic() - t_down, 1))
            if image is not None:
                docker("image", "rm", "-f", image, check=False)
            _note(timings, "total_s", round(time.monotonic() - t0, 1))


# --------------------------------------------------------------------------- oracles


def expected_frames(run: datetime) -> set[str]:
    """product/region/file of every frame the run must produce (the catalog's file names)."""
    catalog = load_catalog()
    spec = get_model(MODEL)
    return {f"{p}/{r}/" + catalog.product(p).format_filename(region=r, model=MODEL, run=run,
                                                             step=s)
            for p in PRODUCTS for r in spec.regions for s in STEPS}


def frames_in(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.glob("*/*/*.png")}


def assert_not_blank(png: Path) -> None:
    """A chart, not an empty canvas: many colours and real contrast."""
    with Image.open(png) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.int16)
    assert a.shape[0] > 200 and a.shape[1] > 200, (png, a.shape)
    colours = len(np.unique(a.reshape(-1, 3), axis=0))
    assert colours > 50, (png, colours)
    assert float(a.std()) > 20, (png, float(a.std()))


def metrics_rows(stack: ComposeStack, run: datetime) -> list[tuple]:
    import psycopg

    url = (f"postgresql://framecast_metrics:{stack.secrets['FRAMECAST_METRICS_DB_PASSWORD']}"
           f"@127.0.0.1:{stack.ports['FRAMECAST_PG_PORT']}/framecast_metrics")
    with psycopg.connect(url, connect_timeout=10) as conn:
        return conn.execute(
            "SELECT product, region, step, try_number FROM framecast_frame_timings "
            "WHERE model = %s AND run = %s ORDER BY product, region, step",
            (MODEL, run.isoformat())).fetchall()


def assert_each_frame_once(stack: ComposeStack, run: datetime) -> list:
    """Frames in the data volume, frame records, metrics rows: the expected set, once each."""
    want = expected_frames(run)
    frames_dir = stack.volume_path("framecast-data") / "frames" / MODEL / format_run(run)
    assert frames_in(frames_dir) == want
    assert [p for p in frames_dir.rglob("*") if p.name.startswith(".")] == []
    records = read_records(frames_dir)
    assert len(records) == len({r.key for r in records}) == len(want)
    rows = metrics_rows(stack, run)
    assert sorted((p, r, s) for p, r, s, _ in rows) == sorted(
        tuple(f.split("/")[:2]) + (s,) for f in want for s in STEPS
        if f.endswith(f"_{s:03d}.png"))
    return records


def assert_published(stack: ComposeStack, run: datetime) -> None:
    """Charts and manifest in the publish volume: every frame, none blank, all listed."""
    published = stack.volume_path("framecast-publish") / MODEL / format_run(run)
    want = expected_frames(run)
    assert frames_in(published) == want
    for rel in sorted(want):
        assert_not_blank(published / rel)
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["complete"] is True
    frames = [fr for prod in manifest["products"].values()
              for region in prod["regions"].values() for fr in region["frames"]]
    assert {fr["file"] for fr in frames} == want
    for fr in frames:  # the manifest describes the files that are there
        assert hashlib.sha256((published / fr["file"]).read_bytes()).hexdigest() == fr["sha256"]


#: The mapped render task of the model DAG's per-chunk task group.
RENDER = "chunk.render"


def render_tis(stack: ComposeStack, run_id: str) -> list[dict]:
    return [t for t in stack.api.task_instances(DAG_ID, run_id) if t["task_id"] == RENDER]


# --------------------------------------------------------------------------- tests


def test_login_unpause_trigger_full_run(stack, timings, celery_local):
    api = stack.api
    assert api.status("GET", "/dags") in (401, 403)  # the API wants a login
    api.login()
    end = time.monotonic() + 300
    while api.status("GET", f"/dags/{DAG_ID}") != 200:  # the dag-processor parses it first
        assert time.monotonic() < end, stack.logs()
        time.sleep(2)
    assert api.call("GET", f"/dags/{DAG_ID}")["is_paused"] is True
    assert api.unpause(DAG_ID)["is_paused"] is False
    logical = celery_local.logical_date_for(RUN1).isoformat()
    t_run = time.monotonic()
    run = api.trigger(DAG_ID, "compose_full", logical)
    assert run["state"] in ("queued", "running")
    state = api.wait_run(DAG_ID, "compose_full", timeout=1200)
    _note(timings, "full_run_s", round(time.monotonic() - t_run, 1))
    assert state == "success", stack.task_log_tails("compose_full")

    tis = api.task_instances(DAG_ID, "compose_full")
    assert {t["state"] for t in tis} == {"success"}
    renders = [t for t in tis if t["task_id"] == RENDER]
    assert len(renders) == -(-len(STEPS) // CHUNK)  # one render per chunk of steps
    # Celery workers in the containers ran them, named by the compose services
    assert {t["hostname"] for t in tis} <= {"worker", "worker-render"}
    assert "worker-render" in {t["hostname"] for t in renders}
    assert {t["queue"] for t in renders} == {"render"}
    assert_each_frame_once(stack, RUN1)
    assert_published(stack, RUN1)


def test_killed_render_worker_mid_run_still_completes(stack, timings, celery_local):
    api = stack.api
    api.login()
    run_id = "compose_kill"
    api.trigger(DAG_ID, run_id, celery_local.logical_date_for(RUN2).isoformat())
    victim = None
    end = time.monotonic() + 900
    while victim is None:
        assert time.monotonic() < end, stack.logs()
        victim = next((t for t in render_tis(stack, run_id)
                       if t["state"] == "running" and t["hostname"] == "worker-render"), None)
        assert api.run(DAG_ID, run_id)["state"] not in ("success", "failed"), \
            "the run ended before the render worker got a task"
        time.sleep(0.5)
    t_kill = time.monotonic()
    stack.compose("kill", "worker-render", timeout=120)
    ps = stack.compose("ps", "worker-render").stdout
    assert "Exit 137" in ps, ps

    state = api.wait_run(DAG_ID, run_id, timeout=1200)
    _note(timings, "run_after_kill_s", round(time.monotonic() - t_kill, 1))
    assert state == "success", stack.task_log_tails(run_id)
    tis = {(t["task_id"], t["map_index"]): t for t in api.task_instances(DAG_ID, run_id)}
    retried = tis[(RENDER, victim["map_index"])]
    assert retried["state"] == "success"
    assert retried["hostname"] == "worker"  # the killed container's task, on the other worker
    assert retried["try_number"] == victim["try_number"] + 1
    tries = api.tries(DAG_ID, run_id, RENDER, victim["map_index"])
    first = [t for t in tries if t["try_number"] == victim["try_number"]]
    assert [t["hostname"] for t in first] == ["worker-render"]
    assert first[0]["state"] in ("failed", "up_for_retry")
    records = assert_each_frame_once(stack, RUN2)
    first, last = (int(x) for x in retried["rendered_map_index"].split(".."))  # "+002..+003"
    assert {r.try_number for r in records
            if first <= r.step <= last} == {retried["try_number"]}
    assert_published(stack, RUN2)


def test_missing_secret_is_refused_before_anything_starts(stack, tmp_path):
    partial = {k: v for k, v in stack.secrets.items() if k != "FRAMECAST_JWT_SECRET"}
    env_file = write_env_file(tmp_path / "partial.env", partial)
    before = set(stack.containers())
    proc = stack.compose("run", "--rm", "--no-deps", "airflow-init", env_file=env_file,
                         check=False, timeout=120)
    assert proc.returncode != 0
    assert "set FRAMECAST_JWT_SECRET in .env" in proc.stderr
    assert set(stack.containers()) == before


def test_placeholder_secret_is_refused_by_init(stack, tmp_path):
    env_file = write_env_file(tmp_path / "placeholder.env",
                              {**stack.secrets, "FRAMECAST_JWT_SECRET": "CHANGE-ME"})
    proc = stack.compose("run", "--rm", "--no-deps", "airflow-init", env_file=env_file,
                         check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert ("refusing to start: AIRFLOW__API_AUTH__JWT_SECRET (set FRAMECAST_JWT_SECRET in "
            ".env) is still the placeholder") in out, out
    assert "Database migration" not in out  # stopped before touching the database


def test_wrong_superuser_password_stops_init_at_once(stack):
    started = time.monotonic()
    proc = stack.compose("run", "--rm", "--no-deps", "airflow-init", check=False, timeout=300,
                         POSTGRES_PASSWORD="not-the-database-password")
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "PostgreSQL refused the superuser login" in out, out
    assert "check POSTGRES_PASSWORD in .env" in out, out
    assert "not-the-database-password" not in out  # never echo a secret
    assert took < 120, f"init took {took:.0f} s to give up"


def test_wrong_role_password_stops_a_component_at_once(stack):
    """The entrypoint of every metadata-database component (api-server, scheduler, ...): a
    refused login is reported at once, not retried 60 times. Run in the airflow-init service's
    container (``docker-compose run`` of a service depending on the api-server would ask for
    links, which host networking refuses) with the entrypoint's wait switched on, as the
    components have it."""
    started = time.monotonic()
    proc = stack.compose("run", "--rm", "--no-deps", "-e", "FRAMECAST_WAIT_FOR_DB=true",
                         "airflow-init", "airflow", "version", check=False, timeout=300,
                         FRAMECAST_AIRFLOW_DB_PASSWORD="not-the-role-password")
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode == 78, out
    assert 'password authentication failed for user "airflow"' in out, out
    assert "check FRAMECAST_AIRFLOW_DB_PASSWORD in .env" in out, out
    assert "not-the-role-password" not in out
    assert took < 120, f"the entrypoint took {took:.0f} s to give up"


def test_unreachable_upstream_is_named_by_init(stack):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    dead_url = f"http://127.0.0.1:{dead}/dwd"
    proc = stack.compose(
        "run", "--rm", "--no-deps", "airflow-init", check=False, timeout=300,
        FRAMECAST_UPSTREAM_ICON_EU=json.dumps({"conn_type": "http",
                                               "extra": {"base_url": dead_url}}))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out  # a warning: upstream servers come back
    assert (f"upstream of icon-eu (connection framecast_upstream_icon_eu) is not reachable "
            f"at {dead_url}") in out, out
    assert "ConnectionError" in out, out


def test_down_leaves_nothing(stack):
    assert stack.containers(), "the stack is not running"
    stack.down()
    assert stack.containers() == []
    assert stack.volumes() == []
