"""The upstream trigger: polls the server in the triggerer until a model run is complete.

It runs in the triggerer's event loop, so a run that is late upstream costs no worker slot. It
reports ``complete`` when none of the watched files is missing, or ``timeout`` (with what is
still missing) at its deadline, so the sensor can fail with a message naming the files instead
of Airflow's generic deferral timeout.

Each poll asks only about files not seen yet and stops at the first one still missing
(:func:`framecast.fetch.present_prefix`): every chunk of a run waits at once, and checking all
of their files at every poll was a storm of HEAD requests (about 700 per second for ICON-EU's
24 chunks at a 5 s interval) that starved the renders on the same machine and would hammer a
public server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from framecast.catalog import RemoteFile
from framecast.errors import FetchError
from framecast.fetch import missing_files, present_prefix


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
        todo = remote  # the files not seen upstream yet, in publishing order
        last_error = ""
        while True:
            try:
                # The check is blocking HTTP; run it off the event loop.
                seen = await asyncio.to_thread(present_prefix, self.base_url, todo,
                                               self.http_timeout)
                todo = todo[seen:]
                last_error = ""
            except FetchError as exc:  # upstream down: keep waiting until the deadline
                last_error = str(exc)
                self.log.warning("upstream check failed: %s", exc)
            if not todo:
                yield TriggerEvent({"status": "complete", "files": len(remote),
                                    "seen_at": time.time()})
                return
            now = time.time()
            if now >= self.deadline:
                yield TriggerEvent({"status": "timeout", "missing": await self._missing(todo),
                                    "error": last_error, "files": len(remote)})
                return
            self.log.info("%d of %d file(s) not seen upstream yet, waiting for %s", len(todo),
                          len(remote), todo[0].url_path)
            await asyncio.sleep(min(self.poke_interval, max(0.0, self.deadline - now)))

    async def _missing(self, todo: list[RemoteFile]) -> list[str]:
        """Every file still missing, for the timeout's message (one full check, at the end)."""
        try:
            return await asyncio.to_thread(missing_files, self.base_url, todo, self.http_timeout)
        except FetchError:  # upstream down: all of them
            return [f.url_path for f in todo]
