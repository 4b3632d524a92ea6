"""The embedded default's api-server on SQLite: audit-log writes off the event loop.

Why this exists. Airflow's REST API records every write (a run's note, a clear, a state change)
in its audit log through a FastAPI dependency, ``action_logging``, that is ``async`` but commits
a *synchronous* SQLAlchemy session, so the commit runs on the api-server's event loop. On
PostgreSQL that commit takes milliseconds. On SQLite only one connection writes at a time and
a busy connection waits (busy timeout) for the lock: the wait then blocks the whole event
loop. The lock is often held by another request of the same process: a task's Execution API
call (state update, heartbeat) whose route has written in a worker thread and whose commit,
the session dependency's exit, is dispatched by that same event loop. Neither can go on: the
audit write waits out the full busy timeout and fails with "Database error" (HTTP 500), while
the task calls stall for as long. That is what a UI write during a rendering run hit on the
embedded default.

The fix keeps Airflow's own dependency and runs it in a worker thread: the request body is
read on the loop first (Starlette caches it on the request), then the unchanged coroutine runs
to completion on a private loop in a thread, where waiting for SQLite's lock blocks nobody.
It is installed only in the api-server and only when the metadata database is SQLite
(:func:`install`, called from ``airflow_local_settings``); deployments on PostgreSQL never load
it. The module is patched as it is imported, before any route captures ``action_logging``.
"""

# No ``from __future__ import annotations``: FastAPI reads the dependency's parameter
# annotations (Request, SessionDep, GetUserDep), which are local names in :func:`off_loop`.
import importlib.abc
import importlib.util
import os
import sys
from typing import Any

TARGET = "airflow.api_fastapi.logging.decorators"
#: Marks the wrapped ``action_logging`` (tests check that the api-server runs it).
MARK = "framecast_off_loop"


def off_loop(original: Any) -> Any:
    """``action_logging`` whose dependency commits in a worker thread, not on the event loop."""
    import asyncio
    from functools import partial

    import anyio
    from airflow.api_fastapi.common.db.common import SessionDep
    from airflow.api_fastapi.core_api.security import GetUserDep
    from fastapi import Request

    def action_logging(event: str | None = None) -> Any:
        log_action = original(event)

        async def log_action_off_loop(request: Request, session: SessionDep,
                                      user: GetUserDep) -> None:
            await request.body()  # read here, on the loop; the thread finds it cached
            await anyio.to_thread.run_sync(partial(asyncio.run,
                                                   log_action(request, session, user)))

        return log_action_off_loop

    setattr(action_logging, MARK, True)
    return action_logging


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Wraps ``action_logging`` as soon as its module has executed."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # once; and lets find_spec below use the normal finders
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run_module(module)
            module.action_logging = off_loop(module.action_logging)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def wanted(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> bool:
    """True in an api-server whose metadata database is SQLite."""
    argv = sys.argv if argv is None else argv
    env = os.environ if environ is None else environ
    conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    return "api-server" in argv[1:] and conn.startswith("sqlite")


def install() -> bool:
    """Patch ``action_logging`` in this process when :func:`wanted`; True when installed."""
    if not wanted():
        return False
    if TARGET in sys.modules:  # imported already: patch in place (routes not built yet)
        mod = sys.modules[TARGET]
        if not getattr(mod.action_logging, MARK, False):
            mod.action_logging = off_loop(mod.action_logging)
        return True
    if not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
    return True
