"""One DAG per model in framecast's model catalog (``models.yaml``; see docs/airflow.md).

Set ``FRAMECAST_MODELS_FILE`` to use another catalog. The DAG shape lives in
``framecast_airflow.factory`` so this file stays a declaration.
"""

from __future__ import annotations

from framecast.catalog import load_models
from framecast_airflow.factory import build_dag

for _spec in load_models().values():
    globals()[_spec.dag_id] = build_dag(_spec)
