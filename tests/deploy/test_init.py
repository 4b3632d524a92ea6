"""deploy/init.sh (the compose service airflow-init) on a fresh PostgreSQL database."""

from __future__ import annotations

import json
import stat

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_init_migrates_creates_pools_and_login_idempotently(celery_local, topology, tmp_path):
    import psycopg

    try:
        with psycopg.connect(celery_local.PG_ADMIN, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {celery_local.PG_ADMIN}: {exc}")
    models = celery_local.write_models_file(tmp_path / "models.yaml", steps=[0], chunk_size=1,
                                            products=["t2m_mslp"], regions=["europe"])
    cluster = celery_local.LocalCluster(tmp_path, "http://127.0.0.1:1", models)
    passwords = tmp_path / "auth" / "passwords.json"
    login = {"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
             "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:admin",
             "FRAMECAST_ADMIN_PASSWORD": "s3cret-Pw-4f9a2c"}
    try:
        cluster.create_databases()
        out = cluster.init()  # no passwords file configured: no login written
        assert "pools imported" in out and not passwords.exists()
        out = cluster.init(login)  # again, on the migrated database: idempotent
        assert "login written for ops:admin" in out
        assert json.loads(passwords.read_text()) == {"ops": "s3cret-Pw-4f9a2c"}
        assert stat.S_IMODE(passwords.stat().st_mode) == 0o600
        pools = dict(cluster.sql("SELECT pool, slots FROM slot_pool"))
        assert {k: v["slots"] for k, v in topology.pools().items()}.items() <= pools.items()
        with pytest.raises(celery_local.ClusterError, match="FRAMECAST_ADMIN_PASSWORD"):
            cluster.init({**login, "FRAMECAST_ADMIN_PASSWORD": ""})
        assert json.loads(passwords.read_text()) == {"ops": "s3cret-Pw-4f9a2c"}  # left as it was
    finally:
        cluster.stop()
    assert not cluster.created_dbs
