"""Budget check: regressions against trailing runs, retries, and the alert texts."""

from __future__ import annotations

import pytest

from framecast.errors import SpecError
from framecast.metrics import budget, messages, store


def _history(make, n, render_ms=100.0):
    return {f"2026-11-{10 + i}T00:00:00+00:00": make(run=f"2026-11-{10 + i}T00:00:00+00:00",
                                                    render_ms=render_ms)
            for i in range(n)}


def test_steady_run_is_ok(make):
    res = budget.check_budget("icon-eu", "r", make(render_ms=105.0), _history(make, 5))
    assert res.ok and not res.regressions and not res.no_baseline


def test_slow_product_regresses_with_ratios(make):
    cur = make(render_ms=100.0, products=("pmsl",)) + make(render_ms=400.0, products=("t_2m",))
    res = budget.check_budget("icon-eu", "r", cur, _history(make, 5), factor=1.5)
    assert [r.product for r in res.regressions] == ["t_2m"]
    reg = res.regressions[0]
    # baseline frame = 10 + (100 + step) + 5 + 1; current = 10 + (400 + step) + 5 + 1
    assert reg.baseline_p50_ms == pytest.approx(118.5)
    assert reg.p50_ratio == pytest.approx(418.5 / 118.5)
    assert reg.baseline_runs == 5
    assert not res.ok


def test_only_tail_slow_triggers_on_p95(make):
    cur = make(products=("t_2m",), steps=range(20))
    for r in cur[-2:]:
        r.render_ms = 2000.0
    hist = {k: make(run=k, products=("t_2m",), steps=range(20)) for k in _history(make, 3)}
    res = budget.check_budget("icon-eu", "r", cur, hist)
    (reg,) = res.regressions
    assert reg.p50_ratio < 1.5 < reg.p95_ratio


def test_one_bad_run_in_history_does_not_hide_regression(make):
    hist = _history(make, 4)
    hist["2026-11-01T00:00:00+00:00"] = make(run="2026-11-01T00:00:00+00:00", render_ms=5000.0)
    res = budget.check_budget("icon-eu", "r", make(render_ms=300.0), hist)
    assert {r.product for r in res.regressions} == {"t_2m", "pmsl"}


def test_too_little_history_means_no_baseline(make):
    res = budget.check_budget("icon-eu", "r", make(render_ms=900.0), _history(make, 2),
                              min_runs=3)
    assert res.ok and res.no_baseline == ["pmsl", "t_2m"]


def test_retried_frames_alert_even_when_fast(make):
    cur = make(products=("t_2m",), steps=[0, 1]) + make(products=("pmsl",), steps=[4, 5],
                                                        try_number=2)
    res = budget.check_budget("icon-eu", "r", cur, {})
    assert not res.ok
    assert res.retried_frames == [budget.RetriedFrames("pmsl", "europe", (4, 5), 2)]


def test_bad_factor_named():
    with pytest.raises(SpecError, match="factor 0.9"):
        budget.check_budget("m", "r", [], {}, factor=0.9)


def test_evaluate_run_uses_only_earlier_runs(tmp_path, make):
    db = f"sqlite:///{tmp_path}/m.sqlite"
    for day in range(10, 16):
        store.upsert_frames(db, make(run=f"2026-11-{day}T00:00:00+00:00"))
    store.upsert_frames(db, make(run="2026-11-20T00:00:00+00:00", render_ms=400.0))
    # a later, even slower run must not be part of the 2026-11-20 baseline
    store.upsert_frames(db, make(run="2026-11-21T00:00:00+00:00", render_ms=4000.0))
    store.record_task_try(db, store.TaskTry("icon_eu", "manual__1", "render", 0, 2, "success"))
    res = budget.evaluate_run(db, "icon-eu", "2026112000", trailing=3, dag_id="icon_eu",
                              run_id="manual__1")
    assert {r.baseline_runs for r in res.regressions} == {3}
    assert {round(r.baseline_p50_ms, 1) for r in res.regressions} == {118.5}
    assert [t.task_id for t in res.retried_tasks] == ["render"]


def test_budget_message_names_run_products_retries_and_link(make):
    cur = make(render_ms=400.0, products=("t_2m",))
    res = budget.check_budget("icon-eu", "2026-11-23T00:00:00+00:00", cur, _history(make, 3),
                              retried=[store.TaskTry("icon_eu", "r1", "render", 7, 2, "success")])
    link = messages.run_url("http://af.example:8080/", "icon_eu", "scheduled__2026-11-23T00:00")
    subject = messages.budget_subject(res)
    html = messages.budget_html(res, dag_id="icon_eu", run_id="r1", link=link)
    assert subject == ("[framecast] BUDGET: icon-eu 2026-11-23T00:00:00+00:00: "
                       "slow t_2m; 1 retried task(s)")
    assert "render[7]: try 2" in html
    assert link == "http://af.example:8080/dags/icon_eu/runs/scheduled__2026-11-23T00%3A00"
    assert f'href="{link}"' in html


def test_deadline_message_fields():
    html = messages.deadline_html(dag_id="icon_eu", run_id="scheduled__x", what="charts <published>",
                                  deadline_time="2026-11-23T04:00:00+00:00",
                                  logical_date="2026-11-23T00:00:00+00:00", state="running",
                                  link="http://h/dags/icon_eu/runs/scheduled__x")
    assert "charts &lt;published&gt;" in html and "scheduled__x" in html and "running" in html
    assert messages.deadline_subject("icon_eu", "r", "charts") == "[framecast] LATE: icon_eu r: charts"
