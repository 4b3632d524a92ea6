"""The docker-compose deployment on a real Docker engine, for tests/deploy/test_compose_stack.py.

- :func:`docker_engine`: use the running engine, or start ``dockerd`` (host networking only:
  no bridge, no iptables) and stop it again afterwards.
- :func:`build_images`: the Debian-based stand-ins (deploy/local-images.sh) and the framecast
  image from the Dockerfile, with the machine's CA bundle as a build secret for pip.
- :class:`ComposeStack`: ``docker-compose`` with the loopback override (deploy/compose.loopback.yaml)
  under a project name of its own, on free loopback ports.
- :class:`AirflowApi`: the Airflow REST API with a real login (``POST /auth/token``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_OVERRIDE = ROOT / "deploy" / "compose.loopback.yaml"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
LOCAL_PREFIX = "framecast-local"


class StackError(RuntimeError):
    """A docker or docker-compose command failed (with its output)."""


def docker_exe() -> str:
    """The Docker CLI: ``$DOCKER``, else Debian's (its BuildKit handles ``--secret``)."""
    exe = os.environ.get("DOCKER") or ("/usr/bin/docker" if Path("/usr/bin/docker").exists()
                                       else shutil.which("docker"))
    if not exe:
        raise StackError("no docker CLI: install docker.io (scripts/install-system-deps.sh)")
    return exe


def docker(*args: str, timeout: float = 600, check: bool = True,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([docker_exe(), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise StackError(f"docker {' '.join(args)} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def engine_running() -> bool:
    return docker("info", "--format", "{{.ServerVersion}}", timeout=30,
                  check=False).returncode == 0


@contextmanager
def docker_engine(log_file: Path) -> Iterator[bool]:
    """A Docker engine for the duration; yields whether this call started it.

    An engine already running is used and left running. Otherwise ``dockerd`` is started the
    way this kind of machine allows (overlay2, no bridge network, no iptables rules: every
    container uses host networking) and terminated again on exit.
    """
    if engine_running():
        yield False
        return
    dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
    if not Path(dockerd).exists():
        raise StackError("dockerd not found: install docker.io (scripts/install-system-deps.sh)")
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [dockerd, "--storage-driver=overlay2", "--bridge=none", "--iptables=false",
             "--ip-forward=false"], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        end = time.monotonic() + 90
        while not engine_running():
            if proc.poll() is not None and not engine_running():
                raise StackError(f"dockerd exited ({proc.returncode}):\n"
                                 f"{log_file.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > end:
                raise StackError(f"dockerd did not answer in 90 s:\n"
                                 f"{log_file.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield proc.poll() is None
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    seconds: float
    size_bytes: int


def build_local_images() -> float:
    """deploy/local-images.sh (stand-ins for python, postgres, redis); returns seconds."""
    started = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "deploy" / "local-images.sh")],
                          capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "DOCKER": docker_exe()})
    if proc.returncode != 0:
        raise StackError(f"deploy/local-images.sh failed:\n{proc.stdout}\n{proc.stderr}")
    return time.monotonic() - started


def stage_natural_earth(cartopy_data: Path) -> None:
    """Copy the Natural Earth files the image needs into var/natural-earth (build context)."""
    import sys

    proc = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "preseed_natural_earth.py"), "--from",
         str(cartopy_data), "--data-dir", str(ROOT / "var" / "natural-earth")],
        capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise StackError(f"staging Natural Earth failed:\n{proc.stdout}\n{proc.stderr}")


