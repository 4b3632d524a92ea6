"""The Airflow hook: the publish target comes from an Airflow Connection (real servers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.errors import PublishAuthError, PublishError

ROOT = Path(__file__).resolve().parents[2]
RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


def _hook_module():
    from framecast_airflow import publish_hook

    return publish_hook


def test_sftp_connection_uses_the_sftp_provider_hook(
    run_path, sftp_server, airflow_env, check_published
):
    srv = sftp_server()
    host_key = " ".join(srv.known_hosts.read_text().split()[1:3])
    airflow_env("fc_sftp", conn_type="sftp", host="127.0.0.1", port=srv.port, login=srv.user,
                password=srv.password, extra={"root": "/www", "host_key": host_key})
    summary = _hook_module().publish_from_connection(
        "fc_sftp", run_path, model="icon-eu", run_time=RUN, retention=3, workers=2)
    assert summary["uploaded"] == 16 and summary["latest"] == "2026112300"
    assert summary["target"] == f"sftp://pub@127.0.0.1:{srv.port}/www"
    json.dumps(summary)  # XCom-serialisable
    check_published(srv.root / "www", "icon-eu", run_path)

    # the provider refuses a host key that does not match (no silent trust)
    other = " ".join(srv.keys["client.pub"].read_text().split()[:2])
    airflow_env("fc_sftp_badkey", conn_type="sftp", host="127.0.0.1", port=srv.port,
                login=srv.user, password=srv.password, extra={"root": "/x", "host_key": other})
    with pytest.raises(PublishAuthError, match="host key"):
        _hook_module().publish_from_connection("fc_sftp_badkey", run_path, model="icon-eu",
                                               run_time=RUN)
    assert not (srv.root / "x").exists()


def test_sftp_connection_with_wrong_password(run_path, sftp_server, airflow_env):
    srv = sftp_server()
    host_key = " ".join(srv.known_hosts.read_text().split()[1:3])
    airflow_env("fc_sftp", conn_type="sftp", host="127.0.0.1", port=srv.port, login=srv.user,
                password="wrong-password", extra={"root": "/www", "host_key": host_key})
    with pytest.raises(PublishAuthError, match="authentication failed"):
        _hook_module().publish_from_connection("fc_sftp", run_path, model="icon-eu", run_time=RUN)
    assert list(srv.root.iterdir()) == []


def test_ftps_and_local_connections(tmp_path, run_path, ftp_server, airflow_env, check_published):
    srv = ftp_server(tls=True)
    airflow_env("fc_ftps", conn_type="ftps", host="127.0.0.1", port=srv.port, login=srv.user,
                password=srv.password, extra={"root": "pub", "ca_file": str(srv.cafile)})
    hook = _hook_module()
    summary = hook.publish_from_connection("fc_ftps", run_path, model="icon-eu", run_time=RUN,
                                           products=["t2m"], final=False)
    assert summary["complete"] is False and summary["products"] == ["t2m"]
    assert summary["latest"] is None
    assert not (srv.root / "pub" / "icon-eu" / "latest.json").exists()
    hook.publish_from_connection("fc_ftps", run_path, model="icon-eu", run_time=RUN)
    check_published(srv.root / "pub", "icon-eu", run_path)

    airflow_env("fc_local", conn_type="fs", extra={"path": str(tmp_path / "www")})
    hook.publish_from_connection("fc_local", run_path, model="icon-eu", run_time=RUN)
    check_published(tmp_path / "www", "icon-eu", run_path)

    airflow_env("fc_http", conn_type="http", host="example.org")
    with pytest.raises(PublishError, match="connection type 'http' cannot be a publish target"):
        hook.FramecastPublishHook("fc_http").get_target()


@pytest.mark.slow
def test_publish_task_in_a_real_airflow_dag_run(tmp_path, run_path, sftp_server, check_published):
    """``airflow dags test`` runs a DAG whose task calls publish_from_connection."""
    srv = sftp_server()
    host_key = " ".join(srv.known_hosts.read_text().split()[1:3])
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "fc_publish_dag.py").write_text(textwrap.dedent(f'''
        from datetime import datetime, timezone

        from airflow.sdk import dag, task


        @dag(dag_id="fc_publish_test", schedule=None, start_date=datetime(2026, 1, 1),
             catchup=False)
        def fc_publish_test():
            @task(retries=2)
            def publish():
                from framecast_airflow.publish_hook import publish_from_connection

                return publish_from_connection(
                    "framecast_publish", {str(run_path)!r}, model="icon-eu",
                    run_time=datetime(2026, 11, 23, 0, tzinfo=timezone.utc),
                    retention=4, workers=2, video=True)

            publish()


        fc_publish_test()
    '''))
    home = tmp_path / "airflow"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_FRAMECAST_PUBLISH": json.dumps({
            "conn_type": "sftp", "host": "127.0.0.1", "port": srv.port, "login": srv.user,
            "password": srv.password, "extra": {"root": "/srv/www", "host_key": host_key},
        }),
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)
    proc = subprocess.run([airflow, "dags", "test", "fc_publish_test"], env=env,
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    manifest = check_published(srv.root / "srv" / "www", "icon-eu", run_path)
    videos = manifest["products"]["t2m"]["regions"]["europe"]["videos"]
    assert set(videos) == {"mp4", "gif"}
    assert (srv.root / "srv/www/icon-eu/index.html").is_file()
