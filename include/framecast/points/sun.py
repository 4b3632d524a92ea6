"""Solar elevation, for day/night shading on meteograms (NOAA's low-precision formulas).

Accurate to a few tenths of a degree, plenty to shade the hours between sunset and sunrise.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np


def solar_elevation(lat: float, lon: float, times: Sequence[datetime]) -> np.ndarray:
    """Sun elevation (degrees) at (lat, lon) at the tz-aware ``times``."""
    t = np.array([(x.astimezone(UTC) - datetime(2000, 1, 1, 12, tzinfo=UTC)).total_seconds()
                  for x in times]) / 86400.0  # days since J2000.0
    g = np.deg2rad((357.529 + 0.98560028 * t) % 360.0)
    q = (280.459 + 0.98564736 * t) % 360.0
    lam = np.deg2rad(q + 1.915 * np.sin(g) + 0.020 * np.sin(2 * g))
    eps = np.deg2rad(23.439 - 0.00000036 * t)
    dec = np.arcsin(np.sin(eps) * np.sin(lam))
    ra = np.rad2deg(np.arctan2(np.cos(eps) * np.sin(lam), np.cos(lam)))
    gmst = (18.697374558 + 24.06570982441908 * t) % 24.0
    hour_angle = np.deg2rad(((gmst * 15.0 + lon - ra + 180.0) % 360.0) - 180.0)
    la = np.deg2rad(lat)
    sin_el = np.sin(la) * np.sin(dec) + np.cos(la) * np.cos(dec) * np.cos(hour_angle)
    return np.rad2deg(np.arcsin(np.clip(sin_el, -1.0, 1.0)))


def night_spans(lat: float, lon: float, start: datetime, end: datetime,
                resolution_min: int = 10) -> list[tuple[datetime, datetime]]:
    """Intervals of [start, end] with the sun below the horizon."""
    n = int((end - start).total_seconds() // (resolution_min * 60)) + 1
    times = [start + timedelta(minutes=resolution_min * k) for k in range(n)]
    dark = solar_elevation(lat, lon, times) < -0.833  # refraction + the sun's radius
    spans, begin = [], None
    for t, d in zip(times, dark, strict=True):
        if d and begin is None:
            begin = t
        elif not d and begin is not None:
            spans.append((begin, t))
            begin = None
    if begin is not None:
        spans.append((begin, times[-1]))
    return spans
