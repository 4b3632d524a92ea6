"""The upstream sensor: is this model run complete on the server yet?

Deferrable by default: after one immediate check it hands the waiting to
:class:`~framecast_airflow.triggers.UpstreamRunTrigger` and frees its worker slot. ``timeout``
(seconds, counted from the sensor's first check) ends the wait with AirflowSensorTimeout naming
the files still missing, so an upstream outage shows up as one readable failure.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from framecast.catalog import completion_files, format_run, needed_variables, run_files
from framecast_airflow.hooks import FramecastUpstreamHook
from framecast_airflow.runtime import run_context
from framecast_airflow.triggers import UpstreamRunTrigger


class UpstreamRunSensor(BaseSensorOperator):
    """Wait until the files marking a complete run (``sensor.mode`` in models.yaml) exist."""

    template_fields: Sequence[str] = ("model",)
    ui_color = "#e6f1f2"

    def __init__(self, *, model: str, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.deferrable = deferrable

    def _watch(self, context: Any) -> tuple[FramecastUpstreamHook, list, str]:
        rc = run_context(self.model, context)
        files = run_files(rc.spec, rc.run_time, needed_variables(rc.spec))
        return FramecastUpstreamHook(rc.spec), completion_files(rc.spec, files), format_run(
            rc.run_time)

    def poke(self, context: Any) -> bool:
        hook, files, run = self._watch(context)
        missing = hook.missing(files)
        self.log.info("%s %s: %d of %d file(s) missing upstream", self.model, run,
                      len(missing), len(files))
        return not missing

    def execute(self, context: Any) -> None:
        if not self.deferrable:
            super().execute(context)
            return
        hook, files, run = self._watch(context)
        missing = hook.missing(files)
        if not missing:
            self.log.info("%s %s complete upstream (%d files checked)", self.model, run, len(files))
            return
        self.log.info("%s %s: %d of %d file(s) missing upstream, deferring (timeout %ss)",
                      self.model, run, len(missing), len(files), self.timeout)
        self.defer(
            trigger=UpstreamRunTrigger(
                base_url=hook.base_url,
                files=[f.to_dict() for f in files],
                deadline=time.time() + float(self.timeout),
                poke_interval=float(self.poke_interval),
                http_timeout=hook.spec.http.timeout,
            ),
            method_name="execute_complete",
            # backstop only: the trigger reports its own, more useful timeout first
            timeout=timedelta(seconds=float(self.timeout) + 300),
        )

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> None:
        if event and event.get("status") == "complete":
            self.log.info("%s complete upstream (%s files)", self.model, event.get("files"))
            return
        missing = (event or {}).get("missing", [])
        detail = f"; last error: {event['error']}" if event and event.get("error") else ""
        raise AirflowSensorTimeout(
            f"{self.model}: upstream run still incomplete after {self.timeout:.0f}s: "
            f"{len(missing)} file(s) missing, e.g. {missing[:3]}{detail}"
        )
