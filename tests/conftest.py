"""Shared test setup: offline geography, headless matplotlib, native libraries in a safe order.

Native libraries must be loaded in this order in one process: the PostgreSQL drivers' bundled
libpq first, then pyproj/cartopy (PROJ's database path), then ecCodes. Other orders can leave
PROJ without its database or crash the interpreter at exit (libldap's finaliser), which would
turn a green run into exit code 139.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psycopg  # noqa: F401  (load order, see above)
import psycopg2  # noqa: F401
import pytest

from framecast.geo import ensure_cartopy

ROOT = Path(__file__).resolve().parents[1]
# Shared helper modules of the tests (services.py: real servers; oracles.py: independent
# computations to check outputs against) are imported by name from this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent))
_SHARED = ROOT.parent / "shared" / "cartopy-data"
if "CARTOPY_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["CARTOPY_DATA_DIR"] = str(_SHARED)
os.environ.setdefault("MPLBACKEND", "Agg")
ensure_cartopy()


@pytest.fixture(autouse=True)
def _no_shared_state_from_earlier_tests():
    """Each test starts without the process-wide caches of the tests before it (decoded
    fields, map points and samplers): what a test counts must not depend on test order."""
    from framecast.dataset import _DECODED
    from framecast.render.frame import forget_shared

    _DECODED.clear()
    forget_shared()