def build_framecast_image(tag: str, log_file: Path) -> BuiltImage:
    """The Dockerfile on the Debian stand-in, pip given the machine's CA bundle as a secret."""
    args = ["build", "--network", "host", "--progress", "plain",
            "--build-arg", f"BASE_IMAGE={LOCAL_PREFIX}/python:3.11", "-t", tag]
    if HOST_CA.is_file():
        args += ["--secret", f"id=host-ca,src={HOST_CA}"]
    started = time.monotonic()
    proc = docker(*args, str(ROOT), timeout=2400, check=False,
                  env={**os.environ, "DOCKER_BUILDKIT": "1"})
    seconds = time.monotonic() - started
    log_file.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise StackError(f"docker build failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
    size = int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())
    return BuiltImage(tag, seconds, size)


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held open together while choosing)."""
    import socket

    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


PORT_VARS = ("FRAMECAST_PG_PORT", "FRAMECAST_REDIS_PORT", "FRAMECAST_UI_PORT",
             "FRAMECAST_SCHEDULER_HEALTH_PORT", "FRAMECAST_TRIGGER_LOG_PORT",
             "FRAMECAST_WORKER_LOG_PORT", "FRAMECAST_RENDER_WORKER_LOG_PORT")


def new_secrets() -> dict[str, str]:
    """Fresh values for every secret the compose file requires."""
    import secrets

    from cryptography.fernet import Fernet

    return {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "FRAMECAST_AIRFLOW_DB_PASSWORD": secrets.token_urlsafe(24),
        "FRAMECAST_CELERY_DB_PASSWORD": secrets.token_urlsafe(24),
        "FRAMECAST_METRICS_DB_PASSWORD": secrets.token_urlsafe(24),
        "REDIS_PASSWORD": secrets.token_urlsafe(24),
        "FRAMECAST_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "FRAMECAST_API_SECRET_KEY": secrets.token_urlsafe(48),
        "FRAMECAST_JWT_SECRET": secrets.token_urlsafe(64),
        "FRAMECAST_FERNET_KEY": Fernet.generate_key().decode(),
    }


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def host_network_copy(src: Path, dest: Path) -> Path:
    """``src`` without published ports, which Docker refuses next to host networking.

    Everything else stays as written (variables are interpolated when docker-compose reads the
    copy); an override cannot remove a key, so the test runs this copy plus the override.
    """
    import yaml

    doc = yaml.safe_load(src.read_text())
    for service in doc["services"].values():
        service.pop("ports", None)
    dest.write_text(yaml.safe_dump(doc, sort_keys=False))
    return dest


@dataclass
class ComposeStack:
    """docker-compose.yaml + the loopback override, as project ``fc<tag>``."""

    work: Path
    image: str
    env_file: Path
    models_file: Path
    variables: dict[str, str] = field(default_factory=dict)
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self) -> None:
        self.project = f"fctest{self.tag}"
        self.compose_file = host_network_copy(ROOT / "docker-compose.yaml",
                                              self.work / "docker-compose.yaml")
        ports = dict(zip(PORT_VARS, free_ports(len(PORT_VARS)), strict=True))
        self.ports = {k: int(v) for k, v in ports.items()}
        self.variables = {
            **{k: str(v) for k, v in ports.items()},
            "FRAMECAST_IMAGE": self.image,
            "FRAMECAST_POSTGRES_IMAGE": f"{LOCAL_PREFIX}/postgres:15",
            "FRAMECAST_REDIS_IMAGE": f"{LOCAL_PREFIX}/redis:7",
            "FRAMECAST_MODELS_FILE_HOST": str(self.models_file),
            **self.variables,
        }

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['FRAMECAST_UI_PORT']}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAMECAST_")}
        env.update(self.variables)
        env.update(extra)
        return env

    def compose(self, *args: str, timeout: float = 900, check: bool = True,
                env_file: Path | None = None, **extra_env: str) -> subprocess.CompletedProcess:
        exe = shutil.which("docker-compose")
        if exe is None:
            raise StackError("docker-compose not installed (scripts/install-system-deps.sh)")
        cmd = [exe, "--project-name", self.project, "--project-directory", str(ROOT),
               "-f", str(self.compose_file), "-f", str(LOOPBACK_OVERRIDE),
               "--env-file", str(env_file or self.env_file), *args]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                              env=self.env(**extra_env))
        if check and proc.returncode != 0:
            raise StackError(f"docker-compose {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}\n{self.logs()}")
        return proc

    def logs(self, tail: int = 40) -> str:
        exe = shutil.which("docker-compose")
        if exe is None:
            return ""
        with suppress(Exception):
            proc = subprocess.run(
                [exe, "--project-name", self.project, "--project-directory", str(ROOT),
                 "-f", str(self.compose_file), "-f", str(LOOPBACK_OVERRIDE),
                 "--env-file", str(self.env_file), "logs", "--no-color", "--tail", str(tail)],
                cwd=ROOT, capture_output=True, text=True, timeout=60, env=self.env())
            return proc.stdout[-12000:]
        return ""

    def containers(self, all_states: bool = True) -> list[str]:
        args = ["ps", "-q", "--filter", f"label=com.docker.compose.project={self.project}"]
        if all_states:
            args.insert(1, "-a")
        return docker(*args, timeout=60).stdout.split()

    def volumes(self) -> list[str]:
        return docker("volume", "ls", "-q", "--filter",
                      f"label=com.docker.compose.project={self.project}",
                      timeout=60).stdout.split()

    def volume_path(self, name: str) -> Path:
        """Where a named volume of this project lives on the host (the engine's data root)."""
        out = docker("volume", "inspect", "--format", "{{.Mountpoint}}",
                     f"{self.project}_{name}", timeout=60).stdout.strip()
        return Path(out)

    def task_log_tails(self, run_id: str, states: tuple[str, ...] = ("failed", "up_for_retry"),
                       api: AirflowApi | None = None, n: int = 3000) -> str:
        """The ends of the task logs (airflow-logs volume) of the run's failed or retried tries."""
        logs = self.volume_path("airflow-logs")
        out = []
        for path in sorted(logs.glob(f"dag_id=*/run_id={run_id}/task_id=*/**/attempt=*.log")):
            text = path.read_text(errors="replace")
            if any(w in text for w in ("Traceback", "ERROR", "error")):
                out.append(f"--- {path.relative_to(logs)} ---\n{text[-n:]}")
        return "\n".join(out) or f"(no task log with an error for {run_id})"

    def save_logs(self, dest: Path) -> None:
        """Keep the task logs (volume) and container logs before ``down -v`` removes them."""
        dest.mkdir(parents=True, exist_ok=True)
        with suppress(Exception):
            shutil.copytree(self.volume_path("airflow-logs"), dest / "airflow-logs",
                            dirs_exist_ok=True)
        with suppress(Exception):
            (dest / "containers.log").write_text(self.logs(tail=400))

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "20", timeout=300,
                     check=False)


