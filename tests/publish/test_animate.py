"""MP4 + GIF per product/region, decoded again to check frame count, size and codec."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from framecast.animate import animate_run, encode_gif, encode_mp4
from framecast.errors import DataError
from framecast.publish import LocalTarget, publish_run

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


def probe(path) -> str:
    """ffmpeg's description of the file's streams (stderr of ``ffmpeg -i``)."""
    proc = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True)
    return proc.stderr


def test_animations_per_product_region_decode_with_all_frames(tmp_path, make_run_dir):
    run = make_run_dir(tmp_path, products=("t2m", "pmsl"), regions=("europe",),
                       steps=(0, 3, 6, 9, 12, 15), size=(201, 151))
    made = animate_run(run, fps=5)
    assert [(a.product, a.region, a.frames) for a in made] == [
        ("pmsl", "europe", 6), ("t2m", "europe", 6)]
    for a in made:
        assert a.mp4 == run / a.product / a.region / f"{a.product}_{a.region}.mp4"
        reader = imageio_ffmpeg.read_frames(str(a.mp4))
        meta = next(reader)
        frames = list(reader)
        assert len(frames) == 6
        assert meta["size"] == (202, 152)  # padded to even sizes for yuv420p
        assert meta["fps"] == pytest.approx(5)
        info = probe(a.mp4)
        assert "h264" in info and "yuv420p" in info
        with Image.open(a.gif) as gif:
            assert gif.n_frames == 6
            assert gif.size == (201, 151)
            assert gif.info.get("loop") == 0
        _check_decoded_frames(run, a, [np.frombuffer(f, dtype=np.uint8).reshape(152, 202, 3)
                                       for f in frames], tol=25)
        with Image.open(a.gif) as gif:
            gif_frames = []
            for k in range(gif.n_frames):
                gif.seek(k)
                gif_frames.append(np.asarray(gif.convert("RGB")))
        _check_decoded_frames(run, a, gif_frames, tol=12)
    assert not list(run.rglob(".*.tmp*"))


def _check_decoded_frames(run, a, frames, tol) -> None:
    """Decoded frame i is PNG i: the product box has its colour, and of all the run's PNGs of
    this product/region the closest to frame i is the one of step i (order, no duplicates or
    drops). Encoding the frames in another order, or one frame twice, fails here."""
    pngs = [np.asarray(Image.open(p).convert("RGB"), dtype=float)
            for p in sorted((run / a.product / a.region).glob("*.png"))]
    assert len(frames) == len(pngs)
    h, w = pngs[0].shape[:2]
    for i, f in enumerate(frames):
        f = f[:h, :w].astype(float)
        assert np.abs(f[40, 100] - pngs[i][40, 100]).max() < tol, (a.gif, i)
        dist = [np.abs(f - p).mean() for p in pngs]
        assert int(np.argmin(dist)) == i, (i, dist)


def test_videos_are_kept_when_up_to_date_and_published_in_the_manifest(tmp_path, make_run_dir):
    run = make_run_dir(tmp_path / "out", products=("t2m",), regions=("europe",))
    first = animate_run(run, gif_width=100)
    stamp = first[0].mp4.stat().st_mtime_ns
    animate_run(run)
    assert first[0].mp4.stat().st_mtime_ns == stamp  # not re-encoded
    with Image.open(first[0].gif) as gif:
        assert gif.size == (100, 75)
    publish_run(run, LocalTarget(tmp_path / "www"), model="icon-eu", run_time=RUN)
    manifest = json.loads((tmp_path / "www/icon-eu/2026112300/manifest.json").read_text())
    videos = manifest["products"]["t2m"]["regions"]["europe"]["videos"]
    assert set(videos) == {"mp4", "gif"}
    assert videos["mp4"]["file"] == "t2m/europe/t2m_europe.mp4"
    assert videos["mp4"]["size"] == first[0].mp4.stat().st_size
    assert (tmp_path / "www/icon-eu/2026112300/t2m/europe/t2m_europe.gif").is_file()


def test_missing_frame_is_a_clear_error(tmp_path, make_run_dir):
    run = make_run_dir(tmp_path, products=("t2m",), regions=("europe",))
    (run / "t2m/europe/t2m_europe_002.png").unlink()
    with pytest.raises(DataError, match="t2m_europe_002.png does not exist"):
        animate_run(run)
    with pytest.raises(DataError, match="no frames"):
        encode_mp4([], tmp_path / "x.mp4")
    assert not (run / "t2m/europe/t2m_europe.mp4").exists()


def test_single_format_encoders(tmp_path, make_run_dir):
    """encode_mp4 / encode_gif alone (used when only one of the two is out of date)."""
    run = make_run_dir(tmp_path, products=("t2m",), regions=("europe",), steps=(0, 1, 2))
    frames = sorted((run / "t2m/europe").glob("*.png"))
    encode_mp4(frames, tmp_path / "only.mp4", fps=2)
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / "only.mp4"))[0] == 3
    encode_gif(frames, tmp_path / "only.gif", fps=2, width=80)
    with Image.open(tmp_path / "only.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (80, 60)
    made = animate_run(run, gif=False)
    assert made[0].gif is None and made[0].mp4.is_file()
    assert not (run / "t2m/europe/t2m_europe.gif").exists()
