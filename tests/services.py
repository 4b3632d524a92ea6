"""The real servers and tools tests use, and what a test does when one is missing: it fails.

One variable names each server (``make test`` sets them, starting throwaway servers when the
machine has none, see scripts/test_services.py):

* ``FRAMECAST_TEST_PG_URL``: libpq URL of a PostgreSQL role that may CREATE DATABASE;
  default ``postgresql://postgres@127.0.0.1:5432/postgres``.
* ``FRAMECAST_TEST_REDIS_URL``: default ``redis://127.0.0.1:6379/0``.

A missing server or tool fails the test with a message naming it; ``FRAMECAST_ALLOW_SKIP=1``
turns that into a skip (reported by ``-rs``). Other test runs share these servers at the same
time: every database a test creates has a unique name (:func:`temp_database`).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PG_URL = os.environ.get("FRAMECAST_TEST_PG_URL") or DEFAULT_PG_URL
REDIS_URL = os.environ.get("FRAMECAST_TEST_REDIS_URL") or DEFAULT_REDIS_URL


def missing(reason: str) -> None:
    """Fail (default) or skip (``FRAMECAST_ALLOW_SKIP=1``) because ``reason``."""
    if os.environ.get("FRAMECAST_ALLOW_SKIP") == "1":
        pytest.skip(reason)
    pytest.fail(f"{reason} (a missing service is a failure; FRAMECAST_ALLOW_SKIP=1 skips)",
                pytrace=False)


def pg_url(database: str | None = None, driver: str | None = None) -> str:
    """The test server's URL for ``database`` (default: the admin database), SQLAlchemy-style
    with ``driver`` (``psycopg``/``psycopg2``) or plain libpq without."""
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    if database is not None:
        url = url.set(database=database)
    url = url.set(drivername=f"postgresql+{driver}" if driver else "postgresql")
    return url.render_as_string(hide_password=False)


def pg_reason() -> str | None:
    """None when the test PostgreSQL answers, else why not (naming it and its URL)."""
    import psycopg

    try:
        with psycopg.connect(pg_url(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return (f"PostgreSQL not reachable at {pg_url()} (FRAMECAST_TEST_PG_URL): "
                f"{str(exc).strip()}")


def require_postgres() -> str:
    """The admin URL of the test PostgreSQL; fails the test when it does not answer."""
    reason = pg_reason()
    if reason:
        missing(reason)
    return pg_url()


def redis_reason() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        return None
    except redis.RedisError as exc:
        return f"Redis not reachable at {REDIS_URL} (FRAMECAST_TEST_REDIS_URL): {exc}"


def require_redis() -> str:
    reason = redis_reason()
    if reason:
        missing(reason)
    return REDIS_URL


def require_executable(name: str, package: str) -> str:
    """Path of ``name``; fails naming the Debian package when it is not installed."""
    exe = shutil.which(name)
    if exe is None:
        missing(f"{name} not installed (Debian package {package}; "
                "scripts/install-system-deps.sh installs it)")
    return exe


def admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(pg_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def new_database(prefix: str) -> str:
    """CREATE a uniquely named database (concurrent runs share the server); its name."""
    require_postgres()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin_sql(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def temp_database(prefix: str, driver: str | None = None) -> Iterator[str]:
    """A fresh database for the block (its URL), dropped afterwards."""
    name = new_database(prefix)
    try:
        yield pg_url(name, driver)
    finally:
        drop_database(name)
