"""End to end on a real Airflow 3 deployment (scheduler, triggerer, dag-processor, api-server).

One deployment serves all tests of this module; its DAGs (tests/metrics/dags) start as soon as
they are parsed. Checked here: deadline e-mails (late run: exactly one; on-time run: none),
the budget alert for a slowed-down renderer and a retried mapped task, one metrics row per
frame after that retry, StatsD packets from the tasks, the run report, and the UI page.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import services

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DAGS = Path(__file__).with_name("dags") / "fc_metrics_dags.py"


def _seed_history(stack) -> None:
    """Three earlier fast runs of the test model, the baseline of the budget check."""
    from framecast.metrics import store
    from framecast.records import FrameRecord

    db = stack.env["FRAMECAST_METRICS_DB"]
    for hour in (0, 6, 12):
        run = datetime(2026, 11, 22, hour, tzinfo=UTC).isoformat()
        store.upsert_frames(db, [
            FrameRecord("testmodel", run, p, reg, s, f"{p}/{reg}/{s:03d}.png", load_ms=1.0,
                        render_ms=400.0 + s, encode_ms=1.0, bytes=100, try_number=1)
            for p, reg in (("t_2m", "europe"), ("pmsl", "europe"), ("t_2m", "alps"))
            for s in range(4)
        ])


@pytest.fixture(scope="module")
def stack(stack_mod, tmp_path_factory):
    services.require_postgres()
    st = stack_mod.start_stack(tmp_path_factory.mktemp("af"), [DAGS], before_start=_seed_history)
    yield st
    stack_mod.stop_stack(st)


def test_late_run_sends_exactly_one_deadline_email(stack):
    (mail,) = stack.wait_mail("LATE: fc_late", timeout=150)
    run_id = stack.sql("SELECT run_id FROM dag_run WHERE dag_id = 'fc_late'")[0][0]
    assert mail["Subject"] == f"[framecast] LATE: fc_late {run_id}: charts published"
    assert mail["To"] == "ops@example.com"
    body = mail.get_payload(0).get_payload(decode=True).decode()
    assert run_id in body and "charts published" in body
    assert f'href="{stack.api_url}/dags/fc_late/runs/' in body
    assert stack.wait_run("fc_late") == "success"
    time.sleep(5)  # a second scheduler loop or triggerer pass must not send it again
    assert len(stack.inbox.matching("fc_late")) == 1


def test_on_time_run_sends_no_deadline_email(stack):
    assert stack.wait_run("fc_ontime") == "success"
    _, queued_at = stack.run_state("fc_ontime")
    # wait until the 90 s deadline has passed (plus a margin): a pruned deadline stays silent
    remaining = queued_at.timestamp() + 90 + 10 - time.time()
    if remaining > 0:
        time.sleep(remaining)
    stack.check_alive()
    assert stack.inbox.matching("fc_ontime") == []
    assert stack.sql("SELECT count(*) FROM deadline d JOIN dag_run r ON d.dagrun_id = r.id "
                     "WHERE r.dag_id = 'fc_ontime'")[0][0] == 0


def test_slow_renderer_and_retry_raise_budget_alert_one_row_per_frame(stack):
    from framecast.metrics import store

    assert stack.wait_run("fc_pipeline_slow") == "success"
    (mail,) = stack.wait_mail("BUDGET: testmodel 2026-11-23T12:00:00+00:00", timeout=30)
    subject = mail["Subject"]
    assert "slow " in subject and "t_2m" in subject and "pmsl" in subject
    run_id = stack.sql("SELECT run_id FROM dag_run WHERE dag_id = 'fc_pipeline_slow'")[0][0]
    tries = store.task_tries_of(stack.env["FRAMECAST_METRICS_DB"], "fc_pipeline_slow", run_id)
    assert "1 retried task(s)" in subject, "\n".join(map(repr, tries))
    body = mail.get_payload(0).get_payload(decode=True).decode()
    assert "render[1]: try 2" in body
    assert f'href="{stack.api_url}/dags/fc_pipeline_slow/runs/' in body

    db = stack.env["FRAMECAST_METRICS_DB"]
    # 3 chunks x 4 steps; chunk 1's first try wrote 2 rows before failing, its retry all 4
    assert store.count_frames(db, "testmodel", "2026112312") == 12
    rows = store.frames(db, "testmodel", "2026112312")
    assert sorted({(r.product, r.region, r.try_number) for r in rows}) == [
        ("pmsl", "europe", 2), ("t_2m", "alps", 1), ("t_2m", "europe", 1)]
    assert min(r.render_ms for r in rows) >= 1190  # the injected 1.2 s delay was measured
    report = stack.out_dir / "testmodel" / "2026112312" / "_report"
    assert (report / "index.html").read_text().count("<tr><td>") == 3 + 12
    assert (report / "steps.png").stat().st_size > 1000


def test_fast_run_without_retries_sends_no_budget_alert(stack):
    from framecast.metrics import store

    assert stack.wait_run("fc_pipeline_fast") == "success"
    assert store.count_frames(stack.env["FRAMECAST_METRICS_DB"], "testmodel", "2026112306") == 12
    time.sleep(2)
    assert stack.inbox.matching("BUDGET: testmodel 2026-11-23T06") == []


def test_tasks_emit_statsd_frame_timers(stack):
    stack.wait_run("fc_pipeline_fast")
    stack.wait_run("fc_pipeline_slow")
    time.sleep(1)
    lines = stack.statsd_lines()
    frame = [ln for ln in lines if ln.startswith("airflow.framecast.frame.")]
    # 2 runs x 12 frames x 5 timers (load, render, encode, upload, total)
    assert len(frame) == 2 * 12 * 5, frame[:5]
    render = [ln for ln in frame if ln.startswith("airflow.framecast.frame.render.testmodel.pmsl.europe:")]
    assert len(render) == 8 and all(ln.endswith("|ms") for ln in render)
    # Airflow's own metrics arrive on the same socket: the backend is Airflow's, not ours
    assert any(ln.startswith("airflow.scheduler") for ln in lines)


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _token(stack) -> str:
    """A JWT from the api-server's own login endpoint (all-admins mode in this stack)."""
    import json

    with urllib.request.urlopen(f"{stack.api_url}/auth/token", timeout=30) as resp:
        return json.loads(resp.read())["access_token"]


