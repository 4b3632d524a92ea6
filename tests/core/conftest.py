"""Sample model runs shared by the core tests (generated once per session, real file layouts).

* ``icon_eu_run``: ICON-EU, steps 0..6, every sample variable, DWD layout (uncompressed).
* ``gfs_run``: GFS 0.25 deg, steps 0, 3, 6, multi-field pgrb2 files with ``.idx``.
* ``icon_run``: ICON global icosahedral (46,080 cells), steps 0..6, with CLAT/CLON.

The fixtures return the output directory; tests must not modify it (copy what you break).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
ICON_EU_STEPS = list(range(7))
GFS_STEPS = [0, 3, 6]
ICON_STEPS = list(range(7))


@pytest.fixture(scope="session")
def sample_run_time() -> datetime:
    return RUN


@pytest.fixture(scope="session")
def icon_eu_run(tmp_path_factory) -> Path:
    from framecast.sampledata import generate_run

    out = tmp_path_factory.mktemp("icon-eu")
    generate_run("icon-eu", RUN, ICON_EU_STEPS, out)
    return out


@pytest.fixture(scope="session")
def gfs_run(tmp_path_factory) -> Path:
    from framecast.sampledata import generate_run

    out = tmp_path_factory.mktemp("gfs")
    generate_run("gfs", RUN, GFS_STEPS, out)
    return out


@pytest.fixture(scope="session")
def icon_run(tmp_path_factory) -> Path:
    from framecast.sampledata import generate_run

    out = tmp_path_factory.mktemp("icon")
    generate_run("icon", RUN, ICON_STEPS, out)
    return out
