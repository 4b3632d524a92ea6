"""The embedded default running for real: api-server, scheduler, dag-processor and triggerer with
the LocalExecutor on the SQLite metadata DB of a :class:`~framecast_airflow.localenv.LocalAirflow`
home. Used by the demo (``make demo``), the UI (``make ui``), the cycle benchmark and the tests.

Why not ``airflow dags test``: it runs one task after the other in one process, so a run uses
one core and nothing that needs the scheduler or the triggerer (deadlines, deferral, pools) is
exercised. Why not ``airflow standalone``: it sizes nothing to the machine and hides its
components' logs; here every component logs to ``<home>/<component>.log``.

What keeps SQLite reliable with several writers (no metadata-DB error in any log over the
demo run, the benchmark runs and tests/dags/test_embedded_default.py; docs/airflow.md):

- the database is in WAL journal mode (readers never block the writer; set once, persistent);
- every connection waits up to :data:`SQLITE_BUSY_TIMEOUT` seconds for a lock instead of
  failing at once with "database is locked" (``sql_alchemy_connect_args``);
- task slots are bounded to the cores (``parallelism``, ``default_pool``, per-DAG limit), so the
  render tasks never outnumber the CPUs and the API keeps answering.

Heavy imports are paid once: ``deploy/airflow/airflow_local_settings.py`` (on ``PYTHONPATH``
here) imports the render stack in the scheduler before the LocalExecutor forks its workers, and
task processes are forked from those workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from framecast_airflow.localenv import REPO, LocalAirflow

#: Seconds a connection waits for a SQLite lock before "database is locked".
SQLITE_BUSY_TIMEOUT = 60
#: ``[database] sql_alchemy_connect_args`` / ``..._async`` point here (sqlite3/aiosqlite kwargs).
SQLITE_CONNECT_ARGS = {"timeout": SQLITE_BUSY_TIMEOUT}
COMPONENTS = ("api-server", "dag-processor", "scheduler", "triggerer")
#: Command-line arguments per component. The scheduler and the triggerer would each start a log
#: server listening on every interface; on one machine the api-server reads the task and trigger
#: log files directly, so they are not started and nothing listens beyond loopback.
COMPONENT_ARGS = {"scheduler": ["--skip-serve-logs"], "triggerer": ["--skip-serve-logs"]}
#: Lines in any component's or task's log that mean the metadata DB failed under load.
DB_ERROR = re.compile(r"database is locked|Database error|OperationalError")
DEPLOY_AIRFLOW_DIR = REPO / "deploy" / "airflow"


class StackError(RuntimeError):
    """A component did not start or died, an API call failed, or a run did not finish in time."""


def free_port() -> int:
    """A free TCP port on loopback (for the api-server and the log servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, alive=lambda: None) -> None:
    """Wait until ``url`` answers; ``alive()`` raises when a component died meanwhile."""
    end = time.monotonic() + timeout
    while True:
        alive()
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > end:
                raise StackError(f"{url} did not answer within {timeout:.0f} s") from None
            time.sleep(0.5)


def slots(cpus: int | None = None) -> int:
    """Task slots of the embedded default: one per core (at least 2, so a sensor never starves
    the work it waits for)."""
    return max(2, cpus or os.cpu_count() or 1)


#: The pool every render task of the embedded default runs in: one slot, so one chunk renders at
#: a time with every core (``FRAMECAST_RENDER_PROCESSES``), instead of each chunk waiting on one
#: core; the other task slots download and publish meanwhile.
RENDER_POOL = "framecast_render"


def stack_env(home: LocalAirflow, port: int, cpus: int | None = None) -> dict[str, str]:
    """Settings of the running embedded default on top of ``home``'s environment."""
    n = slots(cpus)
    mod = f"{__name__}.SQLITE_CONNECT_ARGS"
    api = f"http://127.0.0.1:{port}"
    env = home.env()
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(n),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(n),
        "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": str(n),
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": mod,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC": mod,
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        # deploy/airflow/airflow_local_settings.py puts chunk.render tasks in this pool
        "FRAMECAST_RENDER_POOL": RENDER_POOL,
        "FRAMECAST_RENDER_PROCESSES": str(n),
        "PYTHONPATH": os.pathsep.join(p for p in (str(DEPLOY_AIRFLOW_DIR),
                                                  str(REPO / "plugins"),
                                                  os.environ.get("PYTHONPATH", "")) if p),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    # Static map layers shared by all task processes (framecast.render.static_cache).
    data_root = env.get("FRAMECAST_DATA_ROOT") or str(home.home.resolve() / "framecast")
    env.setdefault("FRAMECAST_STATIC_CACHE", str(Path(data_root) / "cache" / "static-maps"))
    # One secret per home, so a restarted api-server accepts the scheduler's task tokens.
    secret = home.home / "jwt_secret"
    if not secret.exists():
        secret.write_text(uuid.uuid4().hex)
    env.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", secret.read_text().strip())
    env.setdefault("AIRFLOW__API__SECRET_KEY", env["AIRFLOW__API_AUTH__JWT_SECRET"])
    return env


