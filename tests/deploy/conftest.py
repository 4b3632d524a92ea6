"""Fixtures for the deployment tests: the local-topology script as a module, the topology."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import services

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "framecast.env.example"


def _load_script():
    """scripts/celery_local.py is a script, not a package module: load it by path, once, with
    the test servers (tests/services.py) as its PostgreSQL and Redis."""
    name = "framecast_celery_local"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "celery_local.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses resolve annotations through sys.modules
    saved = {k: os.environ.get(k) for k in ("FRAMECAST_PG_ADMIN", "FRAMECAST_REDIS_URL")}
    os.environ.update(FRAMECAST_PG_ADMIN=services.pg_url(), FRAMECAST_REDIS_URL=services.REDIS_URL)
    try:
        spec.loader.exec_module(mod)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return mod


@pytest.fixture(scope="session")
def celery_local():
    return _load_script()


@pytest.fixture(scope="session")
def topology(celery_local):
    return celery_local.load_topology()


def run_compose(*args: str, env_file: Path | None = ENV_EXAMPLE,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``docker-compose [--env-file F] <args>`` in the repository; fails without the tool."""
    exe = services.require_executable("docker-compose", "docker-compose")
    cmd = [exe, "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yaml")]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    return subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=env)


@pytest.fixture(scope="session")
def compose():
    """``compose(*args, env_file=..., env=...)``: run docker-compose on the repository."""
    return run_compose


@pytest.fixture(scope="session")
def compose_config() -> dict:
    """The compose file as docker-compose resolves it (anchors merged, variables filled)."""
    import yaml

    proc = run_compose("config")
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)
