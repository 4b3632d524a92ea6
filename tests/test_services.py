"""The suite's own servers: throwaway PostgreSQL/Redis start and stop, and a PostgreSQL that is
not there fails a run (naming it) instead of skipping it.

The machine's PostgreSQL is never touched: these tests start their own cluster under var/ on a
free port, stop it, and point ``FRAMECAST_TEST_PG_URL`` of a child pytest run at it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _script():
    name = "framecast_test_services_script"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "test_services.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def stopped_cluster_url():
    """A throwaway cluster that really ran (a query answered) and was then stopped: its URL."""
    ts = _script()
    datadir = ts.pg_datadir(ROOT / "var" / "test-services" /
                            f"pg-stopped-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    url = ts.start_pg_cluster(datadir)
    try:
        import psycopg

        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        ts.stop_pg_cluster(datadir)
    assert ts.pg_reachable(url) is not None  # stopped: nothing answers there any more
    yield url
    import shutil

    shutil.rmtree(datadir, ignore_errors=True)


def _child_pytest(url: str, allow_skip: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FRAMECAST_ALLOW_SKIP", "PYTEST_XDIST", "PYTEST_CURRENT"))}
    env["FRAMECAST_TEST_PG_URL"] = url
    if allow_skip:
        env["FRAMECAST_ALLOW_SKIP"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "tests/metrics/test_store.py", "-k", "postgresql"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_stopped_postgres_fails_the_run_and_names_it(stopped_cluster_url):
    """With FRAMECAST_ALLOW_SKIP unset, the PostgreSQL tests of a run against a stopped server
    fail (exit 1) with 'PostgreSQL not reachable at <url>', and nothing is skipped. Guards the
    old behaviour (pytest.skip in the fixtures), which made such a run green."""
    proc = _child_pytest(stopped_cluster_url, allow_skip=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert f"PostgreSQL not reachable at {stopped_cluster_url}" in out, out[-3000:]
    assert " failed" in out and "skipped" not in out, out[-3000:]


def test_allow_skip_makes_the_skip_visible(stopped_cluster_url):
    """FRAMECAST_ALLOW_SKIP=1 skips instead, and -rs (pyproject addopts) lists why."""
    proc = _child_pytest(stopped_cluster_url, allow_skip=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "SKIPPED" in out and "PostgreSQL not reachable" in out, out[-3000:]


def test_throwaway_redis_starts_answers_and_stops(tmp_path):
    import signal

    import redis

    ts = _script()
    url, pid = ts.start_redis(tmp_path / "redis")
    try:
        r = redis.Redis.from_url(url)
        key = f"fc-test-{uuid.uuid4().hex}"
        r.set(key, "x")
        assert r.get(key) == b"x"
    finally:
        os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)
    assert ts.redis_reachable(url, timeout=1) is not None


def test_up_uses_an_explicit_url_as_it_is(tmp_path):
    """An explicitly set variable is never replaced by a throwaway server, reachable or not:
    the run must then fail on it (the check above), not silently test something else."""
    env = {**os.environ, "FRAMECAST_TEST_PG_URL": "postgresql://postgres@127.0.0.1:1/postgres",
           "FRAMECAST_TEST_REDIS_URL": "redis://127.0.0.1:1/0"}
    proc = subprocess.run([sys.executable, "scripts/test_services.py", "up"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "export FRAMECAST_TEST_PG_URL=postgresql://postgres@127.0.0.1:1/postgres" in proc.stdout
    assert "FRAMECAST_TEST_SERVICES_STATE" not in proc.stdout  # nothing was started


def test_install_system_deps_fails_when_it_cannot_install():
    """As a non-root user on a machine without the tools, the script exits 1 naming them
    (it used to print a warning and exit 0, so `make test` went on and skipped)."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "nobody", "--", "env", "PATH=/nonexistent", "/bin/bash",
               str(ROOT / "scripts" / "install-system-deps.sh")]
    else:
        cmd = ["env", "PATH=/nonexistent", "/bin/bash",
               str(ROOT / "scripts" / "install-system-deps.sh")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "missing chromium chromium-driver docker-compose redis-server" in proc.stderr
