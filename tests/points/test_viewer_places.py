"""The viewer's "Places" tab in real headless Chromium, on a published run with places."""

from __future__ import annotations

import json
import urllib.request

import pytest

from framecast.points.places import Place
from framecast.points.runner import make_points
from framecast.publish import LocalTarget, publish_run
from framecast.records import run_dir
from tests.points.conftest import RUN

pytestmark = [pytest.mark.slow]


def _img(driver, img_id: str) -> dict:
    return driver.execute_script(
        "const i = document.getElementById(arguments[0]);"
        "return {src: i.getAttribute('src') || '', loaded: i.dataset.loaded,"
        " w: i.naturalWidth, hidden: i.hidden};", img_id)


def _wait(driver, img_id: str, predicate, what: str) -> dict:
    from selenium.webdriver.support.ui import WebDriverWait

    state: dict = {}

    def ok(d) -> bool:
        state.update(_img(d, img_id))
        return state["loaded"] == "1" and state["w"] > 0 and predicate(state)

    WebDriverWait(driver, 20).until(ok, message=f"{what}: last state {state}")
    return state


def test_places_tab_picks_a_place_and_shows_its_charts(points_icon_eu, tmp_path, http_root,
                                                       browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    www, base = http_root
    places = [Place("Madrid", 40.4165, -3.7026, 667, "Europe/Madrid"),
              Place("Hamburg", 53.5507, 9.993, 8, "Europe/Berlin")]
    make_points(points_icon_eu, tmp_path / "frames", places, sounding_steps=[0, 6])
    run_path = run_dir(tmp_path / "frames", "icon-eu", RUN)
    publish_run(run_path, LocalTarget(www), model="icon-eu", run_time=RUN)
    manifest = json.loads((www / "icon-eu/2026112300/manifest.json").read_text())
    assert sorted(manifest["places"]) == ["hamburg", "madrid"]

    browser.get(f"{base}/icon-eu/index.html")
    st = _wait(browser, "meteogram", lambda s: True, "first meteogram")
    assert st["src"].startswith("2026112300/points/hamburg/meteogram.png?v=")
    assert st["w"] == 1000
    picker = Select(browser.find_element(By.ID, "place"))
    assert [o.text for o in picker.options] == ["Hamburg", "Madrid"]
    assert browser.find_element(By.ID, "tab-places").get_attribute("aria-selected") == "true"
    _wait(browser, "section", lambda s: "/hamburg/section.png" in s["src"], "section")
    assert "53.55°N" in browser.find_element(By.ID, "placeinfo").text

    picker.select_by_value("madrid")
    _wait(browser, "meteogram", lambda s: "/madrid/meteogram.png" in s["src"], "switch place")
    _wait(browser, "section", lambda s: "/madrid/section.png" in s["src"], "switch section")
    snd = Select(browser.find_element(By.ID, "sounding"))
    assert [o.get_attribute("value") for o in snd.options] == ["0", "6"]
    snd.select_by_value("6")
    st = _wait(browser, "soundingimg", lambda s: "sounding_+006.png" in s["src"], "sounding")
    assert st["w"] == 900

    links = {a.text: a.get_attribute("href")
             for a in browser.find_elements(By.CSS_SELECTOR, "#placefiles a")}
    assert sorted(links) == ["CSV", "JSON"]
    with urllib.request.urlopen(links["CSV"]) as resp:  # noqa: S310 - loopback server
        text = resp.read().decode()
    assert text.startswith("# place: Madrid") and "\nvalid_time,step,t2m," in text

    WebDriverWait(browser, 5).until(lambda d: "place=madrid" in d.current_url)
    assert "sounding=6" in browser.current_url
    browser.refresh()
    _wait(browser, "soundingimg", lambda s: "/madrid/sounding_+006.png" in s["src"],
          "after reload")
