"""The "Frame timings" page behind Airflow's login, on a real api-server with password logins.

The api-server runs as in docker-compose: the simple auth manager with named users and a
passwords file (not the all-admins mode of the other Airflow tests, where everyone is admin by
design). Anonymous and forged requests must be refused on every route of the plugin app; a
logged-in user sees the page; a listing is bounded; the password never reaches the logs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from framecast.metrics import store

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, *, token: str | None = None, data: dict | None = None,
             cookie: str | None = None) -> tuple[int, str]:
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookie:
        headers["Cookie"] = cookie
    body = None
    if data is not None:
        body = json.dumps(data).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=body, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from framecast.records import FrameRecord

    tmp = tmp_path_factory.mktemp("auth")
    password = f"pw-{uuid.uuid4().hex}"
    home = tmp / "airflow"
    home.mkdir()
    (home / "passwords.json").write_text(json.dumps({"ops": password}))
    metrics_db = f"sqlite:///{tmp / 'metrics.sqlite'}"
    store.upsert_frames(metrics_db, [
        FrameRecord(model="icon-eu", run="2026-11-23T12:00:00+00:00", product=p, region="europe",
                    step=s, path=f"{p}/{s}.png", load_ms=1.0, render_ms=2.0, encode_ms=3.0,
                    upload_ms=0.0, bytes=100, host="w", try_number=1, valid_time="")
        for p in ("t_2m", "pmsl") for s in range(3)])
    port = _free_port()
    env = {**os.environ,
           "AIRFLOW_HOME": str(home),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "AIRFLOW__CORE__DAGS_FOLDER": str(tmp / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:viewer",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
           "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
           "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
           "FRAMECAST_METRICS_DB": metrics_db,
           "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env, check=True,
                   capture_output=True, timeout=300)
    log_path = tmp / "api-server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - lives with the process
    proc = subprocess.Popen([str(VENV_BIN / "airflow"), "api-server", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 240
        while True:
            if proc.poll() is not None:
                raise AssertionError("api-server exited\n" + log_path.read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=5):
                    break
            except OSError:
                if time.monotonic() > end:
                    raise AssertionError("api-server did not come up\n"
                                         + log_path.read_text()[-3000:]) from None
                time.sleep(1)
        yield url, password, log_path
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(timeout=10)
        log.close()


ROUTES = ("/framecast-metrics/", "/framecast-metrics/?last=5",
          "/framecast-metrics/runs/icon-eu/2026112312")


def test_anonymous_and_forged_requests_are_refused(api):
    url, _, _ = api
    for path in ROUTES:
        status, body = _request(url + path)
        assert status == 401, (path, status, body[:300])
        assert "Frame timings" not in body
        status, body = _request(url + path, token="forged.jwt.token")
        assert status in (401, 403), (path, status)
        status, body = _request(url + path, cookie="_token=forged.jwt.token")
        assert status in (401, 403), (path, status)
        assert "Frame timings" not in body


def test_logged_in_user_sees_the_page_and_listings_are_bounded(api):
    url, password, log_path = api
    status, body = _request(f"{url}/auth/token", data={"username": "ops", "password": "wrong"})
    assert status == 401
    status, body = _request(f"{url}/auth/token", data={"username": "ops", "password": password})
    assert status == 201, body
    token = json.loads(body)["access_token"]
    status, html = _request(f"{url}/framecast-metrics/", token=token)
    assert status == 200 and "2026-11-23T12:00:00+00:00" in html
    status, html = _request(f"{url}/framecast-metrics/runs/icon-eu/2026112312", token=token)
    assert status == 200 and html.count('<tr><td class="l">') == 2
    status, _ = _request(f"{url}/framecast-metrics/?last=500", token=token)
    assert status == 422  # more than MAX_RUNS runs per listing is refused
    # the login password is in no log line of the api-server
    assert password not in log_path.read_text(errors="replace")
