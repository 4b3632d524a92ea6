#!/usr/bin/env python3
"""The servers the test suite needs: use the machine's when they answer, else start throwaway
ones under ``var/`` (Debian's PostgreSQL binaries with ``initdb``/``pg_ctl``, ``redis-server``).

    eval "$(python scripts/test_services.py up)"   # prints the export lines for the test run
    python scripts/test_services.py down            # stops only what ``up`` started

One variable names each server: ``FRAMECAST_TEST_PG_URL`` (a libpq URL of a role that may
CREATE DATABASE) and ``FRAMECAST_TEST_REDIS_URL``. When a variable is set explicitly it is used
as it is, reachable or not: the tests then fail naming the server (never skip) unless
``FRAMECAST_ALLOW_SKIP=1``. Why start servers at all: a fresh machine has the packages
(scripts/install-system-deps.sh) but no running cluster, and a test suite that skips there
would be green without testing deadlines, Celery, or the metrics store.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STATE_DIR = REPO / "var" / "test-services"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class ServiceError(RuntimeError):
    """A throwaway server could not be created or started (with the tool's output)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def pg_reachable(url: str, timeout: float = 3) -> str | None:
    """None when a connection to ``url`` works, else the reason."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=timeout):
            return None
    except psycopg.Error as exc:
        return str(exc).strip()


def redis_reachable(url: str, timeout: float = 3) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=timeout).ping()
        return None
    except redis.RedisError as exc:
        return str(exc).strip()


# ------------------------------------------------------------------ PostgreSQL


def pg_bindir() -> Path:
    """The newest Debian PostgreSQL server binaries (``initdb``/``pg_ctl`` are not on PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    if exe:
        return Path(exe).parent
    raise ServiceError("PostgreSQL server binaries (initdb) not found: install Debian's "
                       "'postgresql' package (scripts/install-system-deps.sh)")


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the ``postgres`` system user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise ServiceError(f"{what} failed ({proc.returncode}): {' '.join(cmd)}\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def pg_datadir(preferred: Path) -> Path:
    """``preferred`` when the server user can reach it, else a fresh folder under /tmp (a
    checkout in root's home, mode 700, is closed to the ``postgres`` user)."""
    preferred.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-x", str(preferred.parent)],
            capture_output=True).returncode == 0:
        return preferred
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"framecast-{preferred.name}-"))


def start_pg_cluster(datadir: Path, port: int | None = None) -> str:
    """initdb (trust auth, superuser ``postgres``) + pg_ctl start on 127.0.0.1; the URL."""
    bindir = pg_bindir()
    port = port or free_port()
    datadir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    datadir.chmod(0o700)
    if not (datadir / "PG_VERSION").exists():
        _run(_as_server_user([str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres",
                              "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]), "initdb")
    log = datadir / "server.log"
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={datadir}"
    _run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(log), "-w",
                          "-t", "60", "-o", opts, "start"]), "pg_ctl start")
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    end = time.monotonic() + 30
    while (reason := pg_reachable(url)) is not None:
        if time.monotonic() > end:
            raise ServiceError(f"throwaway PostgreSQL at {url} does not answer: {reason}")
        time.sleep(0.2)
    return url


def stop_pg_cluster(datadir: Path) -> None:
    _run(_as_server_user([str(pg_bindir() / "pg_ctl"), "-D", str(datadir), "-m", "fast", "-w",
                          "stop"]), "pg_ctl stop")


# ------------------------------------------------------------------ Redis


def start_redis(workdir: Path, port: int | None = None) -> tuple[str, int]:
    """A loopback ``redis-server`` without persistence; (URL, pid)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise ServiceError("redis-server not found: install Debian's 'redis-server' package "
                           "(scripts/install-system-deps.sh)")
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log = open(workdir / "redis.log", "ab")  # noqa: SIM115 - handed to the server process
    proc = subprocess.Popen([exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "no", "--dir", str(workdir)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    end = time.monotonic() + 30
    while (reason := redis_reachable(url, timeout=1)) is not None:
        if proc.poll() is not None or time.monotonic() > end:
            raise ServiceError(f"throwaway redis-server at {url} did not start: {reason}")
        time.sleep(0.2)
    return url, proc.pid


# ------------------------------------------------------------------ CLI


def up() -> dict[str, str]:
    """Decide the URLs; start what is missing (only for variables not set explicitly)."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state: dict[str, object] = {}
    env: dict[str, str] = {}
    pg = os.environ.get("FRAMECAST_TEST_PG_URL")
    if not pg:
        pg = DEFAULT_PG_URL
        if pg_reachable(pg) is not None:
            datadir = pg_datadir(STATE_DIR / f"pg-{os.getpid()}")
            pg = start_pg_cluster(datadir)
            state["pg_datadir"] = str(datadir)
            print(f"test-services: started a throwaway PostgreSQL at {pg}", file=sys.stderr)
    env["FRAMECAST_TEST_PG_URL"] = pg
    rd = os.environ.get("FRAMECAST_TEST_REDIS_URL")
    if not rd:
        rd = DEFAULT_REDIS_URL
        if redis_reachable(rd) is not None:
            rd, pid = start_redis(STATE_DIR / f"redis-{os.getpid()}")
            state["redis_pid"] = pid
            print(f"test-services: started a throwaway redis-server at {rd}", file=sys.stderr)
    env["FRAMECAST_TEST_REDIS_URL"] = rd
    if state:
        marker = STATE_DIR / f"started-{os.getpid()}.json"
        marker.write_text(json.dumps(state))
        env["FRAMECAST_TEST_SERVICES_STATE"] = str(marker)
    return env


def down() -> None:
    """Stop what ``up`` started (named by FRAMECAST_TEST_SERVICES_STATE); remove its data."""
    marker = Path(os.environ.get("FRAMECAST_TEST_SERVICES_STATE", "/nonexistent"))
    if not marker.is_file():
        return
    state = json.loads(marker.read_text())
    if "pg_datadir" in state:
        stop_pg_cluster(Path(state["pg_datadir"]))
        shutil.rmtree(state["pg_datadir"], ignore_errors=True)
    if "redis_pid" in state:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.kill(int(state["redis_pid"]), signal.SIGTERM)
    marker.unlink()


def main(argv: list[str]) -> int:
    if argv[1:] == ["up"]:
        try:
            env = up()
        except ServiceError as exc:
            print(f"test-services: {exc}", file=sys.stderr)
            return 1
        for k, v in env.items():
            print(f"export {k}={shlex.quote(v)}")
        return 0
    if argv[1:] == ["down"]:
        down()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
