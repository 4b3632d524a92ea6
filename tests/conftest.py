"""Shared test setup: offline geography, headless matplotlib, no network downloads."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SHARED = ROOT.parent / "shared" / "cartopy-data"
if "CARTOPY_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["CARTOPY_DATA_DIR"] = str(_SHARED)
os.environ.setdefault("MPLBACKEND", "Agg")
