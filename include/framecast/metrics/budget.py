"""Performance budget: is this run's per-frame cost out of line with the trailing runs?

Why per product and why p50 *and* p95: products differ by an order of magnitude (a pressure
chart with labels versus a precipitation shading), so one run-wide number would hide a
regression in a cheap product; p50 catches "everything got slower" (a library upgrade, a
noisy neighbour) and p95 catches "some frames got much slower" (one region, one bad step).
The baseline is the median of the trailing runs' p50/p95, so one odd run in the history does
not move it.

Retries are reported here too: a mapped task that needed a retry did its work twice, which an
operator wants to know about even when the run finished on time.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from framecast.errors import SpecError
from framecast.metrics import store
from framecast.metrics.store import TaskTry, frame_total_ms, percentile
from framecast.records import FrameRecord


@dataclass(frozen=True)
class ProductStats:
    """Per-frame cost of one product in one run."""

    product: str
    frames: int
    p50_ms: float
    p95_ms: float


@dataclass(frozen=True)
class Regression:
    """A product whose p50 or p95 exceeds ``factor`` times its baseline."""

    product: str
    current: ProductStats
    baseline_p50_ms: float
    baseline_p95_ms: float
    baseline_runs: int
    factor: float

    @property
    def p50_ratio(self) -> float:
        return self.current.p50_ms / self.baseline_p50_ms if self.baseline_p50_ms else float("inf")

    @property
    def p95_ratio(self) -> float:
        return self.current.p95_ms / self.baseline_p95_ms if self.baseline_p95_ms else float("inf")


@dataclass(frozen=True)
class RetriedFrames:
    """Frames of one product/region rendered by a try after the first."""

    product: str
    region: str
    steps: tuple[int, ...]
    max_try: int


@dataclass
class BudgetResult:
    """Outcome of a budget check; ``ok`` is False when an alert should go out."""

    model: str
    run: str
    factor: float
    current: dict[str, ProductStats]
    regressions: list[Regression] = field(default_factory=list)
    no_baseline: list[str] = field(default_factory=list)
    retried_frames: list[RetriedFrames] = field(default_factory=list)
    retried_tasks: list[TaskTry] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.regressions or self.retried_frames or self.retried_tasks)


def product_stats(records: Sequence[FrameRecord]) -> dict[str, ProductStats]:
    """p50/p95 of the per-frame total time for each product."""
    by_product: dict[str, list[float]] = defaultdict(list)
    for r in records:
        by_product[r.product].append(frame_total_ms(r))
    return {
        p: ProductStats(p, len(v), percentile(v, 50), percentile(v, 95))
        for p, v in sorted(by_product.items())
    }


def retried_frames(records: Sequence[FrameRecord]) -> list[RetriedFrames]:
    """Product/region groups whose frames were written by a retry (``try_number`` > 1)."""
    groups: dict[tuple[str, str], list[FrameRecord]] = defaultdict(list)
    for r in records:
        if int(r.try_number) > 1:
            groups[(r.product, r.region)].append(r)
    return [
        RetriedFrames(p, reg, tuple(sorted(r.step for r in recs)),
                      max(int(r.try_number) for r in recs))
        for (p, reg), recs in sorted(groups.items())
    ]


def check_budget(
    model: str,
    run: str,
    current: Sequence[FrameRecord],
    history: Mapping[str, Sequence[FrameRecord]],
    *,
    factor: float = 1.5,
    min_runs: int = 3,
    retried: Sequence[TaskTry] = (),
) -> BudgetResult:
    """Compare ``current`` with ``history`` (run -> its frames); pure, no I/O.

    A product needs at least ``min_runs`` trailing runs that rendered it before it can regress:
    a new product has no baseline yet and is listed in ``no_baseline`` instead.
    """
    if factor <= 1.0:
        raise SpecError(f"budget factor {factor!r}: must be greater than 1.0")
    if min_runs < 1:
        raise SpecError(f"budget min_runs {min_runs!r}: must be at least 1")
    cur = product_stats(current)
    hist = [product_stats(recs) for recs in history.values()]
    result = BudgetResult(model=model, run=run, factor=factor, current=cur,
                          retried_frames=retried_frames(current), retried_tasks=list(retried))
    for product, stats in cur.items():
        past = [h[product] for h in hist if product in h]
        if len(past) < min_runs:
            result.no_baseline.append(product)
            continue
        b50 = statistics.median(s.p50_ms for s in past)
        b95 = statistics.median(s.p95_ms for s in past)
        if stats.p50_ms > factor * b50 or stats.p95_ms > factor * b95:
            result.regressions.append(Regression(product, stats, b50, b95, len(past), factor))
    return result


def evaluate_run(
    db_url: str,
    model: str,
    run: str,
    *,
    trailing: int = 10,
    factor: float = 1.5,
    min_runs: int = 3,
    dag_id: str | None = None,
    run_id: str | None = None,
) -> BudgetResult:
    """Budget check of a stored run against the ``trailing`` stored runs before it.

    With ``dag_id`` and ``run_id`` the Airflow task tries recorded for that DAG run are checked
    for retries as well.
    """
    run_iso = store.normalize_run(run)
    current = store.frames(db_url, model, run_iso)
    history = {
        r: store.frames(db_url, model, r)
        for _, r in store.run_keys(db_url, model=model, last=trailing, before=run_iso)
    }
    tries = store.retried_tasks(db_url, dag_id, run_id) if dag_id and run_id else []
    return check_budget(model, run_iso, current, history, factor=factor, min_runs=min_runs,
                        retried=tries)

