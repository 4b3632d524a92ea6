"""Values that end up inside an ffmpeg filter graph are numbers, checked at every boundary.

A filter graph is a language: ``fps=5,vflip`` would run a second filter, and filters such as
``movie=`` read arbitrary files. The spec, the CLI and the functions that build the graph all
refuse anything but a plain number in range (real ffmpeg, real files).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from framecast.choropleth.spec import spec_from_dict
from framecast.errors import RenderError, SpecError
from framecast.video import VideoWriter, make_gif

HOSTILE = ["5,vflip", "5[x];movie=/etc/passwd[y]", "5:round=up", float("nan"), float("inf"),
           True, -1, 0, "5"]


@pytest.fixture
def clip(tmp_path):
    src = tmp_path / "v.mp4"
    with VideoWriter(src, 64, 48, 10) as w:
        for c in [(255, 0, 0), (0, 0, 255)] * 3:
            f = np.empty((48, 64, 3), np.uint8)
            f[:] = c
            w.write(f)
    return src


@pytest.mark.parametrize("fps", HOSTILE)
def test_make_gif_refuses_anything_but_a_number(clip, tmp_path, fps):
    out = tmp_path / "v.gif"
    with pytest.raises(RenderError, match="must be"):
        make_gif(clip, out, fps=fps)
    assert not out.exists() and not list(tmp_path.glob(".*"))


def test_make_gif_refuses_a_hostile_width(clip, tmp_path):
    with pytest.raises(RenderError, match="must be"):
        make_gif(clip, tmp_path / "v.gif", width="32,vflip")
    assert make_gif(clip, tmp_path / "ok.gif", fps=5.0, width=32).is_file()  # numbers work


@pytest.mark.parametrize("key, value", [("fps", "5,vflip"), ("fps", True), ("fps", 500),
                                        ("width", "320[x];movie=/etc/passwd"), ("width", 32.5)])
def test_spec_refuses_hostile_gif_options(key, value):
    d = {"name": "t", "source": {"url": "sqlite:///x.db", "table": "t"},
         "start": "2020-01-01", "end": "2020-02-01", "outputs": {"gif": {key: value}}}
    with pytest.raises(SpecError, match=f"outputs.gif.{key}") as ei:
        spec_from_dict(d, "anims/t.yaml")
    assert "anims/t.yaml" in str(ei.value)


def test_encode_gif_refuses_a_hostile_width(tmp_path):
    from PIL import Image

    from framecast.animate import encode_gif

    frames = []
    for i in range(2):
        p = tmp_path / f"f{i}.png"
        Image.new("RGB", (64, 48), (i * 100, 0, 0)).save(p)
        frames.append(p)
    with pytest.raises(RenderError, match="must be"):
        encode_gif(frames, tmp_path / "a.gif", width="32,vflip")
    assert not (tmp_path / "a.gif").exists()


def test_publish_cli_refuses_a_hostile_fps(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "framecast.cli", "publish", str(tmp_path),
                           "--target", str(tmp_path / "www"), "--video", "--fps", "5,vflip"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--fps" in proc.stderr, proc.stderr[-500:]
