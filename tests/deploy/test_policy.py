"""The deployment's Airflow hooks: the render-queue task policy and the worker hostname."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

DEPLOY_AIRFLOW = Path(__file__).resolve().parents[2] / "deploy" / "airflow"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", DEPLOY_AIRFLOW / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def policy():
    return _load("airflow_local_settings").task_policy


def _task(task_id: str, tags=("framecast", "nwp")):
    return SimpleNamespace(task_id=task_id, dag=SimpleNamespace(tags=list(tags)),
                           queue="default", pool="default_pool")


def test_render_tasks_go_to_the_render_queue_and_pool(policy, monkeypatch):
    monkeypatch.setenv("FRAMECAST_RENDER_QUEUE", "render")
    monkeypatch.setenv("FRAMECAST_RENDER_POOL", "framecast_render")
    render, download = _task("chunk.render"), _task("chunk.download")
    other = _task("chunk.render", ("other",))
    for t in (render, download, other):
        policy(t)
    assert (render.queue, render.pool) == ("render", "framecast_render")
    assert (download.queue, download.pool) == ("default", "default_pool")
    assert (other.queue, other.pool) == ("default", "default_pool")  # not a framecast DAG


def test_policy_changes_nothing_when_unconfigured(policy, monkeypatch):
    monkeypatch.delenv("FRAMECAST_RENDER_QUEUE", raising=False)
    monkeypatch.delenv("FRAMECAST_RENDER_POOL", raising=False)
    t = _task("chunk.render")
    policy(t)
    assert (t.queue, t.pool) == ("default", "default_pool")


def test_worker_hostname_from_environment(monkeypatch):
    hostname = _load("framecast_hostname").worker_hostname
    monkeypatch.setenv("FRAMECAST_HOSTNAME", "worker-render-7")
    assert hostname() == "worker-render-7"
    monkeypatch.delenv("FRAMECAST_HOSTNAME")
    assert hostname() == socket.getfqdn()
