"""Deployment hardening: no usable example secrets, least privilege, container hygiene.

The compose file is resolved by docker-compose itself; deploy/entrypoint.sh and deploy/init.sh
run for real with each service's resolved environment; the database roles are created on the
machine's PostgreSQL under unique names and checked by connecting as each role.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "framecast.env.example"
VENV_BIN = Path(sys.executable).parent
OLD_EXAMPLE_FERNET = "uH9z3M4kqkX0C3ZKXbq7i1v7tPq2s0l9p8r6w5y4x3A="


def _real_secrets() -> dict[str, str]:
    import secrets

    from cryptography.fernet import Fernet

    names = ("POSTGRES_PASSWORD", "FRAMECAST_AIRFLOW_DB_PASSWORD", "FRAMECAST_CELERY_DB_PASSWORD",
             "FRAMECAST_METRICS_DB_PASSWORD", "REDIS_PASSWORD", "FRAMECAST_ADMIN_PASSWORD",
             "FRAMECAST_API_SECRET_KEY", "FRAMECAST_JWT_SECRET")
    out = {n: secrets.token_urlsafe(32) for n in names}
    out["FRAMECAST_FERNET_KEY"] = Fernet.generate_key().decode()
    return out


def _resolved(compose, env_file: Path) -> dict:
    import yaml

    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "FRAMECAST_",
                                                                     "REDIS_"))}
    proc = compose("config", env_file=env_file, env=env)
    assert proc.returncode == 0, proc.stderr
    return yaml.safe_load(proc.stdout)["services"]


def _entrypoint(service_env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """deploy/entrypoint.sh with a service's environment, running `true` as its command."""
    env = {**{k: str(v) for k, v in service_env.items()},
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path),
           "AIRFLOW_HOME": str(tmp_path), "FRAMECAST_WAIT_FOR_DB": "false"}
    return subprocess.run(["bash", str(ROOT / "deploy" / "entrypoint.sh"), "true"], env=env,
                          capture_output=True, text=True, timeout=60)


def test_example_secrets_are_refused_by_every_component(compose, topology, tmp_path):
    services = _resolved(compose, ENV_EXAMPLE)
    for name in [*topology.components, topology.init]:
        proc = _entrypoint(services[name]["environment"], tmp_path)
        assert proc.returncode != 0, name
        assert "refusing to start" in proc.stderr, (name, proc.stderr)
        assert "placeholder" in proc.stderr, (name, proc.stderr)
        if not topology.components.get(name, None) or not topology.components[name].is_worker:
            assert "AIRFLOW__CORE__FERNET_KEY (set FRAMECAST_FERNET_KEY" in proc.stderr
        assert "REDIS_PASSWORD" in proc.stderr, (name, proc.stderr)
    # the same services with generated secrets start
    real = tmp_path / "real.env"
    real.write_text("".join(f"{k}={v}\n" for k, v in _real_secrets().items()))
    services = _resolved(compose, real)
    for name in [*topology.components, topology.init]:
        proc = _entrypoint(services[name]["environment"], tmp_path)
        assert proc.returncode == 0, (name, proc.stderr)


def test_secret_check_refuses_published_and_malformed_values(tmp_path):
    good = _real_secrets()
    cases = {
        "FRAMECAST_FERNET_KEY": (OLD_EXAMPLE_FERNET, "published in an example"),
        "FRAMECAST_JWT_SECRET": (
            "change-me-jwt-secret-at-least-64-bytes-long-for-hs512-change-me-now", "published"),
    }
    for var, (value, why) in cases.items():
        env = {"AIRFLOW__CORE__FERNET_KEY": good["FRAMECAST_FERNET_KEY"],
               "AIRFLOW__API_AUTH__JWT_SECRET": good["FRAMECAST_JWT_SECRET"],
               "PATH": os.environ["PATH"]}
        key = {"FRAMECAST_FERNET_KEY": "AIRFLOW__CORE__FERNET_KEY",
               "FRAMECAST_JWT_SECRET": "AIRFLOW__API_AUTH__JWT_SECRET"}[var]
        env[key] = value
        proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "check_secrets.py")],
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and why in proc.stderr and var in proc.stderr, proc.stderr
        assert value not in proc.stderr + proc.stdout  # names the variable, never the value
    env = {"AIRFLOW__CORE__FERNET_KEY": "x" * 44, "PATH": os.environ["PATH"]}
    proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "check_secrets.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "not a Fernet key" in proc.stderr
    # rotation: a list of keys is accepted when every key is real, refused with an old one
    rotation = f"{good['FRAMECAST_FERNET_KEY']},{_real_secrets()['FRAMECAST_FERNET_KEY']}"
    for value, rc in ((rotation, 0), (f"{rotation},{OLD_EXAMPLE_FERNET}", 1)):
        env = {"AIRFLOW__CORE__FERNET_KEY": value, "PATH": os.environ["PATH"]}
        proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "check_secrets.py")],
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == rc, proc.stderr


