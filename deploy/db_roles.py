"""One PostgreSQL role and database per job: Airflow metadata, Celery results, frame metrics.

Run by deploy/init.sh when FRAMECAST_DB_ADMIN_URL (the PostgreSQL superuser's URL) is set; in
docker-compose only the init service and PostgreSQL itself know that password. The roles and
databases come from the components' own connection URLs, so what is created is exactly what the
components will use:

    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN   metadata role + database (api-server, scheduler, ...)
    AIRFLOW__CELERY__RESULT_BACKEND       Celery result role + database (workers, scheduler)
    FRAMECAST_METRICS_DB                  frame-metrics role + database (workers, api-server)

Each role is a plain LOGIN role (no superuser, createdb or createrole) that owns its own
database only; other roles lose the default CONNECT right on it. Idempotent: an existing role
gets the password from its URL again, so rotating a password is "edit .env, run init again".
"""

from __future__ import annotations

import os
import sys
from urllib.parse import unquote, urlsplit

SOURCES = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND",
           "FRAMECAST_METRICS_DB")


class RoleSetupError(RuntimeError):
    """A connection URL cannot be turned into a role and database."""


def target(var: str, url: str) -> tuple[str, str | None, str]:
    """(role, password, database) of a PostgreSQL connection URL."""
    if url.startswith("db+"):
        url = url[3:]
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgresql"):
        raise RoleSetupError(f"{var} is not a PostgreSQL URL (scheme {parts.scheme!r})")
    role, db = parts.username, parts.path.lstrip("/")
    if not role or not db:
        raise RoleSetupError(f"{var} names no user or no database")
    password = unquote(parts.password) if parts.password is not None else None
    return unquote(role), password, unquote(db)


def plain_url(url: str) -> str:
    """A libpq URL (no SQLAlchemy driver suffix) for psycopg."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgresql") else url


def ensure(admin_url: str, targets: list[tuple[str, str | None, str]]) -> list[str]:
    """Create or update every role and database; returns one line per action."""
    import psycopg
    from psycopg import sql

    done = []
    admin_role = urlsplit(admin_url).username
    for role, _, _ in targets:
        if role == admin_role:
            raise RoleSetupError(f"role {role!r} is the administrator in FRAMECAST_DB_ADMIN_URL; "
                                 "each job needs its own unprivileged role")
    with psycopg.connect(plain_url(admin_url), autocommit=True, connect_timeout=10) as conn:
        for role, password, db in targets:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            stmt = sql.SQL(verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                           ).format(sql.Identifier(role))
            if password is not None:
                stmt = stmt + sql.SQL(" PASSWORD {}").format(sql.Literal(password))
            conn.execute(stmt)
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                (db,)).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(db), sql.Identifier(role)))
            else:
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(db), sql.Identifier(role)))
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(db)))
            done.append(f"role {role} owns database {db}")
    return done


def main() -> int:
    admin = os.environ.get("FRAMECAST_DB_ADMIN_URL", "")
    if not admin:
        print("db_roles: FRAMECAST_DB_ADMIN_URL is not set", file=sys.stderr)
        return 1
    try:
        targets = list(dict.fromkeys(  # one entry per (role, database), first wins
            target(var, os.environ[var]) for var in SOURCES if os.environ.get(var)))
        for line in ensure(admin, targets):
            print(f"init: {line}")
    except RoleSetupError as exc:
        print(f"db_roles: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - the message must not carry a password
        if "password authentication failed" in str(exc):
            print("db_roles: PostgreSQL refused the superuser login (password authentication "
                  "failed): check POSTGRES_PASSWORD in .env; the postgres-data volume keeps "
                  "the password it was created with", file=sys.stderr)
            return 1
        print(f"db_roles: {type(exc).__name__} while creating roles "
              f"(check FRAMECAST_DB_ADMIN_URL and PostgreSQL)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
