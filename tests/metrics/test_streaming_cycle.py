"""A streaming cycle on the real scheduler, triggerer and LocalExecutor (tests/metrics/
airflow_stack.py): the local upstream releases the run step by step on the arrival schedule
(config/arrival.yaml, sped up), the shipped DAG file publishes it chunk by chunk, and

- the first chunk's charts are public before the last step is even upstream;
- a poller reading the published folder throughout the run never sees a manifest entry whose
  file is missing or differs in size or sha256, nor a ``latest`` pointing at a run whose
  manifest or first steps are not there;
- every step's publish latency is recorded and shown in the run report.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import services
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
RUN = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
RUN_ID = RUN.strftime("%Y%m%d%H")
STEPS = [0, 1, 2, 3, 4, 5]
SPEEDUP = 1.5  # ICON-EU +5 h arrives 45 min * 5/78 after +0: 115 s at this speed-up


class Poller(threading.Thread):
    """Reads the published folder as a web client would, checking what it reads."""

    def __init__(self, site: Path) -> None:
        super().__init__(daemon=True)
        self.site = site
        self.stop = threading.Event()
        self.errors: list[str] = []
        self.checks = 0
        self.first_seen: dict[int, float] = {}  # step -> when its frame was first listed
        self.latest_at: float | None = None

    def _json(self, path: Path) -> dict | None:
        try:
            return json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:  # a document read half-written
            self.errors.append(f"{path}: {exc}")
            return None

    def check_once(self) -> None:
        run_dir = self.site / RUN_ID
        manifest = self._json(run_dir / "manifest.json")
        if manifest is not None:
            for rel, meta in manifest["files"].items():
                try:
                    data = (run_dir / rel).read_bytes()
                except FileNotFoundError:
                    self.errors.append(f"listed but missing: {rel}")
                    continue
                if len(data) != meta["size"] or hashlib.sha256(data).hexdigest() != meta["sha256"]:
                    self.errors.append(f"listed but partial or different: {rel}")
            now = time.time()
            for step in manifest["steps"]:
                self.first_seen.setdefault(step, now)
        latest = self._json(self.site / "latest.json")
        if latest is not None:
            target = self._json(self.site / latest["manifest"])
            if target is None:
                self.errors.append(f"latest points at a missing manifest {latest['manifest']}")
            elif not {0, 1} <= set(target["steps"]):  # latest_when: first_chunk
                self.errors.append(f"latest moved before the first chunk: {target['steps']}")
            elif self.latest_at is None:
                self.latest_at = time.time()
        self.checks += 1

    def run(self) -> None:
        while not self.stop.is_set():
            self.check_once()
            time.sleep(0.1)


@pytest.fixture(scope="module")
def streaming(stack_mod, tmp_path_factory):
    from framecast.catalog import DEFAULT_MODELS_FILE, get_model
    from framecast.sampledata import generate_run
    from framecast.upstream import UpstreamServer

    services.require_postgres()
    work = tmp_path_factory.mktemp("streaming")
    doc = yaml.safe_load(DEFAULT_MODELS_FILE.read_text())
    doc["models"] = {"icon-eu": doc["models"]["icon-eu"]}
    doc["defaults"].update({
        "chunk_size": 2, "retries": 1, "retry_delay_seconds": 1,
        "sensor": {"mode": "last_step", "poke_interval": 1, "timeout": 300},
        "http": {"timeout": 20, "retries": 4, "backoff": 0.2},
    })
    doc["models"]["icon-eu"].update({"steps": STEPS, "products": ["t2m_mslp"],
                                     "regions": ["europe"], "latest_when": "first_chunk"})
    models = work / "models.yaml"
    models.write_text(yaml.safe_dump(doc))
    spec = get_model("icon-eu", models)
    upstream_root = work / "upstream"
    generate_run("icon-eu", RUN, STEPS, upstream_root, variables=["t2m", "msl"], bz2=True)
    up = UpstreamServer(upstream_root).start()
    up.faults.missing.update(str(p.relative_to(upstream_root))
                             for p in upstream_root.rglob("*.bz2"))  # nothing there yet
    env = {"FRAMECAST_MODELS_FILE": str(models),
           "AIRFLOW_CONN_" + spec.conn_id.upper(): json.dumps({"conn_type": "http",
                                                              "extra": {"base_url": up.url}}),
           "FRAMECAST_DATA_ROOT": str(work / "data"),
           "FRAMECAST_PUBLISH_ROOT": str(work / "publish")}

    def pools(stack) -> None:
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "pools", "set",
                        "framecast_download", "4", "downloads"], env=stack.env, check=True,
                       capture_output=True, timeout=120)

    st = stack_mod.start_stack(work, [ROOT / "dags" / "framecast_models.py"],
                               before_start=pools, extra_env=env)
    st.spec, st.up, st.work, st.models = spec, up, work, models
    yield st
    stack_mod.stop_stack(st)
    up.stop()


def test_first_chunk_is_public_before_the_last_step_arrives(streaming):
    st = streaming
    dag_id = st.spec.dag_id
    st.wait_dag(dag_id)
    site = st.work / "publish" / "icon-eu"
    poller = Poller(site)
    poller.start()
    # the run starts arriving now, step by step, and the DAG run starts with it
    st.up.faults.missing.clear()
    schedule = st.up.replay_run("icon-eu", RUN_ID, speedup=SPEEDUP, models_file=st.models)
    last_upstream = max(schedule.values())
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "trigger", dag_id,
         "--logical-date", RUN.isoformat(), "--run-id", "streaming"],
        env=st.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    try:
        # this run, not a scheduled one the unpaused DAG may start for the current cycle
        state = st.wait_run(dag_id, timeout=420, run_id="streaming")
    finally:
        poller.stop.set()
        poller.join(timeout=10)
    poller.check_once()  # and once more on the finished run
    assert state == "success", st.logs_tail()

    assert poller.errors == []
    assert poller.checks > 100  # it really watched throughout
    # the first chunk was public while the last step was still being computed upstream
    assert poller.first_seen[0] < last_upstream and poller.first_seen[1] < last_upstream, (
        poller.first_seen, last_upstream)
    assert poller.latest_at is not None and poller.latest_at < last_upstream
    assert poller.first_seen[5] >= last_upstream  # (the poller is not fooled by a clock)

    manifest = json.loads((site / RUN_ID / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["steps"] == STEPS
    assert json.loads((site / "latest.json").read_text())["run_id"] == RUN_ID

    # every step's latency: published after its files were seen upstream, and after they
    # were released by the server (an independent clock: the server's schedule)
    from framecast.metrics.latency import read_latency
    from framecast.records import run_dir

    rows = read_latency(run_dir(st.work / "data" / "frames", "icon-eu", RUN))
    assert [r.step for r in rows] == STEPS
    # each record names the DAG run that published it (the ops view links runs in progress)
    assert {(r.dag_id, r.run_id) for r in rows} == {(dag_id, "streaming")}
    from framecast.catalog import run_files

    released: dict[int, float] = {}
    for f in run_files(st.spec, RUN, ["t2m", "msl"]):
        released[f.step] = max(released.get(f.step, 0.0), schedule[f.url_path])
    for r in rows:
        assert r.available_at is not None and r.available_at >= released[r.step] - 0.5, r
        assert r.published_at > r.available_at, r
    report = (site / RUN_ID / "_report" / "index.html").read_text()
    assert 'id="latency"' in report and "+004..+005" in report
