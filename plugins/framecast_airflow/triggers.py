"""The upstream trigger: polls the server in the triggerer until a model run is complete.

It runs in the triggerer's event loop, so a run that is late upstream costs no worker slot. It
reports ``complete`` when none of the watched files is missing, or ``timeout`` (with what is
still missing) at its deadline, so the sensor can fail with a message naming the files instead
of Airflow's generic deferral timeout.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from framecast.catalog import RemoteFile
from framecast.errors import FetchError
from framecast.fetch import missing_files


class UpstreamRunTrigger(BaseTrigger):
    """Wait until every file in ``files`` (RemoteFile dicts) exists under ``base_url``."""

    def __init__(self, base_url: str, files: list[dict[str, Any]], deadline: float,
                 poke_interval: float = 60.0, http_timeout: float = 30.0) -> None:
        super().__init__()
        self.base_url = base_url
        self.files = files
        self.deadline = deadline
        self.poke_interval = poke_interval
        self.http_timeout = http_timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "base_url": self.base_url,
                "files": self.files,
                "deadline": self.deadline,
                "poke_interval": self.poke_interval,
                "http_timeout": self.http_timeout,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        remote = [RemoteFile.from_dict(d) for d in self.files]
        last_error = ""
        while True:
            try:
                # The check is blocking HTTP; run it off the event loop.
                missing = await asyncio.to_thread(missing_files, self.base_url, remote,
                                                  self.http_timeout)
                last_error = ""
            except FetchError as exc:  # upstream down: keep waiting until the deadline
                missing, last_error = [f.url_path for f in remote], str(exc)
                self.log.warning("upstream check failed: %s", exc)
            if not missing:
                yield TriggerEvent({"status": "complete", "files": len(remote),
                                    "seen_at": time.time()})
                return
            now = time.time()
            if now >= self.deadline:
                yield TriggerEvent({"status": "timeout", "missing": missing,
                                    "error": last_error, "files": len(remote)})
                return
            self.log.info("%d of %d file(s) not yet upstream, e.g. %s", len(missing),
                          len(remote), missing[0])
            await asyncio.sleep(min(self.poke_interval, max(0.0, self.deadline - now)))
