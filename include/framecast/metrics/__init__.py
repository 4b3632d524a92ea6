"""Per-frame timing metrics: a store, a performance budget check, a run report and emitters.

The pieces are independent so an Airflow task, the CLI and tests can combine them:

- :mod:`framecast.metrics.store` persists :class:`~framecast.records.FrameRecord` rows in a
  SQLAlchemy database (SQLite by default, PostgreSQL in a deployment), one row per frame, so a
  retried task replaces its rows instead of adding to them.
- :mod:`framecast.metrics.budget` compares a run's per-frame p50/p95 with the trailing runs.
- :mod:`framecast.metrics.report` writes PNG plots and an HTML table into the run directory.
- :mod:`framecast.metrics.emit` sends StatsD timers for existing dashboards.

Nothing here imports Airflow; the Airflow-side glue lives in ``plugins/framecast_airflow``.
"""

from __future__ import annotations
