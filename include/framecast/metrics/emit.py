"""StatsD timers per frame, for dashboards that already read Airflow's StatsD metrics.

Why names carry model/product/region: plain StatsD has no tags, so the hierarchy in the name is
what lets a dashboard split "icon-eu t_2m europe render" from the rest. The same names are used
by the Airflow-side wrapper (``framecast_airflow.frame_stats``), which goes through Airflow's
own metrics backend (StatsD or OpenTelemetry, as configured in ``[metrics]``); this module is
for running outside Airflow (the CLI) with a plain ``statsd`` client.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from framecast.errors import SpecError
from framecast.metrics.store import frame_total_ms
from framecast.records import FrameRecord

_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
STAGES = ("load", "render", "encode", "upload")


class TimingClient(Protocol):
    """Anything with StatsD's ``timing(stat, ms)`` (``statsd.StatsClient``, Airflow's Stats)."""

    def timing(self, stat: str, delta: float) -> object: ...


@dataclass(frozen=True)
class Timing:
    """One timer value: ``name`` is a dotted StatsD name, ``tags`` for tag-aware backends."""

    name: str
    ms: float
    tags: dict[str, str]


def _part(text: str) -> str:
    """A name segment: dots would add hierarchy levels, other characters are invalid."""
    return _INVALID.sub("_", str(text)) or "_"


def frame_timings(rec: FrameRecord, prefix: str = "framecast") -> list[Timing]:
    """Timers of one frame: one per stage plus the total.

    Names look like ``framecast.frame.render.icon-eu.t_2m.europe``; stage names are the
    second level so one wildcard (``framecast.frame.render.*``) gathers a stage.
    """
    tags = {"model": rec.model, "product": rec.product, "region": rec.region,
            "step": str(rec.step)}
    tail = f"{_part(rec.model)}.{_part(rec.product)}.{_part(rec.region)}"
    out = [
        Timing(f"{prefix}.frame.{stage}.{tail}", float(getattr(rec, f"{stage}_ms")), tags)
        for stage in STAGES
    ]
    out.append(Timing(f"{prefix}.frame.total.{tail}", frame_total_ms(rec), tags))
    return out


def emit_records(records: Iterable[FrameRecord], client: TimingClient,
                 prefix: str = "framecast") -> int:
    """Send every frame's timers through ``client``; returns the number of timers sent."""
    n = 0
    for rec in records:
        for t in frame_timings(rec, prefix):
            client.timing(t.name, t.ms)
            n += 1
    return n


def statsd_client_from_env(env: Mapping[str, str] | None = None):
    """A ``statsd.StatsClient`` when ``FRAMECAST_STATSD_HOST`` is set, else None.

    ``FRAMECAST_STATSD_PORT`` (default 8125) and ``FRAMECAST_STATSD_PREFIX`` (no default)
    complete the address, as Airflow's ``[metrics] statsd_*`` settings do for Airflow itself.
    """
    env = os.environ if env is None else env
    host = env.get("FRAMECAST_STATSD_HOST", "").strip()
    if not host:
        return None
    port_text = env.get("FRAMECAST_STATSD_PORT", "8125")
    try:
        port = int(port_text)
    except ValueError as exc:
        raise SpecError(f"FRAMECAST_STATSD_PORT={port_text!r}: not a port number") from exc
    from statsd import StatsClient

    return StatsClient(host=host, port=port, prefix=env.get("FRAMECAST_STATSD_PREFIX") or None)
