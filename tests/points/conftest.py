"""Sample runs with every point-forecast variable (dew point, cloud layers, WW, profiles).

* ``points_icon_eu``: ICON-EU, steps 0-12/3, DWD layout.
* ``points_icon``: ICON global icosahedral (R24: 11,520 cells), steps 0-6/3, with CLAT/CLON.
* ``points_gfs``: GFS 0.25 deg, steps 0, 3, 6, multi-field pgrb2 files with ``.idx``.
* ``points_icon_eu_charts_only``: ICON-EU with the chart variables only (no dew point, cloud
  layers, WW or pressure-level humidity): the "not available" paths.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.publish.test_viewer import browser, http_root  # noqa: F401 - Chromium fixtures

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


def _generate(tmp_path_factory, model: str, steps: list[int], variables=None, **kw) -> Path:
    from framecast.sampledata import VARIABLES, generate_run

    out = tmp_path_factory.mktemp(model)
    generate_run(model, RUN, steps, out,
                 variables=list(VARIABLES) if variables is None else variables, **kw)
    return out


@pytest.fixture(scope="session")
def points_icon_eu(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory, "icon-eu", [0, 3, 6, 9, 12])


@pytest.fixture(scope="session")
def points_icon(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory, "icon", [0, 3, 6], icon_resolution=24)


@pytest.fixture(scope="session")
def points_gfs(tmp_path_factory) -> Path:
    return _generate(tmp_path_factory, "gfs", [0, 3, 6])


@pytest.fixture(scope="session")
def points_icon_eu_charts_only(tmp_path_factory) -> Path:
    from framecast.sampledata import CHART_VARIABLES

    return _generate(tmp_path_factory, "icon-eu", [0, 3, 6], list(CHART_VARIABLES))
