"""Deployment policy for framecast's model DAGs: where render tasks run, and the render stack
imported once in the processes that fork task processes (:func:`_prewarm`).

Airflow imports ``airflow_local_settings`` from ``$AIRFLOW_HOME/config`` (or ``PYTHONPATH``) in
every component, and the DAG processor applies :func:`task_policy` to each task while parsing,
so the queue and pool below end up in the serialized DAG the scheduler reads.

Why here and not in the DAG files: queues and pools are facts of a deployment (which machines
exist, how many CPUs they have), not of the DAG. A single-machine install leaves the variables
unset and nothing changes; the docker-compose and local Celery deployments set them so that
mapped ``chunk.render`` tasks go to the ``render`` queue (consumed by render workers) and share one
pool sized to the render workers' CPUs.

- ``FRAMECAST_RENDER_QUEUE``: Celery queue for render tasks.
- ``FRAMECAST_RENDER_POOL``: Airflow pool for render tasks (must exist; see deploy/pools.json).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

#: the render task of each chunk of steps (inside the model DAG's mapped ``chunk`` group)
RENDER_TASK_ID = "chunk.render"
FRAMECAST_TAG = "framecast"


def _is_framecast_render(task: Any) -> bool:
    dag = getattr(task, "dag", None)
    tags = set(getattr(dag, "tags", None) or ())
    return task.task_id == RENDER_TASK_ID and FRAMECAST_TAG in tags


def task_policy(task: Any) -> None:
    """Route framecast render tasks to the render queue and pool, when configured."""
    if not _is_framecast_render(task):
        return
    queue = os.environ.get("FRAMECAST_RENDER_QUEUE", "").strip()
    pool = os.environ.get("FRAMECAST_RENDER_POOL", "").strip()
    if queue:
        task.queue = queue
    if pool:
        task.pool = pool


#: Components whose children run tasks: the scheduler (the LocalExecutor forks its workers from
#: it, and each task process is forked from a worker) and Celery workers (prefork pool).
_TASK_PARENTS = (("scheduler",), ("celery", "worker"))


def _prewarm() -> None:
    """Import the render stack once in the process that forks task processes.

    Every render task otherwise pays these imports again (framecast's renderer, cartopy,
    matplotlib, pyproj, scipy, ecCodes, the parsed specs, Airflow's task runner and the model
    DAG's modules; docs/airflow.md has the measurements); forked children inherit them already
    imported. Skipped in the
    api-server, dag-processor and triggerer, which run no tasks, and with
    ``FRAMECAST_PREWARM=0``.
    """
    import sys

    args = tuple(a for a in sys.argv[1:] if not a.startswith("-"))
    if os.environ.get("FRAMECAST_PREWARM", "1") == "0":
        return
    if not any(args[:len(p)] == p for p in _TASK_PARENTS):
        return
    from framecast.render.warm import prewarm

    prewarm()
    import airflow.sdk.execution_time.task_runner  # noqa: F401 - imported for forked children

    # What the model DAG file imports (each task process parses it again); where the plugins
    # folder is not importable yet, the tasks import it themselves.
    with contextlib.suppress(ImportError):
        import framecast_airflow.factory  # noqa: F401


_prewarm()

with contextlib.suppress(ImportError):  # next to this file wherever it is installed
    import framecast_sqlite_api

    framecast_sqlite_api.install()  # the embedded default's api-server on SQLite only