def test_ui_page_lists_runs_with_links(stack):
    stack.wait_run("fc_pipeline_slow")
    token = _token(stack)
    status, html = _get(f"{stack.api_url}/framecast-metrics/", token)
    assert status == 200
    assert "Frame timings: recent runs" in html
    assert "2026-11-23T12:00:00+00:00" in html and "2026-11-22T00:00:00+00:00" in html
    assert f'href="{stack.api_url}/dags/fc_pipeline_slow/runs/' in html
    assert 'href="runs/testmodel/2026-11-23T12%3A00%3A00%2B00%3A00"' in html
    status, detail = _get(f"{stack.api_url}/framecast-metrics/runs/testmodel/2026112312", token)
    assert status == 200
    assert detail.count('<tr><td class="l">') == 3  # t_2m/alps, t_2m/europe, pmsl/europe


def _publish_chunk_in_progress(stack) -> None:
    """A newer run of the test model that has published one chunk (latency record written as
    the publish task writes it) and is not in the metrics database: a run still streaming."""
    from framecast.metrics.latency import write_latency
    from framecast.records import run_dir

    data_root = Path(stack.env.get("FRAMECAST_DATA_ROOT") or stack.home / "framecast")
    run = datetime(2026, 11, 24, 0, tzinfo=UTC)
    write_latency(run_dir(data_root / "frames", "testmodel", run), "+000..+001", [0, 1],
                  run_time=run, available_at=run.timestamp() + 7200,
                  published_at=run.timestamp() + 7260, dag_id="fc_pipeline_slow",
                  run_id="streaming-1")


def test_ui_page_renders_inside_airflow_ui_in_chromium(stack, tmp_path):
    """The Airflow UI's plugin route embeds the page; a real browser shows the runs table, a
    run still streaming at its top."""
    chromium = services.require_executable("chromium", "chromium")
    chromedriver = services.require_executable("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    stack.wait_run("fc_pipeline_slow")
    _publish_chunk_in_progress(stack)
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--window-size=1280,900",
                f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(f"{stack.api_url}/auth/token/login")  # all-admins mode: sets the cookie
        driver.get(f"{stack.api_url}/plugin/framecast-metrics")
        wait = WebDriverWait(driver, 60)
        frame = wait.until(ec.presence_of_element_located(
            (By.CSS_SELECTOR, "iframe[src*='framecast-metrics']")))
        driver.switch_to.frame(frame)
        table = wait.until(ec.presence_of_element_located((By.ID, "runs")))
        text = table.text
        assert "2026-11-23T12:00:00+00:00" in text and "testmodel" in text
        top = [td.text for td in table.find_elements(By.CSS_SELECTOR, "tr:nth-child(2) td")]
        assert top[:2] == ["testmodel", "2026-11-24T00:00:00+00:00"], top
        assert top[2].startswith("in progress: 2 steps (+000..+001) in 1 chunk"), top
        assert top[3] == "timings | Airflow run", top
        detail = table.find_element(By.CSS_SELECTOR, "a[href*='2026-11-23T12']").get_attribute(
            "href")
        driver.switch_to.default_content()
        driver.save_screenshot(str(tmp_path / "ui.png"))
        # the UI may re-render its iframe at any time: follow the link at top level instead
        driver.get(detail)
        groups = wait.until(ec.presence_of_element_located((By.ID, "groups")))
        assert "pmsl" in groups.text and "alps" in groups.text
    finally:
        driver.quit()
