"""Shared fixtures for the Airflow-side tests: sample runs in the real upstream layouts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
RUN2 = datetime(2026, 11, 23, 6, tzinfo=UTC)
STEPS = [0, 1, 2, 3]
VARIABLES = ["t2m", "msl"]


class SampleRuns:
    """Generates each (model, run) once per session into one upstream tree per model."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: set[tuple[str, datetime]] = set()

    def get(self, model: str, run: datetime = RUN, steps: list[int] = STEPS) -> Path:
        from framecast.sampledata import generate_run

        out = self.root / model
        if (model, run) not in self._done:
            generate_run(model, run, steps, out, variables=VARIABLES, bz2=model != "gfs",
                         icon_resolution=16 if model == "icon" else None)
            self._done.add((model, run))
        return out


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory) -> SampleRuns:
    return SampleRuns(tmp_path_factory.mktemp("upstream"))
