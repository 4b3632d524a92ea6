"""The installed package carries every configuration and viewer file the source tree has.

Images and ``pip install .`` deployments read palettes, logos, places and viewer files from the
installed package, not from the checkout; a file missing from the wheel only shows when a
container starts. The wheel is built here and its listing compared with the source folders.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "include" / "framecast"


def test_wheel_holds_every_config_and_viewer_file(tmp_path):
    # from a clean copy, as an image build sees it: a local egg-info would list files the
    # configuration does not
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", src)
    shutil.copytree(PKG, src / "include" / "framecast",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                    "-w", str(tmp_path), str(src)], check=True, timeout=300)
    (wheel,) = tmp_path.glob("framecast-*.whl")
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    wanted = {f"framecast/{p.relative_to(PKG).as_posix()}"
              for folder in ("config", "viewer") for p in (PKG / folder).rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    assert wanted, "no data files found in the source tree"
    missing = sorted(wanted - in_wheel)
    assert not missing, f"not packaged (pyproject.toml package-data): {missing}"
