"""framecast's production topology on one machine, without Docker.

Runs what docker-compose.yaml runs (deploy/topology.yaml describes both): an Airflow 3
api-server, scheduler, dag-processor and triggerer, and Celery workers (one ``worker`` consuming
the default and render queues, one ``worker-render`` consuming only the render queue), all on the
CeleryExecutor with the PostgreSQL and Redis already running on this machine. The script then
starts a local upstream server with generated ICON-EU data, triggers the ICON-EU DAG for that run,
waits, reports the run (state, which worker ran each task, frames), and stops everything it
started, dropping the databases it created.

Usage::

    .venv/bin/python scripts/celery_local.py                 # 8 steps, t2m_mslp over europe
    .venv/bin/python scripts/celery_local.py --steps 12 --chunk-size 3 --keep

Isolation from anything else on the machine: fresh databases ``framecast_celery_<tag>`` (Airflow
metadata, Celery results) and ``framecast_celery_<tag>_metrics`` (frame metrics), Celery queue
names prefixed with the tag (the Redis broker is shared), free ports for the api-server and log
servers, and every process in its own process group, stopped on exit, failure or Ctrl-C.

The :class:`LocalCluster` class is what tests/deploy uses to run the same topology.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
TOPOLOGY_FILE = REPO / "deploy" / "topology.yaml"
DEPLOY_AIRFLOW_DIR = REPO / "deploy" / "airflow"
VENV_BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("FRAMECAST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("FRAMECAST_REDIS_URL", "redis://127.0.0.1:6379/0")
MODEL = "icon-eu"


class ClusterError(RuntimeError):
    """A component did not start, died, or a run did not finish in time (with log tails)."""


# --------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class Component:
    """One Airflow component: ``airflow <command>``; workers also list their queues."""

    name: str
    command: tuple[str, ...]
    queues: tuple[str, ...] = ()
    port: int | None = None

    @property
    def is_worker(self) -> bool:
        return self.command[:2] == ("celery", "worker")


@dataclass(frozen=True)
class Topology:
    """deploy/topology.yaml, parsed: the single description both deployments follow."""

    queues: dict[str, str]
    components: dict[str, Component]
    infrastructure: tuple[str, ...]
    init: str
    volumes: dict[str, dict[str, str]]
    env: tuple[str, ...]
    env_compose_only: tuple[str, ...]
    env_local_only: tuple[str, ...]
    pools_file: Path
    env_not_on_workers: tuple[str, ...] = ()

    def pools(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.pools_file.read_text())


def load_topology(path: Path = TOPOLOGY_FILE) -> Topology:
    """Parse the topology file; a missing key raises ClusterError naming file and key."""
    doc = yaml.safe_load(path.read_text())
    try:
        components = {
            name: Component(name, tuple(c["command"]), tuple(c.get("queues", ())), c.get("port"))
            for name, c in doc["components"].items()
        }
        return Topology(
            queues=dict(doc["queues"]),
            components=components,
            infrastructure=tuple(doc["infrastructure"]),
            init=str(doc["init"]),
            volumes={k: dict(v) for k, v in doc["volumes"].items()},
            env=tuple(doc["env"]),
            env_compose_only=tuple(doc.get("env_compose_only", ())),
            env_local_only=tuple(doc.get("env_local_only", ())),
            pools_file=REPO / doc["pools_file"],
            env_not_on_workers=tuple(doc.get("env_not_on_workers", ())),
        )
    except (KeyError, TypeError) as exc:
        raise ClusterError(f"{path}: missing or malformed key {exc}") from exc


def worker_args(component: Component, queue_names: dict[str, str], hostname: str,
                concurrency: int) -> list[str]:
    """``airflow celery worker`` arguments for one worker instance of ``component``."""
    queues = ",".join(queue_names[q] for q in component.queues)
    return [*component.command, "--queues", queues, "--celery-hostname", hostname,
            "--concurrency", str(concurrency)]


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_base(admin_url: str) -> str:
    return admin_url.rsplit("/", 1)[0]


def _pg_admin(sql: str, admin_url: str = PG_ADMIN) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def write_models_file(path: Path, *, steps: list[int], chunk_size: int,
                      products: list[str], regions: list[str], retries: int = 2,
                      retry_delay_seconds: int = 2) -> Path:
    """The shipped catalog cut down to ICON-EU with few steps (a run that takes minutes)."""
    from framecast.catalog import DEFAULT_MODELS_FILE

    doc = yaml.safe_load(DEFAULT_MODELS_FILE.read_text())
    doc["models"] = {MODEL: doc["models"][MODEL]}
    doc["defaults"].update({
        "chunk_size": chunk_size, "download_batch_size": 4, "retries": retries,
        "retry_delay_seconds": retry_delay_seconds,
        "sensor": {"mode": "last_step", "poke_interval": 2, "timeout": 300},
        "http": {"timeout": 20, "retries": 4, "backoff": 0.2},
    })
    model = doc["models"][MODEL]
    model.update({"steps": list(steps), "products": list(products), "regions": list(regions)})
    path.write_text(yaml.safe_dump(doc))
    return path


def connection_json(base_url: str) -> str:
    """An http connection (JSON form of ``AIRFLOW_CONN_*``) whose base URL is ``base_url``."""
    return json.dumps({"conn_type": "http", "extra": {"base_url": base_url}})


def process_tree(pid: int) -> list[Any]:
    """``pid`` and all its descendants as psutil processes (they may sit in other groups).

    psutil remembers each process's start time, so killing one later never hits a reused pid.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_all(procs: list[Any]) -> None:
    """SIGKILL every still-running process of ``procs`` (from :func:`process_tree`)."""
    import psutil

    for p in procs:
        with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.kill()


