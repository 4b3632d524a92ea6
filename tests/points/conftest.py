"""Sample runs with every point-forecast variable (dew point, cloud layers, WW, profiles).

* ``points_icon_eu``: ICON-EU, steps 0-12/3, DWD layout.
* ``points_icon``: ICON global icosahedral (R24: 11,520 cells), steps 0-6/3, with CLAT/CLON.
* ``points_gfs``: GFS 0.25 deg, steps 0, 3, 6, multi-field pgrb2 files with ``.idx``.
* ``points_icon_eu_charts_only``: ICON-EU with the core chart variables only (no dew point,
  cloud layers, WW or pressure-level humidity): the "not available" paths.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.publish.test_viewer import browser, http_root  # noqa: F401 - Chromium fixtures

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


def point_sample_variables(model: str) -> list[str]:
    """The chart variables plus every point-forecast field the model's publisher ships."""
    from framecast.points.extract import candidate_variables
    from framecast.sampledata import VARIABLES
    from framecast.sampledata.variables import CORE_VARIABLES
    from framecast.sampledata.weather import PRESSURE_LEVELS

    levels = [lev for lev in PRESSURE_LEVELS if 300 <= lev <= 1000]
    extra = [n for n in candidate_variables(levels)
             if n in VARIABLES and VARIABLES[n].published_by(model)]
    return list(dict.fromkeys([*CORE_VARIABLES, *extra]))


def _generate(tmp_path_factory, model: str, steps: list[int], variables=None, **kw) -> Path:
    from framecast.sampledata import generate_run

    out = tmp_path_factory.mktemp(model)
    generate_run(model, RUN, steps, out,
                 variables=point_sample_variables(model) if variables is None else variables,
                 **kw)
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
    from framecast.sampledata.variables import CORE_VARIABLES

    return _generate(tmp_path_factory, "icon-eu", [0, 3, 6], list(CORE_VARIABLES))
