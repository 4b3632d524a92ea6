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
from datetime import UTC, datetime
from html.parser import HTMLParser
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
    _write_latency_records(tmp / "data")
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
           "FRAMECAST_DATA_ROOT": str(tmp / "data"),
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
          "/framecast-metrics/runs/icon-eu/2026112312",
          "/framecast-metrics/runs/icon-eu/2026112318")

#: The run with frames in the metrics DB, and one still in progress (latency records only).
RUN = datetime(2026, 11, 23, 12, tzinfo=UTC)
RUN_IN_PROGRESS = datetime(2026, 11, 23, 18, tzinfo=UTC)


def _write_latency_records(data_root: Path) -> None:
    """Two chunks of the 12 UTC run with known times, one chunk of the 18 UTC run."""
    from framecast.metrics.latency import write_latency
    from framecast.records import run_dir

    t0 = RUN.timestamp()
    d12 = run_dir(data_root / "frames", "icon-eu", RUN)
    # seen upstream 14:00:00, public 14:01:30.5 (90.5 s; 121.5 min after 12 UTC)
    write_latency(d12, "+000..+001", [0, 1], run_time=RUN, available_at=t0 + 7200,
                  published_at=t0 + 7290.5)
    # a manual run: inputs time unknown, public 14:30:00 (150 min after run time)
    write_latency(d12, "+002..+002", [2], run_time=RUN, available_at=None,
                  published_at=t0 + 9000)
    t1 = RUN_IN_PROGRESS.timestamp()
    write_latency(run_dir(data_root / "frames", "icon-eu", RUN_IN_PROGRESS), "+000..+000", [0],
                  run_time=RUN_IN_PROGRESS, available_at=t1 + 7205, published_at=t1 + 7265,
                  dag_id="framecast_icon_eu", run_id="scheduled__2026-11-23T20:00:00+00:00")
    # a folder that is no model: never listed, never read
    (data_root / "frames" / ".trash" / "2026112400" / "_latency").mkdir(parents=True)


class _Tables(HTMLParser):
    """Cell texts of every table of a page, by table id (an independent reading of the HTML)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._table = dict(attrs).get("id") or ""
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _login(url: str, password: str) -> str:
    status, body = _request(f"{url}/auth/token", data={"username": "ops", "password": password})
    assert status == 201, body
    return json.loads(body)["access_token"]


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


def test_run_page_shows_publish_latency_by_step(api):
    url, password, _ = api
    token = _login(url, password)
    status, html = _request(f"{url}/framecast-metrics/runs/icon-eu/2026112312", token=token)
    assert status == 200, html[:500]
    tables = _tables(html)
    assert len(tables["groups"]) == 3  # header + t_2m, pmsl: the frame timings are still there
    assert tables["latency"] == [
        ["step", "chunk", "inputs upstream (UTC)", "published (UTC)", "latency s",
         "after run time min"],
        ["0", "+000..+001", "14:00:00", "14:01:30", "90.5", "121.5"],
        ["1", "+000..+001", "14:00:00", "14:01:30", "90.5", "121.5"],
        ["2", "+002..+002", "-", "14:30:00", "-", "150.0"],
    ]
    # a run still in progress: no frames stored yet, its latency already shown
    status, html = _request(f"{url}/framecast-metrics/runs/icon-eu/2026-11-23T18:00:00Z",
                            token=token)
    assert status == 200, html[:500]
    tables = _tables(html)
    assert "groups" not in tables
    assert tables["latency"][1:] == [["0", "+000..+000", "20:00:05", "20:01:05", "60.0", "121.1"]]
    # nothing recorded at all: 404; a model that is no folder name: 400, no path is read
    status, _ = _request(f"{url}/framecast-metrics/runs/icon-eu/2026112400", token=token)
    assert status == 404
    status, body = _request(f"{url}/framecast-metrics/runs/%2E%2E/2026112312", token=token)
    assert status == 400, body


def test_listing_shows_the_run_in_progress_first(api):
    """The 18 UTC run has published one chunk and is not in the metrics database: it heads the
    listing, marked in progress and linked; the stored 12 UTC run is listed once, with timings."""
    url, password, _ = api
    token = _login(url, password)
    for query in ("", "?model=icon-eu", "?last=2"):
        status, html = _request(f"{url}/framecast-metrics/{query}", token=token)
        assert status == 200, html[:500]
        runs = _tables(html)["runs"]
        assert [r[:2] for r in runs[1:]] == [["icon-eu", "2026-11-23T18:00:00+00:00"],
                                            ["icon-eu", "2026-11-23T12:00:00+00:00"]], query
        assert runs[1][2] == ("in progress: 1 step (+000..+000) in 1 chunk published; newest "
                              "+000..+000 public 20:01:05 UTC, 121.1 min after run time, "
                              "latency 60.0 s")
        assert runs[2][2:4] == ["6", "2"]  # frames, products of the stored run
        assert 'href="runs/icon-eu/2026-11-23T18%3A00%3A00%2B00%3A00"' in html
        assert (f'href="{url}/dags/framecast_icon_eu/runs/'
                'scheduled__2026-11-23T20%3A00%3A00%2B00%3A00"') in html
    # newest first within ``last``: one row is the run in progress
    status, html = _request(f"{url}/framecast-metrics/?last=1", token=token)
    assert [r[:2] for r in _tables(html)["runs"][1:]] == [["icon-eu", "2026-11-23T18:00:00+00:00"]]
    # another model, or a name that is no folder name: nothing listed, nothing read
    for model in ("gfs", "..", "%2E%2E%2Fframes"):
        status, html = _request(f"{url}/framecast-metrics/?model={model}", token=token)
        assert status == 200 and "No runs recorded yet." in html, (model, html[:500])
