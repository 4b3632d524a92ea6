"""Refuse to start with placeholder, example or malformed secrets.

Every framecast container runs this from deploy/entrypoint.sh (and deploy/init.sh runs it before
touching the database): a deployment started from an unedited copy of
deploy/framecast.env.example, or with a secret that was published in an earlier version of that
file, stops with a message naming the variable, never the value. Standard library plus
``cryptography`` (an Airflow dependency) only.

Exit status 0: every secret present looks real; 1: at least one is refused (all are listed).
"""

from __future__ import annotations

import os
import sys
from urllib.parse import unquote, urlsplit

# Secrets given directly, and the .env variable an operator sets for each (for the message).
PLAIN = {
    "AIRFLOW__CORE__FERNET_KEY": "FRAMECAST_FERNET_KEY",
    "AIRFLOW__API__SECRET_KEY": "FRAMECAST_API_SECRET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET": "FRAMECAST_JWT_SECRET",
    "FRAMECAST_ADMIN_PASSWORD": "FRAMECAST_ADMIN_PASSWORD",
}
# Connection URLs whose password part is a secret.
URLS = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "FRAMECAST_AIRFLOW_DB_PASSWORD",
    "AIRFLOW__CELERY__RESULT_BACKEND": "FRAMECAST_CELERY_DB_PASSWORD",
    "AIRFLOW__CELERY__BROKER_URL": "REDIS_PASSWORD",
    "FRAMECAST_METRICS_DB": "FRAMECAST_METRICS_DB_PASSWORD",
    "FRAMECAST_DB_ADMIN_URL": "POSTGRES_PASSWORD",
}
# Marker of every placeholder in deploy/framecast.env.example.
PLACEHOLDER_MARKS = ("change-me", "changeme", "replace-me", "example")
# Values that were published in earlier versions of the example file: known to everyone.
KNOWN_PUBLIC = frozenset({
    "uH9z3M4kqkX0C3ZKXbq7i1v7tPq2s0l9p8r6w5y4x3A=",
    "change-me-jwt-secret-at-least-64-bytes-long-for-hs512-change-me-now",
    "change-me-api-secret-key",
    "change-me-postgres",
    "change-me-admin",
})
MIN_LENGTH = 12


def problem(value: str) -> str | None:
    """Why ``value`` is not usable as a secret, or None."""
    if value in KNOWN_PUBLIC:
        return "is a value published in an example file"
    if any(mark in value.lower() for mark in PLACEHOLDER_MARKS):
        return "is still the placeholder from deploy/framecast.env.example"
    if len(value) < MIN_LENGTH:
        return f"is shorter than {MIN_LENGTH} characters"
    return None


def fernet_problem(value: str) -> str | None:
    """Airflow takes one key or a comma-separated list (rotation): each must be valid."""
    from cryptography.fernet import Fernet

    for key in value.split(","):
        why = problem(key.strip())
        if why:
            return why
        try:
            Fernet(key.strip().encode())
        except (ValueError, TypeError):
            return "is not a Fernet key (32 url-safe base64-encoded bytes)"
    return None


def url_password(url: str) -> str | None:
    """The password of a connection URL (``db+`` prefix of Celery result backends allowed)."""
    if url.startswith("db+"):
        url = url[3:]
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password is not None else None


def refusals(env: dict[str, str]) -> list[str]:
    """One line per refused secret, naming the variable (never the value)."""
    out = []
    for var, dotenv in PLAIN.items():
        value = env.get(var)
        if value is None:
            continue
        why = fernet_problem(value) if var.endswith("FERNET_KEY") else problem(value)
        if why:
            out.append(f"{var} (set {dotenv} in .env) {why}")
    for var, dotenv in URLS.items():
        password = url_password(env.get(var, ""))
        if password is None:
            continue
        why = problem(password)
        if why:
            out.append(f"the password in {var} (set {dotenv} in .env) {why}")
    return out


def main() -> int:
    bad = refusals(dict(os.environ))
    for line in bad:
        print(f"framecast: refusing to start: {line}", file=sys.stderr)
    if bad:
        print("framecast: generate secrets as deploy/framecast.env.example shows", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
