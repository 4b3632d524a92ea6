"""Raw frames to video through the ffmpeg binary imageio-ffmpeg ships.

Frames are piped to ffmpeg as raw RGB, so no per-frame image encoding happens in Python. Every
output is written to a temporary name beside the target and renamed only when ffmpeg exited
cleanly: a reader (or a publish step) never sees a truncated video, and an existing file of the
same name survives a failed run untouched.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from framecast.errors import RenderError

_IN_PIX_FMTS = {3: "rgb24", 4: "rgb0"}


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary; the bundled one unless ``FRAMECAST_FFMPEG`` overrides it."""
    env = os.environ.get("FRAMECAST_FFMPEG")
    if env:
        return env
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _temp_beside(path: Path) -> Path:
    """A fresh temp name in the target's folder, so the final rename is atomic (same filesystem)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}",
                                dir=path.parent)
    os.close(fd)
    return Path(name)


def _run_ffmpeg(args: list[str], what: str) -> None:
    proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-5:]
        raise RenderError(f"ffmpeg failed writing {what} (exit {proc.returncode}): "
                          + " | ".join(tail))


class VideoWriter:
    """Context manager piping raw frames into one ffmpeg encoder process.

    The defaults (libx264, yuv420p, encoder-default CRF and preset) are the settings
    matplotlib's ``FFMpegWriter`` uses for ``.mp4``, so file sizes and quality compare like for
    like. ``threads`` limits the encoder's threads (``-threads N``): with one writer per CPU core
    in parallel segments, letting each encoder spawn a thread per core only adds contention.
    ``write`` also accepts (h, w, 4) frames whose fourth byte is ignored (``rgb0``): a renderer
    working on packed 32-bit pixels can pass its buffer without a copy.
    """

    def __init__(self, path: str | os.PathLike[str], width: int, height: int, fps: float, *,
                 codec: str = "libx264", pix_fmt: str = "yuv420p", crf: int | None = None,
                 preset: str | None = None, extra_args: Sequence[str] = (),
                 threads: int | None = None) -> None:
        if width <= 0 or height <= 0:
            raise RenderError(f"video size {width}x{height} for {path} must be positive")
        if pix_fmt == "yuv420p" and (width % 2 or height % 2):
            raise RenderError(
                f"video size {width}x{height} for {path}: yuv420p needs even width and height")
        if fps <= 0:
            raise RenderError(f"fps {fps!r} for {path} must be positive")
        self.path = Path(path)
        self.width = int(width)
        self.height = int(height)
        self.fps = fps
        self.codec = codec
        self.pix_fmt = pix_fmt
        self.crf = crf
        self.preset = preset
        self.extra_args = tuple(extra_args)
        self.threads = threads
        self.frames_written = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._channels: int | None = None
        self._stderr: Any = None

    def _command(self, channels: int, out: Path) -> list[str]:
        args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-vcodec", "rawvideo",
                "-s", f"{self.width}x{self.height}", "-pix_fmt", _IN_PIX_FMTS[channels],
                "-framerate", str(self.fps), "-i", "pipe:",
                "-vcodec", self.codec, "-pix_fmt", self.pix_fmt]
        if self.crf is not None:
            args += ["-crf", str(self.crf)]
        if self.preset is not None:
            args += ["-preset", self.preset]
        if self.threads is not None:
            args += ["-threads", str(self.threads)]
        if self.path.suffix.lower() in (".mp4", ".mov", ".m4v"):
            args += ["-movflags", "+faststart"]
        args += list(self.extra_args)
        # The temp name ends in ".partNN.mp4": name the container so ffmpeg never guesses.
        fmt = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
               ".webm": "webm", ".ts": "mpegts"}.get(self.path.suffix.lower())
        if fmt:
            args += ["-f", fmt]
        return args + [str(out)]

    def __enter__(self) -> VideoWriter:
        return self

    def _start(self, channels: int) -> None:
        self._channels = channels
        self._tmp = _temp_beside(self.path)
        # A file, not a pipe: nobody reads stderr while frames are written, and a full pipe
        # would block the encoder. Kept for the encoder's lifetime, closed in _cleanup().
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(self._command(channels, self._tmp),
                                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._stderr, bufsize=0)
        except OSError as exc:
            self._tmp.unlink(missing_ok=True)
            raise RenderError(f"cannot start ffmpeg for {self.path}: {exc}") from exc

    def write(self, frame: np.ndarray) -> None:
        """Send one (height, width, 3) uint8 RGB frame (or (h, w, 4) RGB0) to the encoder."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in _IN_PIX_FMTS:
            raise RenderError(f"frame for {self.path} must be (h, w, 3|4) uint8, got "
                              f"{frame.shape} {frame.dtype}")
        if frame.shape[0] != self.height or frame.shape[1] != self.width:
            raise RenderError(f"frame {self.frames_written} for {self.path} is "
                              f"{frame.shape[1]}x{frame.shape[0]}, expected "
                              f"{self.width}x{self.height}")
        if self._proc is None:
            self._start(frame.shape[2])
        elif frame.shape[2] != self._channels:
            raise RenderError(f"frame {self.frames_written} for {self.path} has "
                              f"{frame.shape[2]} channels, earlier frames {self._channels}")
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
        except BrokenPipeError as exc:
            raise RenderError(f"ffmpeg stopped while writing frame {self.frames_written} "
                              f"of {self.path}: {self._stderr_tail()}") from exc
        self.frames_written += 1

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-5:])

    def close(self) -> Path:
        """Finish encoding and move the video into place; raises RenderError on failure."""
        if self._proc is None:
            raise RenderError(f"no frames were written to {self.path}; not creating a video")
        assert self._proc.stdin is not None and self._tmp is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        rc = self._proc.wait()
        self._proc = None
        if rc != 0:
            tail = self._stderr_tail()
            self.abort()
            raise RenderError(f"ffmpeg failed writing {self.path} (exit {rc}): {tail}")
        os.replace(self._tmp, self.path)
        self._tmp = None
        self._cleanup()
        return self.path

    def _cleanup(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def abort(self) -> None:
        """Stop the encoder and remove the partial output; the target path is left untouched."""
        if self._proc is not None:
            with contextlib.suppress(BrokenPipeError):
                if self._proc.stdin is not None:
                    self._proc.stdin.close()
            self._proc.kill()
            self._proc.wait()
            self._proc = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
        self._cleanup()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
            return
        self.close()


def concat_segments(segments: Iterable[str | os.PathLike[str]],
                    out: str | os.PathLike[str]) -> Path:
    """Join encoded segments in the given order without re-encoding (ffmpeg concat demuxer).

    Segments must share codec parameters (same writer settings), which is how parallel
    segment rendering produces them. ``-c copy`` keeps it lossless and takes a fraction of a
    second even for long videos; the result appears atomically at ``out``.
    """
    out = Path(out)
    segs = [Path(s).resolve() for s in segments]
    if not segs:
        raise RenderError(f"no segments to concatenate into {out}")
    for s in segs:
        if not s.is_file() or s.stat().st_size == 0:
            raise RenderError(f"segment {s} for {out} is missing or empty")
    tmp = _temp_beside(out)
    list_file = _temp_beside(out.with_suffix(".txt"))
    try:
        list_file.write_text("".join(
            "file '" + str(s).replace("'", "'\\''") + "'\n" for s in segs))
        fmt = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}.get(out.suffix.lower(), "mp4")
        _run_ffmpeg([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat",
                     "-safe", "0", "-i", str(list_file), "-c", "copy",
                     "-movflags", "+faststart", "-f", fmt, str(tmp)], str(out))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
        list_file.unlink(missing_ok=True)
    return out