def test_init_refuses_example_secrets_before_touching_the_database(compose, tmp_path):
    init_env = _resolved(compose, ENV_EXAMPLE)["airflow-init"]["environment"]
    env = {**{k: str(v) for k, v in init_env.items()},
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", "AIRFLOW_HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(ROOT / "deploy" / "init.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "refusing to start" in proc.stderr and "FRAMECAST_ADMIN_PASSWORD" in proc.stderr
    assert "migrat" not in (proc.stdout + proc.stderr).lower()  # stopped before airflow ran


def test_compose_least_privilege_and_hygiene(compose, topology, tmp_path):
    secrets_ = _real_secrets()
    real = tmp_path / "real.env"
    real.write_text("".join(f"{k}={v}\n" for k, v in secrets_.items()))
    services = _resolved(compose, real)
    superuser = secrets_["POSTGRES_PASSWORD"]
    fernet = secrets_["FRAMECAST_FERNET_KEY"]
    for name, svc in services.items():
        env_text = " ".join(str(v) for v in (svc.get("environment") or {}).values())
        # the superuser password reaches PostgreSQL and the init service only
        assert (superuser in env_text) == (name in ("postgres", "airflow-init")), name
        assert svc.get("cap_drop") == ["ALL"], name
        assert "no-new-privileges:true" in svc.get("security_opt", []), name
        if name in topology.components and topology.components[name].is_worker:
            assert fernet not in env_text, name
            assert "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" not in svc["environment"], name
    env = services["scheduler"]["environment"]
    users = {var: urlsplit(env[var].removeprefix("db+")).username
             for var in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND",
                         "FRAMECAST_METRICS_DB")}
    assert len(set(users.values())) == 3 and "postgres" not in users.values(), users
    # init creates the metadata role, so it cannot wait for `airflow db check` as that role
    assert services["airflow-init"]["environment"]["FRAMECAST_WAIT_FOR_DB"] == "false"
    # Redis requires the password the broker URL carries
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--requirepass") + 1] == secrets_["REDIS_PASSWORD"]
    assert urlsplit(env["AIRFLOW__CELERY__BROKER_URL"]).password == secrets_["REDIS_PASSWORD"]
    # the UI listens on loopback only unless the operator says otherwise
    ports = services["api-server"]["ports"]
    assert all(str(p).startswith("127.0.0.1:") or (isinstance(p, dict)
               and p.get("host_ip") == "127.0.0.1") for p in ports), ports
    # .env is never committed
    proc = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert proc.returncode == 0, ".env is not ignored by git"


def test_ui_script_binds_loopback(tmp_path):
    """`make ui` (scripts/airflow-ui.sh -> demo.py --ui) runs the embedded default, whose
    api-server (every user an admin) listens on loopback only."""
    if str(ROOT / "plugins") not in sys.path:
        sys.path.insert(0, str(ROOT / "plugins"))
    from framecast_airflow import localstack
    from framecast_airflow.localenv import LocalAirflow

    text = (ROOT / "scripts" / "airflow-ui.sh").read_text()
    assert "scripts/demo.py --ui" in text
    (tmp_path / "airflow").mkdir()
    (tmp_path / "airflow" / "jwt_secret").write_text("x")  # written by migrate() otherwise
    env = localstack.stack_env(LocalAirflow(tmp_path / "airflow"), port=8080)
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"].startswith("http://127.0.0.1:")


def test_roles_refuse_the_administrator_as_a_job_role():
    env = {**os.environ, "FRAMECAST_DB_ADMIN_URL": "postgresql://postgres:x@127.0.0.1:1/postgres",
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://postgres:x@h/airflow"}
    proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "db_roles.py")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "is the administrator" in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_init_creates_one_unprivileged_role_per_database(celery_local, tmp_path):
    """deploy/init.sh with the superuser URL: three roles, each owning only its database."""
    import psycopg

    tag = uuid.uuid4().hex[:8]
    base = urlsplit(celery_local.PG_ADMIN)
    host = f"{base.hostname}:{base.port or 5432}"
    roles = {k: f"fc_{k}_{tag}" for k in ("meta", "celery", "metrics")}
    pw = {k: uuid.uuid4().hex for k in roles}

    def url(k: str, driver: str) -> str:
        return f"postgresql+{driver}://{roles[k]}:{pw[k]}@{host}/{roles[k]}"

    models = celery_local.write_models_file(tmp_path / "models.yaml", steps=[0], chunk_size=1,
                                            products=["t2m_mslp"], regions=["europe"])
    cluster = celery_local.LocalCluster(tmp_path, "http://127.0.0.1:1", models)
    env = {"FRAMECAST_DB_ADMIN_URL": celery_local.PG_ADMIN,
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url("meta", "psycopg2"),
           "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + url("celery", "psycopg2"),
           "FRAMECAST_METRICS_DB": url("metrics", "psycopg")}
    try:
        out = cluster.init(env)
        out = cluster.init(env)  # idempotent (and re-applies the passwords)
        assert f"role {roles['meta']} owns database {roles['meta']}" in out
        with psycopg.connect(celery_local.PG_ADMIN) as conn:
            for k, role in roles.items():
                row = conn.execute(
                    "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles "
                    "WHERE rolname = %s", (role,)).fetchone()
                assert row == (False, False, False, True), (k, row)
                owner = conn.execute(
                    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                    (role,)).fetchone()
                assert owner == (role,), k
        # Airflow's tables belong to the metadata role: the migration ran as that role
        meta_admin = celery_local.PG_ADMIN.rsplit("/", 1)[0] + "/" + roles["meta"]
        with psycopg.connect(meta_admin) as conn:
            owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'dag'"
                                 ).fetchone()
        assert owner == (roles["meta"],)
        # a worker's role cannot even connect to the metadata database
        for k in ("celery", "metrics"):
            with pytest.raises(psycopg.OperationalError, match="permission denied"):
                psycopg.connect(f"postgresql://{roles[k]}:{pw[k]}@{host}/{roles['meta']}",
                                connect_timeout=5).close()
        logs = out + "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*.log"))
        for secret in pw.values():
            assert secret not in logs
    finally:
        with psycopg.connect(celery_local.PG_ADMIN, autocommit=True) as conn:
            for role in roles.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
                conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        cluster.stop()
