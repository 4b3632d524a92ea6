"""The deferred wait of a chunk (``UpstreamRunTrigger``) against the real local upstream: it
completes when the last file appears, and polls without a storm of requests meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime

from framecast.catalog import get_model, run_files
from framecast.upstream import UpstreamServer
from framecast_airflow.triggers import UpstreamRunTrigger

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


async def _first_event(trigger: UpstreamRunTrigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


def test_trigger_waits_for_late_files_with_one_request_per_poll(sample_runs):
    files = run_files(get_model("icon-eu"), RUN, ["t2m", "msl"], steps=[0, 1])
    with UpstreamServer(sample_runs.get("icon-eu")) as server:
        late = [f.url_path for f in files[2:]]
        for path in late:
            server.hide(path)
        trigger = UpstreamRunTrigger(server.url, [f.to_dict() for f in files],
                                     deadline=time.time() + 60, poke_interval=0.1)
        release = threading.Timer(1.5, lambda: [server.publish(p) for p in late])
        release.start()
        try:
            event = asyncio.run(_first_event(trigger))
        finally:
            release.cancel()
        heads = [r.path for r in server.requests if r.method == "HEAD"]
    assert event["status"] == "complete" and event["files"] == len(files)
    # about 15 polls while the late files were hidden: each asked only about the first of them
    polls = heads.count(late[0])
    assert polls >= 5, heads
    assert heads.count(files[0].url_path) == heads.count(files[1].url_path) == 1
    assert heads.count(late[1]) == 1  # asked once, after the first late file appeared
    assert len(heads) == polls + 3


def test_trigger_timeout_names_every_missing_file(sample_runs):
    files = run_files(get_model("icon-eu"), RUN, ["t2m", "msl"], steps=[0, 1])
    with UpstreamServer(sample_runs.get("icon-eu")) as server:
        server.hide(files[1].url_path)
        server.hide(files[3].url_path)
        trigger = UpstreamRunTrigger(server.url, [f.to_dict() for f in files],
                                     deadline=time.time() + 0.5, poke_interval=0.1)
        event = asyncio.run(_first_event(trigger))
    assert event["status"] == "timeout"
    assert event["missing"] == [files[1].url_path, files[3].url_path]
