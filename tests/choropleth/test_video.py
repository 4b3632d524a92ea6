"""VideoWriter, concat_segments and make_gif against the real bundled ffmpeg."""

from __future__ import annotations

import numpy as np
import pytest

from framecast.errors import RenderError
from framecast.video import VideoWriter, concat_segments, make_gif


def _solid(rgb: tuple[int, int, int], w: int = 64, h: int = 48) -> np.ndarray:
    f = np.empty((h, w, 3), np.uint8)
    f[:] = rgb
    return f


def test_writer_encodes_frames_in_order(tmp_path, decode, nframes):
    out = tmp_path / "a.mp4"
    colours = [(250, 10, 10), (10, 250, 10), (10, 10, 250)] * 4
    with VideoWriter(out, 64, 48, 10) as w:
        for c in colours:
            w.write(_solid(c))
    assert nframes(out) == len(colours)
    frames = decode(out, [0, 1, 2, 11], 64, 48)
    for i, f in frames.items():
        assert np.abs(f[24, 32].astype(int) - colours[i]).max() < 12, (i, f[24, 32])
    assert not list(tmp_path.glob(".*part*"))


def test_rgb0_input_matches_rgb(tmp_path, decode):
    out = tmp_path / "b.mp4"
    f4 = np.zeros((48, 64, 4), np.uint8)
    f4[..., :3] = (200, 120, 40)
    f4[..., 3] = 77  # ignored padding byte
    with VideoWriter(out, 64, 48, 5, threads=1) as w:
        w.write(f4)
    px = decode(out, [0], 64, 48)[0][20, 20].astype(int)
    assert np.abs(px - (200, 120, 40)).max() < 12


def test_error_midway_keeps_previous_file_and_leaves_no_partial(tmp_path):
    out = tmp_path / "c.mp4"
    out.write_bytes(b"previous published video")
    with pytest.raises(RuntimeError), VideoWriter(out, 64, 48, 10) as w:
        w.write(_solid((1, 2, 3)))
        raise RuntimeError("renderer crashed")
    assert out.read_bytes() == b"previous published video"
    assert list(tmp_path.iterdir()) == [out]


def test_bad_frames_and_sizes_are_clear_errors(tmp_path):
    with pytest.raises(RenderError, match="even"):
        VideoWriter(tmp_path / "x.mp4", 63, 48, 10)
    with pytest.raises(RenderError, match="expected 64x48"), \
            VideoWriter(tmp_path / "x.mp4", 64, 48, 10) as w:
        w.write(_solid((0, 0, 0), 32, 48))
    with pytest.raises(RenderError, match="no frames"), VideoWriter(tmp_path / "y.mp4", 64, 48, 10):
        pass
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()


def test_encoder_failure_is_reported_and_removes_temp(tmp_path):
    out = tmp_path / "d.mp4"
    with pytest.raises(RenderError, match="ffmpeg"), \
            VideoWriter(out, 64, 48, 10, extra_args=["-no-such-option", "1"]) as w:
        for _ in range(50):
            w.write(_solid((9, 9, 9)))
    assert list(tmp_path.iterdir()) == []


def test_concat_is_lossless_and_ordered(tmp_path, decode, nframes):
    segs = []
    for k, c in enumerate([(240, 20, 20), (20, 240, 20), (20, 20, 240)]):
        p = tmp_path / f"s{k}.mp4"
        with VideoWriter(p, 64, 48, 10) as w:
            for _ in range(5):
                w.write(_solid(c))
        segs.append(p)
    out = concat_segments(segs, tmp_path / "all.mp4")
    assert nframes(out) == 15
    frames = decode(out, [0, 5, 10, 14], 64, 48)
    assert frames[0][10, 10, 0] > 200 and frames[5][10, 10, 1] > 200
    assert frames[10][10, 10, 2] > 200 and frames[14][10, 10, 2] > 200
    # -c copy: the joined file holds exactly the segments' encoded frames (no re-encode).
    seg_frames = decode(segs[1], [0], 64, 48)[0]
    assert np.array_equal(seg_frames, frames[5])


def test_concat_missing_segment_publishes_nothing(tmp_path):
    good = tmp_path / "s0.mp4"
    with VideoWriter(good, 64, 48, 10) as w:
        w.write(_solid((1, 1, 1)))
    with pytest.raises(RenderError, match="missing or empty"):
        concat_segments([good, tmp_path / "nope.mp4"], tmp_path / "all.mp4")
    assert not (tmp_path / "all.mp4").exists()


def test_make_gif_palette(tmp_path):
    from PIL import Image

    src = tmp_path / "v.mp4"
    with VideoWriter(src, 64, 48, 10) as w:
        for c in [(255, 0, 0), (0, 0, 255)] * 3:
            w.write(_solid(c))
    gif = make_gif(src, tmp_path / "v.gif", fps=5, width=32)
    im = Image.open(gif)
    assert im.format == "GIF" and im.size == (32, 24)
    assert im.n_frames >= 2
