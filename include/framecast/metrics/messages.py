"""Alert e-mail texts (subject + HTML body), built as pure functions.

Why separate from sending: the wording is what operators act on at 3 a.m., so it is tested
directly, and the Airflow-side notifiers only deliver what these functions return. Every body
names the model run, what is late or slow, and links to the run in the Airflow UI.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from framecast.metrics.budget import BudgetResult


def run_url(ui_base_url: str, dag_id: str, run_id: str) -> str:
    """Link to a DAG run in the Airflow 3 UI (``/dags/<dag_id>/runs/<run_id>``)."""
    base = ui_base_url.rstrip("/")
    return f"{base}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def deadline_subject(dag_id: str, run_id: str, what: str) -> str:
    return f"[framecast] LATE: {dag_id} {run_id}: {what}"


def deadline_html(
    *, dag_id: str, run_id: str, what: str, deadline_time: str, logical_date: str, state: str,
    link: str,
) -> str:
    """Body of the missed-deadline e-mail."""
    rows = [
        ("DAG", dag_id),
        ("Run", run_id),
        ("Model run (logical date)", logical_date),
        ("Late", what),
        ("Deadline", deadline_time),
        ("Run state when the deadline passed", state),
    ]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return (
        f"<p>Run <b>{escape(run_id)}</b> of <b>{escape(dag_id)}</b> missed its deadline: "
        f"{escape(what)} not done by {escape(deadline_time)}.</p>"
        f"<table>{table}</table>"
        f'<p><a href="{escape(link, quote=True)}">Open the run in Airflow</a>: {escape(link)}</p>'
    )


def budget_subject(result: BudgetResult) -> str:
    """One-line subject naming the model run and what went wrong."""
    parts = []
    if result.regressions:
        parts.append("slow " + ", ".join(r.product for r in result.regressions))
    if result.retried_tasks:
        parts.append(f"{len(result.retried_tasks)} retried task(s)")
    elif result.retried_frames:
        parts.append(f"{len(result.retried_frames)} chunk(s) rendered by a retry")
    what = "; ".join(parts) if parts else "within budget"
    return f"[framecast] BUDGET: {result.model} {result.run}: {what}"


def budget_html(result: BudgetResult, *, dag_id: str = "", run_id: str = "",
                link: str = "") -> str:
    """Body of the budget alert: regressions with their baselines, then retries."""
    out = [
        f"<p>Model <b>{escape(result.model)}</b> run <b>{escape(result.run)}</b>"
        + (f" (DAG {escape(dag_id)}, run {escape(run_id)})" if dag_id else "")
        + f": per-frame budget factor {result.factor:g}.</p>"
    ]
    if result.regressions:
        out.append(
            "<h3>Slower than the trailing runs</h3><table><tr><th>product</th><th>frames</th>"
            "<th>p50 ms</th><th>baseline p50 ms</th><th>p95 ms</th><th>baseline p95 ms</th>"
            "<th>runs in baseline</th></tr>"
        )
        for r in result.regressions:
            out.append(
                f"<tr><td>{escape(r.product)}</td><td>{r.current.frames}</td>"
                f"<td>{r.current.p50_ms:.0f} (x{r.p50_ratio:.2f})</td><td>{r.baseline_p50_ms:.0f}</td>"
                f"<td>{r.current.p95_ms:.0f} (x{r.p95_ratio:.2f})</td><td>{r.baseline_p95_ms:.0f}</td>"
                f"<td>{r.baseline_runs}</td></tr>"
            )
        out.append("</table>")
    if result.retried_tasks:
        out.append("<h3>Tasks that needed retries</h3><ul>")
        for t in result.retried_tasks:
            mi = f"[{t.map_index}]" if t.map_index >= 0 else ""
            out.append(f"<li>{escape(t.task_id)}{mi}: try {t.try_number} ({escape(t.state)})</li>")
        out.append("</ul>")
    if result.retried_frames:
        out.append("<h3>Frames rendered by a retry</h3><ul>")
        for f in result.retried_frames:
            steps = ", ".join(str(s) for s in f.steps)
            out.append(
                f"<li>{escape(f.product)} / {escape(f.region)}: steps {steps} "
                f"(try {f.max_try})</li>"
            )
        out.append("</ul>")
    if result.no_baseline:
        out.append(
            "<p>No baseline yet (too few trailing runs): "
            + escape(", ".join(result.no_baseline)) + "</p>"
        )
    if link:
        out.append(f'<p><a href="{escape(link, quote=True)}">Open the run in Airflow</a>: '
                   f"{escape(link)}</p>")
    return "".join(out)


def incomplete_subject(model: str, run_id: str, missing: list[int]) -> str:
    return (f"[framecast] INCOMPLETE: {model} {run_id}: {len(missing)} step(s) missing "
            f"(+{min(missing)}..+{max(missing)} h)")


def incomplete_html(*, model: str, run_id: str, missing: list[int], published: list[int],
                    dag_id: str, dag_run_id: str, link: str) -> str:
    """Body of the e-mail for a run published without some steps (they never arrived)."""
    def steps(values: list[int]) -> str:
        return ", ".join(f"+{s}" for s in values) or "none"

    return (
        f"<p>Model <b>{escape(model)}</b> run <b>{escape(run_id)}</b> was published "
        f"<b>incomplete</b>: the files of some steps never arrived upstream before their wait "
        f"timed out. Every other chunk was published; viewers show the run as incomplete.</p>"
        f"<table><tr><th>Missing steps</th><td>{escape(steps(missing))}</td></tr>"
        f"<tr><th>Published steps</th><td>{escape(steps(published))}</td></tr>"
        f"<tr><th>DAG / run</th><td>{escape(dag_id)} / {escape(dag_run_id)}</td></tr></table>"
        f"<p>Once the files are upstream, clear the failed chunk's tasks to publish it: "
        f'<a href="{escape(link, quote=True)}">open the run in Airflow</a> ({escape(link)}).</p>'
    )
