"""A real Airflow 3 deployment for one test module: api-server, scheduler, dag-processor and
triggerer against a throw-away PostgreSQL database, plus a loopback SMTP server and a UDP socket
that receives StatsD packets.

Why real processes: deadlines are evaluated by the scheduler and their callbacks run in the
triggerer; tasks reach the api-server's Execution API; none of that happens under ``dags test``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import services

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))
from framecast_airflow.localstack import StackError, free_port, wait_http  # noqa: E402


class Inbox:
    """aiosmtpd handler keeping every received message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def matching(self, text: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if text in str(m["Subject"])]


@dataclass
class Stack:
    home: Path
    env: dict[str, str]
    api_url: str
    airflow_db: str
    metrics_db: str
    out_dir: Path
    inbox: Inbox
    udp: socket.socket
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    packets: list[str] = field(default_factory=list)

    def sql(self, query: str, *params) -> list[tuple]:
        import psycopg

        with psycopg.connect(services.pg_url(self.airflow_db)) as conn:
            return conn.execute(query, params).fetchall()

    def run_state(self, dag_id: str, run_id: str | None = None) -> tuple[str, object] | None:
        """(state, queued_at) of the DAG's run ``run_id`` (default: any one of its runs)."""
        if run_id is None:
            rows = self.sql("SELECT state, queued_at FROM dag_run WHERE dag_id = %s", dag_id)
        else:
            rows = self.sql("SELECT state, queued_at FROM dag_run WHERE dag_id = %s "
                            "AND run_id = %s", dag_id, run_id)
        return rows[0] if rows else None

    def wait_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the dag-processor has serialised ``dag_id`` (the scheduler can run it)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_alive()
            if self.sql("SELECT 1 FROM serialized_dag WHERE dag_id = %s", dag_id):
                return
            time.sleep(1)
        raise AssertionError(f"{dag_id} never parsed\n{self.logs_tail()}")

    def wait_run(self, dag_id: str, states=("success", "failed"), timeout: float = 240,
                 run_id: str | None = None) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_alive()
            st = self.run_state(dag_id, run_id)
            if st and st[0] in states:
                return st[0]
            time.sleep(1)
        raise AssertionError(f"{dag_id}: no run reached {states} in {timeout}s; "
                             f"state {self.run_state(dag_id, run_id)}\n{self.logs_tail()}")

    def wait_mail(self, text: str, timeout: float = 120) -> list[Message]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.inbox.matching(text)
            if got:
                return got
            self.check_alive()
            time.sleep(0.5)
        raise AssertionError(f"no e-mail with {text!r} in {timeout}s\n{self.logs_tail()}")

    def collect_udp(self) -> None:
        """Read StatsD packets until the socket closes (a thread: Airflow's own metrics would
        otherwise fill the socket buffer and drop the packets the tests look for)."""
        self.udp.settimeout(0.5)
        while True:
            try:
                data, _ = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self.inbox.lock:
                self.packets.extend(data.decode(errors="replace").splitlines())

    def statsd_lines(self) -> list[str]:
        with self.inbox.lock:
            return list(self.packets)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow components exited: {dead}\n{self.logs_tail()}")

    def logs_tail(self, n: int = 3000) -> str:
        out = []
        for name in self.procs:
            log = self.home / f"{name}.log"
            if log.exists():
                out.append(f"--- {name} ---\n{log.read_text(errors='replace')[-n:]}")
        return "\n".join(out)


def postgres_available() -> str | None:
    """None when the test PostgreSQL (FRAMECAST_TEST_PG_URL) answers, else the reason."""
    return services.pg_reason()


def start_stack(tmp: Path, dags: list[Path], before_start=None,
                extra_env: dict[str, str] | None = None) -> Stack:
    """Start everything; ``before_start(stack)`` runs after the DBs exist, before the scheduler.
    ``extra_env`` is added to every component's environment. The SMTP test server is both the
    ``fc_smtp`` connection and ``smtp_default`` (what the shipped DAGs' alerts use)."""
    from aiosmtpd.controller import Controller

    airflow_db, metrics_db = services.new_database("fc_af"), services.new_database("fc_mx")

    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))

    home = tmp / "airflow"
    dags_dir = home / "dags"
    dags_dir.mkdir(parents=True)
    for d in dags:
        shutil.copy(d, dags_dir / d.name)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_dir),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": services.pg_url(airflow_db, "psycopg2"),
        "AIRFLOW__API__BASE_URL": api_url,
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
        "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(udp.getsockname()[1]),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW_CONN_FC_SMTP": json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0, "timeout": 10,
                      "from_email": "framecast@example.com"},
        }),
        "FRAMECAST_METRICS_DB": services.pg_url(metrics_db, "psycopg"),
        "FC_TEST_OUT": str(tmp / "out"),
        "FC_TEST_UI": api_url,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    })
    env["AIRFLOW_CONN_SMTP_DEFAULT"] = env["AIRFLOW_CONN_FC_SMTP"]
    env.update(extra_env or {})
    stack = Stack(home=home, env=env, api_url=api_url, airflow_db=airflow_db,
                  metrics_db=metrics_db, out_dir=tmp / "out", inbox=inbox, udp=udp)
    stack._smtp = smtp  # type: ignore[attr-defined]
    threading.Thread(target=stack.collect_udp, name="statsd-sink", daemon=True).start()
    try:
        subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env, check=True,
                       capture_output=True, timeout=300)
        if before_start:
            before_start(stack)
        _spawn(stack, "api-server", ["api-server", "--port", str(port), "--host", "127.0.0.1"])
        # tasks call the api-server's Execution API: it must answer before anything is scheduled
        try:
            wait_http(f"{api_url}/api/v2/monitor/health", 180, stack.check_alive)
        except StackError:
            raise AssertionError("api-server did not come up\n" + stack.logs_tail()) from None
        for name in ("dag-processor", "scheduler", "triggerer"):
            _spawn(stack, name, [name])
    except BaseException:
        stop_stack(stack)
        raise
    return stack


def _spawn(stack: Stack, name: str, args: list[str]) -> None:
    log = open(stack.home / f"{name}.log", "wb")  # noqa: SIM115 - lives as long as the process
    stack.procs[name] = subprocess.Popen(
        [str(VENV_BIN / "airflow"), *args], env=stack.env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_stack(stack: Stack) -> None:
    """Stop the processes this stack started (their own process groups), drop the databases."""
    for p in stack.procs.values():
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in stack.procs.values():
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
    stack._smtp.stop()  # type: ignore[attr-defined]
    stack.udp.close()
    from framecast.metrics.store import get_engine

    get_engine.cache_clear()
    for db in (stack.airflow_db, stack.metrics_db):
        try:
            services.drop_database(db)
        except Exception as exc:  # noqa: BLE001 - cleanup must not hide the test's outcome
            print(f"could not drop {db}: {exc}", file=sys.stderr)
