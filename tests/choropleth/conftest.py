"""Shared helpers for the choropleth tests: decode video frames with the bundled ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from framecast.video import ffmpeg_exe


def decode_frames(path: Path, indices: list[int], width: int, height: int) -> dict[int, np.ndarray]:
    """Decode the given frame numbers of a video to (h, w, 3) uint8 arrays."""
    expr = "+".join(f"eq(n\\,{i})" for i in sorted(indices))
    proc = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-vf", f"select={expr}",
         "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True, check=True)
    size = width * height * 3
    data = proc.stdout
    assert len(data) == size * len(indices), (len(data), size, indices)
    return {i: np.frombuffer(data[k * size:(k + 1) * size], np.uint8).reshape(height, width, 3)
            for k, i in enumerate(sorted(indices))}


def count_frames(path: Path) -> int:
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


@pytest.fixture
def decode():
    return decode_frames


@pytest.fixture
def nframes():
    return count_frames
