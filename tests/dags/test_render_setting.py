"""``FRAMECAST_RENDER_PROCESSES``: how many processes one render task renders with."""

from __future__ import annotations

import pytest

from framecast.errors import SpecError


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_render_processes_setting_is_checked(monkeypatch, value):
    from framecast_airflow.tasks import render_processes

    monkeypatch.setenv("FRAMECAST_RENDER_PROCESSES", value)
    with pytest.raises(SpecError, match=f"FRAMECAST_RENDER_PROCESSES='{value}'"):
        render_processes()


def test_render_processes_default_and_value(monkeypatch):
    from framecast_airflow.tasks import render_processes

    monkeypatch.delenv("FRAMECAST_RENDER_PROCESSES", raising=False)
    assert render_processes() == 1
    monkeypatch.setenv("FRAMECAST_RENDER_PROCESSES", "2")
    assert render_processes() == 2