def enable_wal(db_path: Path) -> None:
    """Put the SQLite metadata DB in WAL mode (persistent in the file; idempotent)."""
    with sqlite3.connect(db_path, timeout=SQLITE_BUSY_TIMEOUT) as db:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise StackError(f"{db_path}: SQLite refused WAL journal mode (got {mode!r})")


def log_db_errors(logs: Iterable[Path]) -> list[str]:
    """Lines of ``logs`` reporting a metadata-DB failure (:data:`DB_ERROR`), wherever the
    deployment keeps its logs (the Celery benchmark scans its cluster's the same way)."""
    out = []
    for log in logs:
        if log.is_file():
            out += [f"{log.name}: {line.strip()[:300]}"
                    for line in log.read_text(errors="replace").splitlines()
                    if DB_ERROR.search(line)]
    return out


def db_errors(home: Path) -> list[str]:
    """Lines of the component logs (``<home>/<component>.log``) and task logs reporting a
    metadata-DB failure."""
    home = Path(home).resolve()
    return log_db_errors([home / f"{n}.log" for n in COMPONENTS]
                         + sorted((home / "logs").rglob("*.log")))


def own_cpu_seconds(procs: Mapping[str, subprocess.Popen]) -> dict[str, float]:
    """CPU time each process of ``procs`` used itself so far (not its task children): what
    Airflow's own machinery takes from the cores the tasks render on. Exited ones are left out."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, p in procs.items():
        try:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited
        out[name] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return out


def _listen_table() -> dict[str, tuple[str, int]]:
    """Socket inode -> (address, port) of the machine's listening TCP sockets (/proc/net)."""
    import ipaddress

    out: dict[str, tuple[str, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] != "0A":  # TCP_LISTEN
                continue
            hexaddr, hexport = cols[1].split(":")
            raw = bytes.fromhex(hexaddr)
            # /proc prints the address as 32-bit words in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            out[cols[9]] = (str(ipaddress.ip_address(raw)), int(hexport, 16))
    return out


def listening_sockets(pgids: set[int]) -> list[tuple[int, str, int]]:
    """(process group, address, port) of the TCP sockets listened on by any process of the
    process groups ``pgids`` (each component runs in a group of its own, with its children)."""
    table = _listen_table()
    found: set[tuple[int, str, int]] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            pgid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
            if pgid not in pgids:
                continue
            for fd in (proc / "fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in table:
                    found.add((pgid, *table[link[8:-1]]))
        except OSError:
            continue  # exited meanwhile, or not ours to read
    return sorted(found)


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, pgrp, session, ... ([] if gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def parent_pid(pid: int) -> int:
    """The parent of ``pid`` from /proc/PID/stat (0 once it has exited or cannot be read)."""
    fields = _stat_fields(pid)
    return int(fields[1]) if len(fields) > 1 else 0


def processes_of(home: Path, sessions: Iterable[int] = ()) -> list[int]:
    """Processes of this user still running with ``AIRFLOW_HOME`` = ``home``, or in one of
    ``sessions`` (the components' pids: each starts its own session, which the task processes
    it forks stay in), this process and its ancestors excepted.

    Why both: a task process retitles itself, which overwrites the memory its environment is
    read from, so only its session still tells whose it is, also after its component died.
    """
    mine: set[int] = set()
    pid = os.getpid()
    while pid > 1:
        mine.add(pid)
        pid = parent_pid(pid)
    sessions = {int(s) for s in sessions}
    marker = f"AIRFLOW_HOME={Path(home).resolve()}".encode()
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) in mine:
            continue
        fields = _stat_fields(int(proc.name))
        if len(fields) > 3 and int(fields[3]) in sessions:
            out.append(int(proc.name))
            continue
        try:
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                out.append(int(proc.name))
        except OSError:
            continue  # exited meanwhile, or another user's
    return sorted(out)


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1, also written as an IPv4-mapped IPv6 address."""
    import ipaddress

    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


@dataclass
class RunningStack:
    """The four components of one home, their logs, and REST API helpers."""

    airflow: LocalAirflow
    env: dict[str, str]
    api_url: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _token: str | None = None

    @property
    def home(self) -> Path:
        return self.airflow.home.resolve()

    def log_path(self, name: str) -> Path:
        return self.home / f"{name}.log"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time each component process used itself so far (:func:`own_cpu_seconds`)."""
        return own_cpu_seconds(self.procs)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise StackError(f"Airflow components exited: {dead}\n{self.logs_tail()}")

    def logs_tail(self, n: int = 3000) -> str:
        return "\n".join(f"--- {name} ---\n{self.log_path(name).read_text(errors='replace')[-n:]}"
                         for name in self.procs if self.log_path(name).exists())

    def db_errors(self) -> list[str]:
        return db_errors(self.home)

    def listening(self) -> list[tuple[str, str, int]]:
        """(component, address, port) of every TCP socket the components and their task
        processes listen on (what must stay on loopback)."""
        groups = {p.pid: name for name, p in self.procs.items()}
        return [(groups[pgid], addr, port) for pgid, addr, port in listening_sockets(set(groups))]

    # ---- REST API ------------------------------------------------------------------------
    def token(self) -> str:
        """A JWT from the simple auth manager (every user is an admin on this local home)."""
        if self._token is None:
            with urllib.request.urlopen(f"{self.api_url}/auth/token", timeout=30) as resp:
                self._token = json.loads(resp.read())["access_token"]
        return self._token

    def api(self, method: str, path: str, body: dict | None = None,
            timeout: float = 60) -> dict:
        """Call ``/api/v2<path>``; StackError names the call and the server's answer."""
        req = urllib.request.Request(
            f"{self.api_url}/api/v2{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token()}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise StackError(f"{method} /api/v2{path}: HTTP {exc.code} "
                             f"{exc.read().decode(errors='replace')[:500]}") from exc

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has serialized ``dag_id``."""
        end = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                self.api("GET", f"/dags/{dag_id}")
                return
            except StackError:
                if time.monotonic() > end:
                    raise StackError(f"DAG {dag_id} not parsed within {timeout:.0f} s\n"
                                     + self.logs_tail()) from None
                time.sleep(1)

    def trigger(self, dag_id: str, logical_date: str, conf: dict | None = None,
                run_id: str | None = None, replace: bool = False) -> str:
        """Unpause ``dag_id`` and trigger one run through the REST API; returns its run id.

        A logical date has at most one run: ``replace`` deletes an earlier run of the same
        logical date first (re-running the demo), otherwise the API answers 409.
        """
        if replace:
            q = urllib.parse.quote(logical_date)
            runs = self.api("GET", f"/dags/{dag_id}/dagRuns?logical_date_gte={q}"
                                   f"&logical_date_lte={q}")["dag_runs"]
            for old in runs:
                self.api("DELETE", f"/dags/{dag_id}/dagRuns/{old['dag_run_id']}")
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        body = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        return self.api("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 3600,
                 on_poll=None) -> str:
        """Poll the run through the REST API until it finishes; returns its final state.
        ``on_poll(stack)`` runs on every poll (the tests make extra API calls there)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_alive()
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return state
            if on_poll is not None:
                on_poll(self)
            time.sleep(2)
        raise StackError(f"{dag_id} run {run_id} not finished after {timeout:.0f} s\n"
                         + self.logs_tail())

    def stop(self) -> None:
        """Stop the components (each its own process group: task processes go with them),
        then any process of this home that left its group (none is left running)."""
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for pid in processes_of(self.home, sessions=self.sessions()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def sessions(self) -> list[int]:
        """The components' sessions (each component leads its own)."""
        return [p.pid for p in self.procs.values()]

    def __enter__(self) -> RunningStack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(airflow: LocalAirflow, port: int | None = None, cpus: int | None = None,
          env: dict[str, str] | None = None) -> RunningStack:
    """Start the embedded default on ``airflow``'s (migrated) home; use as a context manager.

    ``env`` overrides the computed settings (e.g. ``AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE``).
    """
    port = port or free_port()
    full = stack_env(airflow, port, cpus)
    full.update(env or {})
    enable_wal(airflow.db_path)
    airflow.airflow("pools", "set", RENDER_POOL, "1",
                    "framecast rendering: one chunk at a time, on every core")
    stack = RunningStack(airflow=airflow, env=full, api_url=f"http://127.0.0.1:{port}")
    exe = Path(sys.executable).with_name("airflow")
    try:
        for name in COMPONENTS:
            log = open(stack.log_path(name), "wb")  # noqa: SIM115 - lives as long as the process
            stack.procs[name] = subprocess.Popen([str(exe), name, *COMPONENT_ARGS.get(name, [])],
                                                 env=full, stdout=log,
                                                 stderr=subprocess.STDOUT, start_new_session=True)
            if name == "api-server":
                # tasks call the Execution API: it must answer before anything is scheduled
                wait_http(f"{stack.api_url}/api/v2/monitor/health", 180, stack.check_alive)
    except BaseException:
        stack.stop()
        raise
    return stack
