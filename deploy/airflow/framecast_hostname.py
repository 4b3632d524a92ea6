"""Hostname callable for Airflow (``[core] hostname_callable``).

Airflow records the host that ran each task instance (``task_instance.hostname``) and reaches
its log server by that name. In containers every worker already has its own hostname; when
several workers share one machine (scripts/celery_local.py) they would all report the same
name, so each worker process is started with ``FRAMECAST_HOSTNAME`` set to its own name.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """``FRAMECAST_HOSTNAME`` when set, else the machine's fully qualified name."""
    return os.environ.get("FRAMECAST_HOSTNAME", "").strip() or socket.getfqdn()
