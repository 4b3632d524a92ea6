"""Point data as files: one CSV and one JSON per place, in documented columns and units.

CSV: a ``#``-comment header (place, model, run, grid point, units line) then one row per
step; empty cells where a value is not available. JSON: the same columns as arrays (``null``
where not available) with ``units`` and ``meaning`` per column, for web pages and apps.
Written to a temporary file and renamed, like every published file.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from framecast.points.extract import PointSeries
from framecast.points.table import place_table


def atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _num(v: float, digits: int = 2) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), digits)


def place_document(series: PointSeries, i: int) -> dict[str, Any]:
    """The JSON document of place number ``i`` (see docs/points.md)."""
    tab = place_table(series, i)
    place = series.places[i]
    times = [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in series.valid_times]
    data: dict[str, list] = {"valid_time": times}
    for name, values in tab.columns.items():
        digits = 0 if name in ("step", "ww") else 2
        data[name] = [_num(v, digits) for v in values]
        if name in ("step", "ww"):
            data[name] = [None if v is None else int(v) for v in data[name]]
    units = {"valid_time": "UTC", **tab.units}
    meaning = {"valid_time": "valid time, ISO 8601", **tab.meaning}
    return {
        "place": place.to_dict(),
        "model": series.model,
        "run": series.run_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "grid_point": {"lat": round(float(series.grid_lat[i]), 4),
                       "lon": round(float(series.grid_lon[i]), 4), "method": series.method},
        "weather_code": tab.ww_source,
        "rain_snow_split": ("model snowfall" if tab.split_source == "model"
                            else "by 2 m temperature (snow at or below 1 degC)"),
        "columns": list(data), "units": units, "meaning": meaning, "data": data,
    }


def write_json(series: PointSeries, i: int, path: Path) -> Path:
    doc = place_document(series, i)
    return atomic_write(path, json.dumps(doc, ensure_ascii=False, separators=(",", ":"))
                        .encode())


def write_csv(series: PointSeries, i: int, path: Path) -> Path:
    doc = place_document(series, i)
    buf = io.StringIO()
    p = doc["place"]
    buf.write(f"# place: {p['name']} ({p['lat']}, {p['lon']}); time zone {p['tz']}\n")
    buf.write(f"# model: {doc['model']} run {doc['run']}; grid point {doc['grid_point']['lat']}, "
              f"{doc['grid_point']['lon']} ({doc['grid_point']['method']})\n")
    buf.write("# units: " + ", ".join(f"{c}={doc['units'][c]}" for c in doc["columns"]) + "\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(doc["columns"])
    cols = [doc["data"][c] for c in doc["columns"]]
    for row in zip(*cols, strict=True):
        w.writerow(["" if v is None else v for v in row])
    return atomic_write(path, buf.getvalue().encode())


def read_csv(path: Path) -> dict[str, list[str]]:
    """Columns of a CSV written by :func:`write_csv` (comment lines skipped)."""
    lines = [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")]
    rows = list(csv.reader(lines))
    return {name: [r[k] for r in rows[1:]] for k, name in enumerate(rows[0])}