class ApiError(RuntimeError):
    """The REST API answered with an error status."""


@dataclass
class AirflowApi:
    """The Airflow 3 REST API (``/api/v2``) with a bearer token from a real login."""

    base_url: str
    username: str
    password: str
    token: str | None = None

    def _request(self, method: str, path: str, body: Any = None,
                 auth: bool = True) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if auth and self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=90) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw)
            except ValueError:
                return exc.code, raw.decode(errors="replace")

    def login(self) -> str:
        status, doc = self._request("POST", "/auth/token", {
            "username": self.username, "password": self.password}, auth=False)
        if status not in (200, 201) or not isinstance(doc, dict) or "access_token" not in doc:
            raise ApiError(f"login as {self.username} failed ({status}): {doc}")
        self.token = doc["access_token"]
        return self.token

    def call(self, method: str, path: str, body: Any = None) -> Any:
        status, doc = self._request(method, "/api/v2" + path, body)
        if status >= 400:
            raise ApiError(f"{method} /api/v2{path} -> {status}: {doc}")
        return doc

    def status(self, method: str, path: str, body: Any = None) -> int:
        return self._request(method, "/api/v2" + path, body)[0]

    def unpause(self, dag_id: str) -> dict:
        return self.call("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, run_id: str, logical_date: str) -> dict:
        return self.call("POST", f"/dags/{dag_id}/dagRuns",
                         {"dag_run_id": run_id, "logical_date": logical_date})

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        doc = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        return doc["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict]:
        doc = self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/"
                               f"{map_index}/tries")
        return doc["task_instances"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float,
                 on_poll=None) -> str:
        end = time.monotonic() + timeout
        state = None
        while time.monotonic() < end:
            try:
                state = self.run(dag_id, run_id)["state"]
            except (TimeoutError, urllib.error.URLError):  # a busy api-server: ask again
                time.sleep(2)
                continue
            if state in ("success", "failed"):
                return state
            if on_poll is not None:
                on_poll()
            time.sleep(2)
        raise TimeoutError(f"{dag_id} {run_id} not finished in {timeout} s (state {state})")
