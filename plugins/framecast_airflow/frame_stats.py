"""Per-frame timers through Airflow's own metrics backend.

Why through Airflow: deployments already point Airflow's ``[metrics]`` settings at their StatsD
or OpenTelemetry collector; sending frame timers the same way puts them on the same dashboards
with no second configuration. The names come from :func:`framecast.metrics.emit.frame_timings`
so they match what ``framecast metrics emit`` sends outside Airflow. With metrics off in
Airflow, the backend is a no-op and this costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from framecast.metrics.emit import frame_timings
from framecast.records import FrameRecord


def emit_frame_timings(records: Iterable[FrameRecord], prefix: str = "framecast") -> int:
    """Send one timer per frame and stage via ``airflow.sdk.observability.stats``; returns count.

    Tags (model, product, region, step) reach tag-aware backends (OpenTelemetry, DogStatsD,
    InfluxDB-style StatsD); plain StatsD gets them through the dotted name.
    """
    from airflow.sdk.observability import stats

    n = 0
    for rec in records:
        for t in frame_timings(rec, prefix):
            stats.timing(t.name, t.ms, tags=t.tags)
            n += 1
    return n