def filter_number(value: object, name: str, low: float, high: float) -> str:
    """``value`` as text safe to place inside an ffmpeg filter graph, or RenderError.

    Filter graphs are a small language (``,`` ``;`` ``[`` ``]`` ``:`` start new filters,
    options and links, and filters such as ``movie`` read files), so anything pasted in must
    be a plain number: real int/float only (no strings, no bools), finite, within range.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RenderError(f"{name} {value!r} must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise RenderError(f"{name} {value!r} must be between {low:g} and {high:g}")
    return f"{value:g}" if isinstance(value, float) else str(value)


def make_gif(src: str | os.PathLike[str], out: str | os.PathLike[str], *,
             fps: float | None = None, width: int | None = None,
             max_colors: int = 256, dither: str = "sierra2_4a") -> Path:
    """Convert a video into a palette-optimised GIF (two-pass palettegen/paletteuse).

    One global palette computed from the whole clip keeps flat map colours exact and avoids the
    banding of ffmpeg's default 8-bit web palette. ``fps`` and ``width`` reduce size for GIFs,
    which grow quickly; the result appears atomically at ``out``.
    """
    src, out = Path(src), Path(out)
    if not src.is_file():
        raise RenderError(f"GIF source {src} does not exist")
    if not 2 <= max_colors <= 256:
        raise RenderError(f"max_colors {max_colors} for {out} must be between 2 and 256")
    filters = []
    if fps is not None:
        filters.append(f"fps={filter_number(fps, f'GIF fps for {out}', 0.01, 120)}")
    if width is not None:
        filters.append(f"scale={filter_number(width, f'GIF width for {out}', 16, 7680)}"
                       ":-1:flags=lanczos")
    pre = ",".join(filters) + "," if filters else ""
    graph = (f"[0:v]{pre}split[a][b];[a]palettegen=max_colors={max_colors}:stats_mode=full[p];"
             f"[b][p]paletteuse=dither={dither}")
    tmp = _temp_beside(out)
    try:
        _run_ffmpeg([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
                     "-filter_complex", graph, "-f", "gif", str(tmp)], str(out))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
