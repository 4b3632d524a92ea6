"""One render task on several cores: ``render_run`` with forked workers (what an Airflow render
task uses on the embedded default) writes the same charts as rendering in one process, records
the try that rendered them, and names its workers so operators can tell them apart."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from framecast.records import read_records
from framecast.render.runner import WORKER_NAME, Chunk, render_run

from .conftest import RUN

PRODUCTS = ("t2m_mslp", "precip_mslp")
STEPS = (0, 1)


def _render(data: Path, out: Path, workers: int, start_method: str) -> list:
    work = [Chunk(p, "germany", STEPS) for p in PRODUCTS]
    return render_run(data, out, model="icon-eu", run_time=RUN, chunks=work, workers=workers,
                      try_number=3, start_method=start_method)


def _children_named(name: str) -> set[int]:
    """Direct children of this process whose ``comm`` (what ps/top show) is ``name``."""
    out = set()
    for proc in Path("/proc").iterdir():
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() \
                    and (proc / "comm").read_text().strip() == name:
                out.add(int(proc.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def test_forked_workers_write_what_one_process_writes(icon_eu_run, tmp_path):
    seen: set[int] = set()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.update(_children_named(WORKER_NAME))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        forked = _render(icon_eu_run, tmp_path / "forked", 2, "fork")
    finally:
        done.set()
        watcher.join(5)
    serial = _render(icon_eu_run, tmp_path / "serial", 1, "spawn")

    assert len(seen) == 2  # two worker processes, both named for ps/top
    assert len(forked) == len(serial) == len(PRODUCTS) * len(STEPS)
    names = sorted(r.path for r in forked)
    assert names == sorted(r.path for r in serial)
    for rel in names:
        a = tmp_path / "forked" / "icon-eu" / "2026112300" / rel
        b = tmp_path / "serial" / "icon-eu" / "2026112300" / rel
        assert a.read_bytes() == b.read_bytes(), rel
    stored = read_records(tmp_path / "forked" / "icon-eu" / "2026112300")
    assert {r.try_number for r in stored} == {3} and len(stored) == len(forked)
    # the serial path renders in this process and leaves its name alone
    assert Path("/proc/self/comm").read_text().strip() != WORKER_NAME
