"""The published viewer in real headless Chromium, served over HTTP from the publish folder."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from datetime import UTC, datetime

import pytest
import services

from framecast.publish import LocalTarget, publish_product, publish_run

pytestmark = [pytest.mark.slow]
RUN_A = datetime(2026, 11, 22, 12, tzinfo=UTC)
RUN_B = datetime(2026, 11, 23, 0, tzinfo=UTC)
RUN_C = datetime(2026, 11, 23, 6, tzinfo=UTC)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_root(tmp_path):
    """A plain HTTP server on 127.0.0.1 serving the publish folder, like a web server would."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(_Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = services.require_executable("chromium", "chromium")
    chromedriver = services.require_executable("chromedriver", "chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1100,900",
                f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _frame_state(driver) -> dict:
    return driver.execute_script(
        "const i = document.getElementById('frame'); const [src, q] = i.getAttribute('src').split('?');"
        "return {src: src, query: q || '', loaded: i.dataset.loaded, step: i.dataset.step,"
        " w: i.naturalWidth, complete: i.complete};"
    )


def _wait_frame(driver, predicate, what: str) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    state: dict = {}

    def ok(d) -> bool:
        state.update(_frame_state(d))
        return state["loaded"] == "1" and state["w"] > 0 and predicate(state)

    WebDriverWait(driver, 15).until(ok, message=f"{what}: last state {state}")
    return state


def test_viewer_loads_steps_switches_products_and_runs(
    tmp_path, http_root, browser, make_run_dir
):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    www, base = http_root
    size = (480, 320)
    run_a = make_run_dir(tmp_path / "a", run_time=RUN_A, products=("t2m",), size=size, tag="A ")
    # The charts of the run shown first are 8-bit palette PNGs, as the renderer writes them.
    run_b = make_run_dir(tmp_path / "b", run_time=RUN_B, steps=(0, 1, 2, 3, 4, 5), size=size,
                         palette=True)
    from PIL import Image

    with Image.open(next(run_b.rglob("*.png"))) as im:
        assert im.mode == "P"
    run_c = make_run_dir(tmp_path / "c", run_time=RUN_C, products=("precip",), size=size)
    publish_run(run_a, LocalTarget(www), model="icon-eu", run_time=RUN_A)
    publish_run(run_b, LocalTarget(www), model="icon-eu", run_time=RUN_B)
    publish_product(run_c, LocalTarget(www), "precip", model="icon-eu", run_time=RUN_C)

    browser.get(f"{base}/icon-eu/index.html")
    st = _wait_frame(browser, lambda s: True, "first frame")
    # default: the latest complete run (not the newer run still in progress), first product
    assert st["src"] == "2026112300/pmsl/alps/pmsl_alps_000.png" and st["w"] == size[0]
    manifest = json.loads((www / "icon-eu/2026112300/manifest.json").read_text())
    sha = manifest["files"]["pmsl/alps/pmsl_alps_000.png"]["sha256"]
    assert st["query"] == f"v={sha[:12]}"  # immutable URL: a re-rendered frame gets a new one
    assert Select(browser.find_element(By.ID, "run")).first_selected_option.text == "20261123 00Z"
    run_labels = [o.text for o in Select(browser.find_element(By.ID, "run")).options]
    assert run_labels == ["20261123 06Z (in progress)", "20261123 00Z", "20261122 12Z"]
    assert "Mon 2026-11-23 00:00 UTC" in browser.find_element(By.ID, "validtime").text

    # the slider: a real click at its right end jumps to the last step
    slider = browser.find_element(By.ID, "slider")
    ActionChains(browser).move_to_element_with_offset(
        slider, slider.size["width"] // 2 - 2, 0).click().perform()
    st = _wait_frame(browser, lambda s: s["step"] == "5", "slider to last step")
    assert st["src"] == "2026112300/pmsl/alps/pmsl_alps_005.png"
    assert "05:00 UTC" in browser.find_element(By.ID, "validtime").text
    assert browser.find_element(By.ID, "slider").get_attribute("value") == "5"

    # keyboard arrows step (wrapping), and neighbours are preloaded
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    _wait_frame(browser, lambda s: s["step"] == "0", "arrow right wraps")
    body.send_keys(Keys.ARROW_RIGHT)
    _wait_frame(browser, lambda s: s["step"] == "1", "arrow right")
    body.send_keys(Keys.ARROW_LEFT)
    _wait_frame(browser, lambda s: s["step"] == "0", "arrow left")
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    for step in (2, 3):  # ahead of the current frame, never shown yet
        assert any(f"/pmsl_alps_{step:03d}.png?v=" in u for u in fetched), fetched

    # switch product: same step, other product's frame
    Select(browser.find_element(By.ID, "product")).select_by_value("t2m")
    st = _wait_frame(browser, lambda s: "/t2m/" in s["src"], "product switch")
    assert st["src"] == "2026112300/t2m/alps/t2m_alps_000.png"
    Select(browser.find_element(By.ID, "region")).select_by_value("europe")
    _wait_frame(browser, lambda s: s["src"] == "2026112300/t2m/europe/t2m_europe_000.png",
                "region switch")

    # play / pause
    browser.find_element(By.ID, "play").click()
    _wait_frame(browser, lambda s: s["step"] not in ("0",), "playing advances")
    browser.find_element(By.ID, "play").click()
    paused_at = _frame_state(browser)["step"]
    import time

    time.sleep(1.2)  # two ticks at the default speed
    assert _frame_state(browser)["step"] == paused_at

    screenshot = tmp_path / "viewer.png"
    browser.save_screenshot(str(screenshot))
    assert screenshot.stat().st_size > 10_000

    # run picker: older run, then the run still in progress (only its finished product)
    Select(browser.find_element(By.ID, "run")).select_by_value("2026112212")
    _wait_frame(browser, lambda s: s["src"].startswith("2026112212/t2m/europe/"), "older run")
    Select(browser.find_element(By.ID, "run")).select_by_value("2026112306")
    _wait_frame(browser, lambda s: s["src"].startswith("2026112306/precip/"), "partial run")
    assert "still being published" in browser.find_element(By.ID, "status").text
    assert [o.text for o in Select(browser.find_element(By.ID, "product")).options] == ["precip"]

    # the state is in the URL: a reload comes back to the same frame
    WebDriverWait(browser, 5).until(lambda d: "run=2026112306" in d.current_url)
    browser.refresh()
    _wait_frame(browser, lambda s: s["src"].startswith("2026112306/precip/"), "after reload")


def test_viewer_refuses_unsafe_manifest_paths_and_enforces_its_csp(
    tmp_path, http_root, browser, make_run_dir
):
    """A tampered manifest (off-site, scheme and parent-folder paths) produces no such link or
    image request; the page's Content-Security-Policy blocks anything not from its own site."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    www, base = http_root
    run = make_run_dir(tmp_path / "b", run_time=RUN_B, products=("pmsl",), steps=(0, 1, 2),
                       size=(320, 200))
    publish_run(run, LocalTarget(www), model="icon-eu", run_time=RUN_B)
    path = www / "icon-eu" / "2026112300" / "manifest.json"
    manifest = json.loads(path.read_text())
    region = next(iter(manifest["products"]["pmsl"]["regions"].values()))
    frames = sorted(region["frames"], key=lambda f: f["step"])
    good = frames[0]["file"]
    frames[1]["file"] = "//127.0.0.2:9/evil.png"
    frames[2]["file"] = "../../../etc/passwd"
    region["frames"] = frames
    region["videos"] = {"mp4": {"file": "javascript:alert(1)", "size": 2048},
                        "webm": {"file": "https://127.0.0.2:9/x.webm", "size": 2048},
                        "gif": {"file": good, "size": 2048, "sha256": "0" * 64}}
    path.write_text(json.dumps(manifest))

    browser.get(f"{base}/icon-eu/index.html")
    st = _wait_frame(browser, lambda s: True, "first frame")
    assert st["src"] == f"2026112300/{good}"
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR,
                                                                     "#downloads a")]
    assert len(links) == 1 and links[0].startswith(f"{base}/icon-eu/2026112300/"), links
    for step in ("1", "2"):  # the tampered frames are refused, never requested
        browser.find_element(By.ID, "next").click()
        WebDriverWait(browser, 10).until(
            lambda d: d.execute_script("return document.getElementById('frame').dataset.loaded")
            == "refused")
        assert "refusing unsafe file name" in browser.find_element(By.ID, "status").text
        assert browser.execute_script(
            "return document.getElementById('frame').getAttribute('src')") is None, step
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert not [r for r in resources if "127.0.0.2" in r or "passwd" in r], resources

    # the policy itself: a request to another site is blocked by the browser
    csp = browser.find_element(By.CSS_SELECTOR, "meta[http-equiv='Content-Security-Policy']")
    assert "default-src 'none'" in csp.get_attribute("content")
    browser.execute_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.blockedURI + ' ' + e.effectiveDirective));"
        "const i = new Image(); i.src = 'http://127.0.0.2:9/probe.png';"
        "document.body.appendChild(i);")
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return window.__csp.length"))
    assert "img-src" in browser.execute_script("return window.__csp.join(';')")


def test_viewer_follows_a_run_in_progress_and_flags_an_incomplete_one(
    tmp_path, http_root, browser, make_run_dir
):
    """A run published chunk by chunk: the viewer marks it in progress, picks up the next
    chunk's steps by itself (refreshing) without leaving the frame on screen, and flags the
    finished run as incomplete with the steps that never arrived."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from framecast.publish import publish_increment

    www, base = http_root
    expected = [0, 1, 2, 3, 4, 5]
    run = make_run_dir(tmp_path / "b", run_time=RUN_B, products=("t2m",), regions=("eu",),
                       steps=(0, 1, 2, 3), size=(320, 200))
    publish_increment(run, LocalTarget(www), [0, 1], model="icon-eu", run_time=RUN_B,
                      expected_steps=expected, latest_after_step=1)

    browser.get(f"{base}/icon-eu/index.html#refresh=1")
    _wait_frame(browser, lambda s: s["step"] == "0", "first frame of the run in progress")
    status = browser.find_element(By.ID, "status")
    assert "in progress" in status.text and "2 of 6 steps" in status.text, status.text
    assert "partial" in status.get_attribute("class")
    assert Select(browser.find_element(By.ID, "run")).first_selected_option.text == \
        "20261123 00Z (in progress)"
    assert browser.find_element(By.ID, "slider").get_attribute("max") == "1"
    browser.find_element(By.ID, "next").click()
    _wait_frame(browser, lambda s: s["step"] == "1", "second step")

    # the next chunk goes online: the page notices by itself, the frame on screen stays
    publish_increment(run, LocalTarget(www), [2, 3], model="icon-eu", run_time=RUN_B,
                      expected_steps=expected, latest_after_step=1)
    WebDriverWait(browser, 15).until(
        lambda d: d.find_element(By.ID, "slider").get_attribute("max") == "3",
        message="the new steps never appeared")
    assert "4 of 6 steps" in browser.find_element(By.ID, "status").text
    assert _frame_state(browser)["step"] == "1"
    browser.find_element(By.ID, "last").click()
    st = _wait_frame(browser, lambda s: s["step"] == "3", "a step of the new chunk")
    assert st["src"] == "2026112300/t2m/eu/t2m_eu_003.png"

    # the run ends without steps 4 and 5: flagged, and the page stops asking
    publish_run(run, LocalTarget(www), model="icon-eu", run_time=RUN_B, expected_steps=expected,
                latest_after_step=1)
    WebDriverWait(browser, 15).until(
        lambda d: "Incomplete run" in d.find_element(By.ID, "status").text,
        message="the incomplete run was never flagged")
    status = browser.find_element(By.ID, "status")
    assert "+4, +5 never arrived" in status.text
    assert "incomplete" in status.get_attribute("class")
    assert Select(browser.find_element(By.ID, "run")).first_selected_option.text == \
        "20261123 00Z (incomplete)"
    browser.refresh()  # the run picker reads the same from runs.json
    _wait_frame(browser, lambda s: True, "after reload")
    assert [o.text for o in Select(browser.find_element(By.ID, "run")).options] == [
        "20261123 00Z (incomplete)"]
    assert "Incomplete run" in browser.find_element(By.ID, "status").text
