"""``framecast meteogram`` / ``framecast sounding`` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image

from framecast.records import read_records


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "framecast.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=900)


def test_meteogram_for_gazetteer_names_writes_charts_and_data(points_icon_eu, tmp_path):
    proc = _cli("meteogram", "--data", points_icon_eu, "--place", "Hamburg,München",
                "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "icon-eu" / "2026112300"
    for slug in ("hamburg", "munich"):
        assert Image.open(run / "points" / slug / "meteogram.png").size == (1000, 1250)
        assert Image.open(run / "points" / slug / "section.png").size == (1000, 600)
        doc = json.loads((run / "points" / slug / f"{slug}.json").read_text())
        assert doc["data"]["step"] == [0, 3, 6, 9, 12]
        assert (run / "points" / slug / f"{slug}.csv").read_text().startswith("# place: ")
    index = json.loads((run / "points" / "index.json").read_text())
    assert [p["name"] for p in index["places"]] == ["Hamburg", "Munich"]
    assert index["places"][0]["meteogram_panels"]["clouds"] == "ok"
    recs = read_records(run)
    assert sorted({r.product for r in recs}) == ["meteogram", "pointcsv", "pointjson",
                                                 "section"]
    assert "100%" in proc.stderr  # the progress bar ran to the end
    assert "4 images and 4 data files for 2 place(s)" in proc.stdout


def test_sounding_for_a_lat_lon_point(points_icon_eu, tmp_path):
    proc = _cli("sounding", "--data", points_icon_eu, "--lat", "48.2", "--lon", "16.37",
                "--name", "Vienna", "--steps", "0,12", "--out", tmp_path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    d = tmp_path / "icon-eu" / "2026112300" / "points" / "vienna"
    assert sorted(p.name for p in d.glob("*.png")) == ["sounding_+000.png", "sounding_+012.png"]
    img = Image.open(d / "sounding_+012.png")
    assert img.size == (900, 900) and "cape=" in img.text["annotations"]


def test_bad_places_are_one_line_errors(points_icon_eu, tmp_path):
    proc = _cli("meteogram", "--data", points_icon_eu, "--place", "Hamburgg", "--out", tmp_path)
    assert proc.returncode == 2
    assert "unknown place 'Hamburgg'" in proc.stderr and "Hamburg" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _cli("meteogram", "--data", points_icon_eu, "--place", "Tokyo", "--out", tmp_path)
    assert proc.returncode == 2
    assert "'Tokyo' (35.690 N, 139.692 E) is outside the icon-eu domain" in proc.stderr
    assert not (tmp_path / "icon-eu").exists()  # nothing half-written
