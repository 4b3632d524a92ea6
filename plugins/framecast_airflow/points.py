"""Task bodies of the model DAGs' point forecasts (meteograms, sections, soundings, data).

``extract_points`` runs once after the downloads: it reads every GRIB message of the run once
for all the model's places (``places.yaml``) and stores the series; it returns the batches of
places the mapped ``meteograms`` task draws, named like ``meteograms/Hamburg..Munich``.
Each batch writes its files, their timing records (as map frames do) and the place index.
"""

from __future__ import annotations

from typing import Any

from framecast.points.places import PointsConfig, load_points_config
from framecast_airflow.runtime import run_context

SERIES_FILE = "points/_series.npz"


def config_of(model: str) -> PointsConfig | None:
    """The model's point set-up; a bad places file fails the DAG file at parse time."""
    return load_points_config(model)


def extract_points(model: str, context: Any) -> list[dict[str, Any]]:
    """Series of all places from the downloaded run; the batches for the mapped charts."""
    from framecast.points.extract import extract, save_series
    from framecast.points.runner import batch_label

    rc = run_context(model, context)
    cfg = load_points_config(model)
    if cfg is None:
        return []
    series = extract(rc.raw_dir, cfg.places, model=model, method=cfg.method)
    save_series(series, rc.frames_dir / SERIES_FILE)
    n = len(cfg.places)
    return [{"label": batch_label("meteograms", cfg.places[k:k + cfg.batch_size]),
             "places": list(range(k, min(n, k + cfg.batch_size)))}
            for k in range(0, n, cfg.batch_size)]


def render_points(model: str, batch: dict[str, Any], context: Any) -> dict[str, Any]:
    """Draw one batch of places: data files, meteogram, section, soundings, records."""
    from framecast.points.extract import load_series
    from framecast.points.runner import PRODUCTS, render_places, write_index
    from framecast.records import write_records

    rc = run_context(model, context)
    cfg = load_points_config(model)
    series = load_series(rc.frames_dir / SERIES_FILE).subset(batch["places"])
    ti = context.get("ti")
    records, rss = render_places(series, rc.frames_dir, PRODUCTS,
                                 cfg.sounding_steps if cfg else (),
                                 int(getattr(ti, "try_number", 0) or 0))
    first, last = series.places[0].slug, series.places[-1].slug
    write_records(rc.frames_dir, f"points__{first}__{last}", records)
    write_index(rc.frames_dir, series.model, series.run_time.isoformat())
    return {"places": len(series.places), "files": len(records),
            "bytes": sum(r.bytes for r in records), "peak_rss_mb": round(rss, 1)}


def point_variables(model: str, spec) -> tuple[str, ...]:
    """The names the point forecasts read that the model provides (downloaded too)."""
    from framecast.points.extract import candidate_variables

    cfg = load_points_config(model)
    if cfg is None:
        return ()
    return tuple(n for n in candidate_variables(cfg.levels) if spec.variable(n) is not None)
