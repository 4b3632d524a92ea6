"""The ``framecast choropleth`` command line, run as users run it (a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

FRAMECAST = str(Path(sys.executable).with_name("framecast"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FRAMECAST, "choropleth", *args], capture_output=True, text=True,
                          timeout=300)


def test_sample_db_render_with_progress_png_and_warnings(tmp_path):
    db = tmp_path / "s.sqlite"
    db.touch()
    made = _run("sample-db", f"sqlite:///{db}", "--table", "daily", "--countries", "190",
                "--days", "40", "--warts")
    assert made.returncode == 0, made.stderr
    assert "daily:" in made.stdout
    spec = tmp_path / "a.yaml"
    spec.write_text("""
name: cli_anim
source: {connection: some_airflow_conn, table: daily, code_column: code,
         time_column: date, metric: value, aggregate: max}
interval: 2d
start: 2020-01-01
end: 2020-02-09
size: [400, 240]
style: {kind: continuous, cmap: magma, legend_title: cases, caption: "{count} countries"}
outputs: {mp4: true, png: true}
""")
    out = tmp_path / "out"
    r = _run("render", str(spec), "--url", f"sqlite:///{db}", "--out", str(out),
             "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "20/20" in r.stderr  # the progress bar reached the end
    assert "cli_anim: 20 frames" in r.stdout
    assert "warning:" in r.stdout and "OWID_WRL" in r.stdout
    assert "NULL value(s)" in r.stdout and "non-numeric" in r.stdout
    pngs = sorted((out / "cli_anim_frames").glob("*.png"))
    assert len(pngs) == 20 and Image.open(pngs[0]).size == (400, 240)
    # The MP4 decodes to the 20 frames, in order: each decoded frame is closest to its PNG.
    import imageio_ffmpeg
    import numpy as np

    reader = imageio_ffmpeg.read_frames(str(out / "cli_anim.mp4"))
    meta = next(reader)
    assert meta["size"] == (400, 240)
    frames = [np.frombuffer(f, np.uint8).reshape(240, 400, 3).astype(float) for f in reader]
    refs = [np.asarray(Image.open(p).convert("RGB"), dtype=float) for p in pngs]
    assert len(frames) == 20
    for i, f in enumerate(frames):
        assert int(np.argmin([np.abs(f - r).mean() for r in refs])) == i, i
        assert np.abs(f - refs[i]).mean() < 6, i


def test_check_and_clear_errors(tmp_path):
    ok = _run("check", str(Path(__file__).resolve().parents[2] / "include" / "framecast" /
                             "config" / "animations"))
    assert ok.returncode == 0 and "covid_daily" in ok.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsource: {url: 'sqlite:///x', table: t}\nstart: 2020-01-05\n"
                   "end: 2020-01-01\n")
    r = _run("check", str(bad))
    assert r.returncode == 2
    assert "bad.yaml" in r.stderr and "empty date range" in r.stderr
    spec = tmp_path / "c.yaml"
    spec.write_text("name: c\nsource: {connection: conn, table: t}\nstart: 2020-01-01\n"
                    "end: 2020-01-05\n")
    r = _run("render", str(spec), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "pass --url" in r.stderr
    r = _run("render", str(spec), "--url", f"sqlite:///{tmp_path / 'none.sqlite'}",
             "--out", str(tmp_path / "o"), "--no-progress")
    assert r.returncode == 7 and "does not exist" in r.stderr
    assert "Traceback" not in r.stderr
