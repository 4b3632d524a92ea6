"""Deployment policy for framecast's model DAGs: where render tasks run.

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