def still_running(procs: list[Any]) -> list[Any]:
    """Those of ``procs`` that are neither gone nor zombies (dead, not yet reaped)."""
    import psutil

    alive = []
    for p in procs:
        with suppress(psutil.NoSuchProcess):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
    return alive


def wait_dead(procs: list[Any], timeout: float = 20) -> list[Any]:
    """Wait until every process of ``procs`` has died (signals arrive asynchronously)."""
    end = time.monotonic() + timeout
    alive = still_running(procs)
    while alive and time.monotonic() < end:
        time.sleep(0.1)
        alive = still_running(alive)
    return alive


# --------------------------------------------------------------------------- the cluster


@dataclass
class LocalCluster:
    """The topology's Airflow components as local processes on fresh databases.

    ``env_overrides`` adjusts Airflow settings (tests shorten heartbeat timeouts);
    ``worker_concurrency`` maps a worker component to its Celery concurrency.
    """

    work: Path
    upstream_url: str
    models_file: Path
    topology: Topology = field(default_factory=load_topology)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    worker_concurrency: dict[str, int] = field(
        default_factory=lambda: {"worker": 2, "worker-render": 1})
    env_overrides: dict[str, str] = field(default_factory=dict)
    pg_admin: str = PG_ADMIN
    redis_url: str = REDIS_URL
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    proc_env: dict[str, dict[str, str]] = field(default_factory=dict)
    created_dbs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home = self.work / "airflow"
        self.dags_dir = self.work / "dags"
        self.logs_dir = self.work / "logs"
        self.api_port = free_port()
        self.trigger_log_port = free_port()
        self.airflow_db = f"framecast_celery_{self.tag}"
        self.metrics_db = f"framecast_celery_{self.tag}_metrics"
        self.queue_names = {k: f"fc{self.tag}.{v}" for k, v in self.topology.queues.items()}
        self.volume_dirs = {name: self.work / name for name in self.topology.volumes}
        self.workers = {
            f"{c.name}-1": c for c in self.topology.components.values() if c.is_worker}
        self._secrets = {  # one set per cluster: every component must share them
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__CORE__FERNET_KEY": _fernet_key(),
        }

    # ---------------------------------------------------------------- configuration

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def db_url(self, db: str, driver: str = "psycopg2") -> str:
        return f"{_pg_base(self.pg_admin).replace('postgresql', f'postgresql+{driver}', 1)}/{db}"

    def own_env(self) -> dict[str, str]:
        """What this cluster sets: the topology's variables, local-only ones, the connection."""
        from framecast.catalog import get_model

        spec = get_model(MODEL, self.models_file)
        volumes = {v["env"]: str(self.volume_dirs[name])
                   for name, v in self.topology.volumes.items()}
        return {
            # the topology's shared variables
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url(self.airflow_db),
            "AIRFLOW__CELERY__BROKER_URL": self.redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.db_url(self.airflow_db),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.api_url,
            **self._secrets,
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_dir),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "framecast_hostname.worker_hostname",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue_names["default"],
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "300",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
            "FRAMECAST_METRICS_DB": self.db_url(self.metrics_db, "psycopg"),
            "FRAMECAST_RENDER_QUEUE": self.queue_names["render"],
            "FRAMECAST_RENDER_POOL": "framecast_render",
            "MPLBACKEND": "Agg",
            "CARTOPY_DATA_DIR": os.environ.get("CARTOPY_DATA_DIR",
                                               str(REPO.parent / "shared" / "cartopy-data")),
            **volumes,
            "FRAMECAST_STATIC_CACHE": str(self.volume_dirs["framecast-data"] / "cache"
                                          / "static-maps"),
            # local only
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.trigger_log_port),
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "FRAMECAST_MODELS_FILE": str(self.models_file),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(DEPLOY_AIRFLOW_DIR), os.environ.get("PYTHONPATH", "")) if p),
            # the upstream connection of the model this cluster runs
            "AIRFLOW_CONN_" + spec.conn_id.upper(): connection_json(self.upstream_url),
        }

    def env(self) -> dict[str, str]:
        """Environment of every component: this machine's, then :meth:`own_env`, overrides."""
        env = dict(os.environ)
        env.update(self.own_env())
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
        env.update(self.env_overrides)
        return env

    # ---------------------------------------------------------------- processes

    def airflow(self, *args: str, timeout: float = 300) -> str:
        """Run one ``airflow`` CLI command to completion; ClusterError carries its output."""
        proc = subprocess.run([str(VENV_BIN / "airflow"), *args], env=self.env(),
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise ClusterError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    def create_databases(self) -> None:
        """The cluster's own databases (dropped again by :meth:`stop`)."""
        for db in (self.airflow_db, self.metrics_db):
            _pg_admin(f'CREATE DATABASE "{db}"', self.pg_admin)
            self.created_dbs.append(db)

    def init(self, extra_env: dict[str, str] | None = None) -> str:
        """deploy/init.sh, as the compose service airflow-init runs it: migrate, pools, login."""
        env = {**self.env(), "FRAMECAST_POOLS_FILE": str(self.topology.pools_file),
               **(extra_env or {})}
        proc = subprocess.run(["bash", str(REPO / "deploy" / "init.sh")], env=env,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise ClusterError(f"deploy/init.sh failed ({proc.returncode}):\n"
                               f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    def _spawn(self, name: str, args: list[str], extra_env: dict[str, str] | None = None,
               drop_env: tuple[str, ...] = ()) -> None:
        env = dict(self.env())
        env.update(extra_env or {})
        for key in drop_env:
            env.pop(key, None)
        log = open(self.logs_dir / f"{name}.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc_env[name] = env  # what the process was started with (setproctitle hides it)
        self.procs[name] = subprocess.Popen(
            [str(VENV_BIN / "airflow"), *args], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=self.work)
        log.close()

    def start(self) -> None:
        """Create databases, migrate, create pools, start every component; undone on failure."""
        for d in (self.home, self.dags_dir, self.logs_dir, *self.volume_dirs.values()):
            d.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dags" / "framecast_models.py", self.dags_dir)
        try:
            self.create_databases()
            self.init()
            comps = self.topology.components
            api = comps["api-server"]
            self._spawn(api.name, [*api.command, "--port", str(self.api_port),
                                   "--host", "127.0.0.1"])
            self.wait_http(f"{self.api_url}/api/v2/monitor/health", timeout=180)
            for name in ("scheduler", "dag-processor", "triggerer"):
                self._spawn(name, list(comps[name].command))
            for instance, comp in self.workers.items():
                self._spawn(instance, worker_args(
                    comp, self.queue_names, f"{instance}-{self.tag}@{socket.gethostname()}",
                    self.worker_concurrency.get(comp.name, 1),
                ) + ["--skip-serve-logs"], {"FRAMECAST_HOSTNAME": instance},
                    # least privilege, as in docker-compose: no metadata DB, no Fernet key
                    drop_env=self.topology.env_not_on_workers)
        except BaseException:
            self.stop()
            raise

    def check_alive(self, allow_dead: tuple[str, ...] = ()) -> None:
        dead = {n: p.returncode for n, p in self.procs.items()
                if p.poll() is not None and n not in allow_dead}
        if dead:
            raise ClusterError(f"components exited: {dead}\n{self.logs_tail()}")

    def logs_tail(self, n: int = 2500) -> str:
        out = []
        for name in self.procs:
            log = self.logs_dir / f"{name}.log"
            if log.exists():
                out.append(f"--- {name} ---\n{log.read_text(errors='replace')[-n:]}")
        return "\n".join(out)

    def wait_http(self, url: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=5):
                    return
            except OSError:
                if time.monotonic() > end:
                    raise ClusterError(f"{url} did not answer in {timeout}s\n"
                                       f"{self.logs_tail()}") from None
                time.sleep(1)

    def kill_worker(self, instance: str) -> list[int]:
        """SIGKILL a worker and everything it started, as a machine or container dying would.

        Task processes run in process groups of their own, so the whole tree is collected
        first and each process killed, not only the worker's group. Returns the killed pids,
        all dead when this returns.
        """
        proc = self.procs[instance]
        tree = process_tree(proc.pid)
        kill_all(tree)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        alive = wait_dead(tree)
        if alive:
            raise ClusterError(f"{instance}: processes survived SIGKILL: {alive}")
        return [p.pid for p in tree]

    def stop(self) -> None:
        """Stop every component this cluster started (process groups), drop its databases."""
        trees = [p for proc in self.procs.values() for p in process_tree(proc.pid)]
        for p in self.procs.values():
            if p.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        kill_all(trees)  # task processes left behind in process groups of their own
        self.procs.clear()
        for db in reversed(self.created_dbs):
            try:
                _pg_admin(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', self.pg_admin)
            except Exception as exc:  # noqa: BLE001 - cleanup must not hide the real outcome
                print(f"could not drop database {db}: {exc}", file=sys.stderr)
        self.created_dbs.clear()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- metadata DB

    def sql(self, query: str, *params: Any) -> list[tuple]:
        import psycopg

        with psycopg.connect(f"{_pg_base(self.pg_admin)}/{self.airflow_db}") as conn:
            return conn.execute(query, params).fetchall()

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has serialized ``dag_id``."""
        end = time.monotonic() + timeout
        while not self.sql("SELECT 1 FROM serialized_dag WHERE dag_id = %s", dag_id):
            self.check_alive()
            if time.monotonic() > end:
                raise ClusterError(f"DAG {dag_id} not parsed in {timeout}s\n{self.logs_tail()}")
            time.sleep(1)

    def trigger(self, dag_id: str, logical_date: datetime, run_id: str) -> str:
        """Unpause ``dag_id`` and create run ``run_id``; the scheduler picks it up."""
        if logical_date > datetime.now(UTC):
            raise ClusterError(f"logical date {logical_date.isoformat()} is in the future: the "
                               "scheduler would not start the run; pick an earlier model run")
        self.airflow("dags", "unpause", dag_id)
        self.airflow("dags", "trigger", dag_id, "--logical-date", logical_date.isoformat(),
                     "--run-id", run_id)
        return run_id

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        rows = self.sql("SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s",
                        dag_id, run_id)
        return rows[0][0] if rows else None

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 600,
                 allow_dead: tuple[str, ...] = ()) -> str:
        """Until the run is success or failed; returns that state."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_alive(allow_dead)
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise ClusterError(f"{dag_id} {run_id}: not finished in {timeout}s (state "
                           f"{self.run_state(dag_id, run_id)})\n{self.logs_tail()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Current task instances: task, map index, label, state, try, hostname, queue, pool,
        start and end time (timezone-aware; the cycle benchmark's render phase)."""
        cols = ("task_id", "map_index", "rendered_map_index", "state", "try_number",
                "hostname", "queue", "pool", "start_date", "end_date")
        rows = self.sql(f"SELECT {', '.join(cols)} FROM task_instance WHERE dag_id = %s AND "
                        "run_id = %s ORDER BY task_id, map_index", dag_id, run_id)
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def task_history(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Earlier tries (``task_instance_history``): task, map index, try, state, hostname."""
        cols = ("task_id", "map_index", "try_number", "state", "hostname")
        rows = self.sql(f"SELECT {', '.join(cols)} FROM task_instance_history WHERE dag_id = %s "
                        "AND run_id = %s ORDER BY task_id, map_index, try_number",
                        dag_id, run_id)
        return [dict(zip(cols, r, strict=True)) for r in rows]


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


# --------------------------------------------------------------------------- the demo run


@contextmanager
def local_upstream(root: Path) -> Iterator[str]:
    """The local HTTP upstream serving ``root`` (DWD layout); yields its base URL."""
    from framecast.upstream import UpstreamServer

    with UpstreamServer(root) as up:
        yield up.url


def generate_sample_run(out_dir: Path, run_time: datetime, steps: list[int],
                        variables: list[str]) -> None:
    """An ICON-EU sample run in DWD's layout, written by ``framecast sample-data``.

    A child process, not an import: eccodes and psycopg's bundled libpq loaded into one process
    (in that order) crash it at exit, and this process talks to PostgreSQL.
    """
    from framecast.catalog import format_run

    cmd = [str(VENV_BIN / "framecast"), "sample-data", "--model", MODEL,
           "--run", format_run(run_time), "--steps", ",".join(str(s) for s in steps),
           "--out", str(out_dir), "--variables", ",".join(variables), "--bz2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def logical_date_for(run_time: datetime) -> datetime:
    """The logical date whose DAG run processes ``run_time`` (run time + availability delay)."""
    from framecast.catalog import get_model

    return run_time + get_model(MODEL).delay


def frames_on_disk(data_root: Path, run_time: datetime) -> list[str]:
    from framecast.catalog import format_run

    d = data_root / "frames" / MODEL / format_run(run_time)
    return sorted(p.relative_to(d).as_posix() for p in d.glob("*/*/*.png"))


def format_report(state: str, tis: list[dict[str, Any]], frames: list[str],
                  frames_dir: Path) -> str:
    """Human-readable summary: run state, who ran each task, frames written."""
    lines = [f"run state: {state}", "tasks (task [label] state try host queue):"]
    for t in tis:
        label = f" [{t['rendered_map_index']}]" if t["rendered_map_index"] else ""
        lines.append(f"  {t['task_id']}{label} {t['state']} try={t['try_number']} "
                     f"host={t['hostname']} queue={t['queue']}")
    hosts = sorted({t["hostname"] for t in tis if t["task_id"] == "chunk.render" and t["hostname"]})
    lines.append(f"render tasks ran on: {', '.join(hosts) or '-'}")
    lines.append(f"frames: {len(frames)} in {frames_dir}")
    return "\n".join(lines)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=8, help="forecast steps +0..+N-1 (default 8)")
    p.add_argument("--chunk-size", type=int, default=2, help="steps per render task")
    p.add_argument("--products", default="t2m_mslp", help="comma-separated products")
    p.add_argument("--regions", default="europe", help="comma-separated regions")
    p.add_argument("--run-time", default=None,
                   help="model run (YYYYMMDDHH; default: yesterday 00 UTC)")
    p.add_argument("--work-dir", type=Path, default=None,
                   help="where data, frames and logs go (default: a new temp folder)")
    p.add_argument("--timeout", type=float, default=900, help="seconds to wait for the run")
    p.add_argument("--keep", action="store_true",
                   help="keep the work folder (frames, logs) after stopping")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from framecast.catalog import format_run, get_model, needed_variables, parse_run

    args = _parse_args(argv)
    # default: yesterday's 00 UTC run, so its logical date is in the past (the scheduler does
    # not start runs whose logical date lies in the future)
    run_time = (parse_run(args.run_time) if args.run_time else
                datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                - timedelta(days=1))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="framecast-celery-"))
    work.mkdir(parents=True, exist_ok=True)
    steps = list(range(args.steps))
    products = args.products.split(",")
    models_file = write_models_file(work / "models.yaml", steps=steps,
                                    chunk_size=args.chunk_size, products=products,
                                    regions=args.regions.split(","))
    spec = get_model(MODEL, models_file)
    variables = list(needed_variables(spec))
    print(f"generating ICON-EU sample run {format_run(run_time)} ({len(steps)} steps, "
          f"{', '.join(variables)}) in {work / 'upstream'}", flush=True)
    generate_sample_run(work / "upstream", run_time, steps, variables)
    cluster = None

    def _interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _interrupted)
    try:
        with local_upstream(work / "upstream") as url:
            cluster = LocalCluster(work, url, models_file)
            print(f"starting Airflow (CeleryExecutor) on database {cluster.airflow_db}, "
                  f"api-server {cluster.api_url}, workers {', '.join(cluster.workers)}",
                  flush=True)
            with cluster:
                cluster.wait_for_dag(spec.dag_id)
                run_id = f"celery_local__{format_run(run_time)}"
                started = time.monotonic()
                cluster.trigger(spec.dag_id, logical_date_for(run_time), run_id)
                print(f"triggered {spec.dag_id} run {run_id}; waiting", flush=True)
                state = cluster.wait_run(spec.dag_id, run_id, timeout=args.timeout)
                elapsed = time.monotonic() - started
                tis = cluster.task_instances(spec.dag_id, run_id)
                data_root = cluster.volume_dirs["framecast-data"]
                frames = frames_on_disk(data_root, run_time)
                print(format_report(state, tis, frames,
                                    data_root / "frames" / MODEL / format_run(run_time)))
                print(f"run took {elapsed:.0f} s")
                if state != "success":
                    print(cluster.logs_tail(), file=sys.stderr)
                return 0 if state == "success" else 1
    except KeyboardInterrupt:
        print("interrupted: stopped everything this script started", file=sys.stderr)
        return 130
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        elif cluster is not None:
            print(f"kept {work}")


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "plugins"))
    raise SystemExit(main())


__all__ = ["Component", "LocalCluster", "Topology", "load_topology", "worker_args",
           "write_models_file", "format_report", "frames_on_disk", "logical_date_for"]
