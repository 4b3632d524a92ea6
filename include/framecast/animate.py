"""MP4 (H.264) and animated GIF per product/region, encoded from the rendered PNG frames.

ffmpeg (the binary shipped in imageio-ffmpeg's wheel) reads the frames through its image2
demuxer from a folder of numbered symlinks, so frame order is the step order from the frame
records whatever the file names are, and no frame is copied. The MP4 is yuv420p with
``+faststart`` (plays in every browser, starts before fully downloaded), dimensions padded to
even numbers as yuv420p requires. The GIF uses a palette computed from all frames
(palettegen/paletteuse), which keeps filled contour colours flat instead of dithered noise.
Outputs are written to a hidden temporary name and renamed, so a published folder never
holds a truncated video.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from framecast.errors import DataError, RenderError
from framecast.records import read_records
from framecast.video import filter_number


@dataclass(frozen=True)
class Animation:
    """Videos made for one product/region."""

    product: str
    region: str
    frames: int
    mp4: Path | None
    gif: Path | None


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary (``FRAMECAST_FFMPEG`` overrides the bundled one)."""
    env = os.environ.get("FRAMECAST_FFMPEG")
    if env:
        return env
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RenderError(f"ffmpeg failed making {what} (exit {proc.returncode}): {tail}")


def _link_sequence(frames: list[Path], folder: Path) -> str:
    """Numbered symlinks ``f00000.png``...; returns the image2 pattern."""
    for i, frame in enumerate(frames):
        os.symlink(frame.resolve(), folder / f"f{i:05d}.png")
    return str(folder / "f%05d.png")


def _replace_from_temp(out: Path, make) -> None:
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.tmp{out.suffix}")
    try:
        make(tmp)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _ffmpeg_on_frames(frames: list[Path], fps: float, outputs: list[str], what: str) -> None:
    """Run ffmpeg with ``frames`` as its numbered input sequence and ``outputs`` as the rest."""
    with tempfile.TemporaryDirectory(prefix="framecast-anim-") as d:
        pattern = _link_sequence(frames, Path(d))
        _run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
              "-framerate", f"{fps:g}", "-i", pattern, *outputs], what)


def encode_mp4(frames: list[Path], out: Path, *, fps: float = 4.0, crf: int = 23) -> Path:
    """H.264 MP4 of ``frames`` in the given order."""
    _check_frames(frames, out)

    def make(tmp: Path) -> None:
        _ffmpeg_on_frames(frames, fps, [
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
            "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(tmp),
        ], f"{out}")

    _replace_from_temp(out, make)
    return out


def encode_gif(
    frames: list[Path], out: Path, *, fps: float = 4.0, width: int | None = None
) -> Path:
    """Palette-optimised looping GIF of ``frames``; ``width`` scales it down (keeps aspect)."""
    _check_frames(frames, out)
    scale = (f"scale={filter_number(width, f'GIF width for {out}', 16, 7680)}:-1:flags=lanczos,"
             if width else "")
    graph = (
        f"[0:v]{scale}split[a][b];[a]palettegen=stats_mode=diff[p];"
        "[b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle"
    )

    def make(tmp: Path) -> None:
        _ffmpeg_on_frames(frames, fps, ["-filter_complex", graph, "-loop", "0", "-f", "gif",
                                         str(tmp)], f"{out}")

    _replace_from_temp(out, make)
    return out


def encode_videos(
    frames: list[Path], mp4: Path, gif: Path, *, fps: float = 4.0, crf: int = 23,
    gif_width: int | None = None,
) -> tuple[Path, Path]:
    """MP4 and GIF in one ffmpeg run: the PNGs are decoded once and the process started once,
    which is most of the cost for short forecast sequences."""
    _check_frames(frames, mp4)
    scale = (f"scale={filter_number(gif_width, f'GIF width for {gif}', 16, 7680)}"
             ":-1:flags=lanczos," if gif_width else "")
    graph = (
        "[0:v]split=2[m][g];[m]pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white[mo];"
        f"[g]{scale}split[a][b];[a]palettegen=stats_mode=diff[p];"
        "[b][p]paletteuse=dither=bayer:bayer_scale=5:diff_mode=rectangle[go]"
    )
    tmp_mp4 = mp4.with_name(f".{mp4.stem}.{os.getpid()}.tmp{mp4.suffix}")
    tmp_gif = gif.with_name(f".{gif.stem}.{os.getpid()}.tmp{gif.suffix}")
    try:
        _ffmpeg_on_frames(frames, fps, [
            "-filter_complex", graph,
            "-map", "[mo]", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
            "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4", str(tmp_mp4),
            "-map", "[go]", "-loop", "0", "-f", "gif", str(tmp_gif),
        ], f"{mp4} and {gif}")
        os.replace(tmp_mp4, mp4)
        os.replace(tmp_gif, gif)
    finally:
        tmp_mp4.unlink(missing_ok=True)
        tmp_gif.unlink(missing_ok=True)
    return mp4, gif


def _check_frames(frames: list[Path], out: Path) -> None:
    if not frames:
        raise DataError(f"{out}: no frames to animate")
    for f in frames:
        if not Path(f).is_file():
            raise DataError(f"{out}: frame {f} does not exist")


def _up_to_date(out: Path, frames: list[Path]) -> bool:
    try:
        built = out.stat().st_mtime
    except FileNotFoundError:
        return False
    return all(f.stat().st_mtime <= built for f in frames)


def animate_run(
    run_path: Path,
    *,
    products: Iterable[str] | None = None,
    fps: float = 4.0,
    mp4: bool = True,
    gif: bool = True,
    gif_width: int | None = None,
    force: bool = False,
) -> list[Animation]:
    """Videos for every product/region of a rendered run, in step order from its records.

    Written as ``<run>/<product>/<region>/<product>_<region>.mp4|.gif`` beside the frames,
    where :func:`framecast.publish.publish_run` picks them up. Videos newer than all their
    frames are kept (re-running after a partial failure only encodes what is missing) unless
    ``force``.
    """
    run_path = Path(run_path)
    wanted = set(products) if products is not None else None
    groups: dict[tuple[str, str], list[tuple[int, Path]]] = defaultdict(list)
    for rec in read_records(run_path):
        if wanted is None or rec.product in wanted:
            groups[(rec.product, rec.region)].append((rec.step, run_path / rec.path))
    if not groups:
        raise DataError(f"{run_path}: no frame records to animate")
    made: list[Animation] = []
    for (product, region), items in sorted(groups.items()):
        frames = [p for _, p in sorted(items)]
        folder = run_path / product / region
        folder.mkdir(parents=True, exist_ok=True)
        out_mp4 = folder / f"{product}_{region}.mp4" if mp4 else None
        out_gif = folder / f"{product}_{region}.gif" if gif else None
        need_mp4 = out_mp4 is not None and (force or not _up_to_date(out_mp4, frames))
        need_gif = out_gif is not None and (force or not _up_to_date(out_gif, frames))
        if need_mp4 and need_gif:
            encode_videos(frames, out_mp4, out_gif, fps=fps, gif_width=gif_width)
        elif need_mp4:
            encode_mp4(frames, out_mp4, fps=fps)
        elif need_gif:
            encode_gif(frames, out_gif, fps=fps, width=gif_width)
        made.append(Animation(product, region, len(frames), out_mp4, out_gif))
    return made
