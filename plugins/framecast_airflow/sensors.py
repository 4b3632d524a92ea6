"""The upstream sensor: is this model run (or one chunk of its steps) on the server yet?

Deferrable by default: after one immediate check it hands the waiting to
:class:`~framecast_airflow.triggers.UpstreamRunTrigger` and frees its worker slot. ``timeout``
(seconds, counted from the sensor's first check) ends the wait with AirflowSensorTimeout naming
the files still missing, so an upstream outage shows up as one readable failure.

Given a ``chunk`` (from :func:`framecast.catalog.pipeline_chunks`), it waits for every file of
that chunk's steps only, so the chunk can go on while later steps are still being computed
upstream. It then returns when it saw them (``available_at``, epoch seconds), the start of the
chunk's publish latency.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowSensorTimeout

from framecast.catalog import completion_files, format_run, needed_variables, run_files
from framecast_airflow.hooks import FramecastUpstreamHook
from framecast_airflow.runtime import run_context
from framecast_airflow.triggers import UpstreamRunTrigger


class UpstreamRunSensor(BaseSensorOperator):
    """Wait until the files marking a complete run (``sensor.mode`` in models.yaml) exist,
    or, with ``chunk``, every file of the chunk's steps."""

    template_fields: Sequence[str] = ("model", "chunk")
    ui_color = "#e6f1f2"

    def __init__(self, *, model: str, chunk: dict[str, Any] | None = None,
                 deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.chunk = chunk
        self.deferrable = deferrable

    def _label(self, context: Any) -> None:
        if self.chunk:  # the mapped instance's name in the UI (map_index_template)
            context["chunk_label"] = self.chunk["label"]

    def _watch(self, context: Any) -> tuple[FramecastUpstreamHook, list, str]:
        rc = run_context(self.model, context)
        self._label(context)
        run = format_run(rc.run_time)
        if self.chunk:
            from framecast_airflow.tasks import wanted_variables

            files = run_files(rc.spec, rc.run_time, wanted_variables(self.model, rc.spec),
                              self.chunk["steps"])
            return FramecastUpstreamHook(rc.spec), files, f"{run} {self.chunk['label']}"
        files = run_files(rc.spec, rc.run_time, needed_variables(rc.spec))
        return FramecastUpstreamHook(rc.spec), completion_files(rc.spec, files), run

    def poke(self, context: Any) -> bool:
        hook, files, run = self._watch(context)
        seen = hook.present(files)
        if seen < len(files):
            self.log.info("%s %s: %s not upstream yet (%d of %d file(s) before it are)",
                          self.model, run, files[seen].url_path, seen, len(files))
        return seen == len(files)

    def execute(self, context: Any) -> dict[str, Any]:
        if not self.deferrable:
            super().execute(context)
            return _seen(time.time())
        hook, files, run = self._watch(context)
        seen = hook.present(files)
        if seen == len(files):
            self.log.info("%s %s complete upstream (%d files checked)", self.model, run, len(files))
            return _seen(time.time())
        self.log.info("%s %s: %s not upstream yet (%d of %d file(s) before it are), deferring "
                      "(timeout %ss)", self.model, run, files[seen].url_path, seen, len(files),
                      self.timeout)
        self.defer(
            trigger=UpstreamRunTrigger(
                base_url=hook.base_url,
                files=[f.to_dict() for f in files[seen:]],  # the ones not seen yet
                deadline=time.time() + float(self.timeout),
                poke_interval=float(self.poke_interval),
                http_timeout=hook.spec.http.timeout,
            ),
            method_name="execute_complete",
            # backstop only: the trigger reports its own, more useful timeout first
            timeout=timedelta(seconds=float(self.timeout) + 300),
        )

    def execute_complete(self, context: Any,
                         event: dict[str, Any] | None = None) -> dict[str, Any]:
        self._label(context)
        what = f"{self.model} {self.chunk['label']}" if self.chunk else self.model
        if event and event.get("status") == "complete":
            self.log.info("%s complete upstream (%s files)", what, event.get("files"))
            return _seen(float(event.get("seen_at") or time.time()))
        missing = (event or {}).get("missing", [])
        detail = f"; last error: {event['error']}" if event and event.get("error") else ""
        raise AirflowSensorTimeout(
            f"{what}: upstream run still incomplete after {self.timeout:.0f}s: "
            f"{len(missing)} file(s) missing, e.g. {missing[:3]}{detail}"
        )


def _seen(epoch: float) -> dict[str, Any]:
    """The sensor's result: when the files were seen upstream (start of publish latency)."""
    return {"available_at": epoch,
            "available_at_iso": datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")}
