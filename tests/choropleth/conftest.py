"""Shared helpers for the choropleth tests: decode video frames with the bundled ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from siblings import load_sibling

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


def _load_helper(name: str):
    """A helper module beside this file (see tests/siblings.py)."""
    return load_sibling(__file__, name)


@pytest.fixture(scope="session")
def oracles():
    """Independent frame oracles (cartopy-projected representative points, colormaps)."""
    return _load_helper("choropleth_oracles")


@pytest.fixture(scope="session")
def realdata():
    """The World-Bank-shaped table, stored with any time type and any country code system."""
    return _load_helper("realdata")


@pytest.fixture(scope="module")
def pg_db():
    """A fresh PostgreSQL database whose session time zone is not UTC (America/New_York), so
    any zone-dependent SQL shows; dropped afterwards (tests/services.py: a missing server is a
    failure, not a skip)."""
    import services

    with services.temp_database("fc_choro", "psycopg2") as url:
        name = url.rsplit("/", 1)[1]
        services.admin_sql(f"ALTER DATABASE \"{name}\" SET timezone TO 'America/New_York'")
        yield url
