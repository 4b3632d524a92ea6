"""``framecast plot FILE... --field NAME``: any field of any GRIB file, with an automatic style.

One frame per valid time in the files (a forecast's steps, or a reanalysis' analysis times),
levels from the data range, a palette by the variable's kind, on a named region or the
data's own area. The field may be a catalogue name, a derived quantity or a GRIB shortName
(``skt``, ``r@isobaricInhPa:700``).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from framecast.commands.args import parse_steps


def _size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)x(\d+)", text)
    if not m or not all(200 <= int(v) <= 8000 for v in m.groups()):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels (200..8000), "
                                         f"got {text!r}")
    return int(m[1]), int(m[2])


def plot(files: list[Path], field: str, out: Path, *, region: str | None = None,
         units: str | None = None, model: str | None = None, steps: list[int] | None = None,
         size: tuple[int, int] = (1000, 800), regions_file: Path | None = None,
         climatology: Path | None = None) -> list[Path]:
    """Render ``field`` from ``files`` to PNGs under ``out``; returns the written paths."""
    from framecast.dataset import RunDataset
    from framecast.errors import DataError
    from framecast.products import load_catalog
    from framecast.render.autostyle import auto_region, auto_style, filled_layer, plot_product
    from framecast.render.encode import encode_png, write_atomic
    from framecast.render.frame import MapFrame
    from framecast.variables import load_catalogue

    source = files[0] if len(files) == 1 else files  # one file or one directory
    with RunDataset.open(source, model=model, climatology=climatology) as ds:
        wanted = steps if steps is not None else ds.steps
        present = [s for s in wanted if ds.has(field, s)]
        if not present:
            ds.field(field, wanted[0] if wanted else 0)  # raises the precise reason
            raise DataError(f"{field!r} is at none of the steps {wanted} in {files[0]}")
        fields = {s: ds.field(field, s) for s in present}
        first = fields[present[0]]
        style = auto_style(field, fields.values(), units)
        long_name = load_catalogue().long_name_of(field)
        if long_name == field and "@" not in field:
            long_name = field
        if region is None:
            reg = auto_region(first)
        else:
            reg = load_catalog(regions=regions_file).region(region)
        title = f"{long_name} ({style.units})"
        layer = filled_layer(field, style, title)
        product = plot_product(field, title, layer, reg.name, size)
        frame = MapFrame(product, reg)
        written = []
        for s in present:
            f = fields[s].to(style.units)
            img = frame.render({field: f}, model=ds.model, run_time=ds.run_time, step=s)
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", field)
            name = f"{safe}_{reg.name}_{f.valid_time:%Y%m%d%H%M}.png"
            path = Path(out) / name
            write_atomic(path, encode_png(img))
            written.append(path)
    return written


def _run(args: argparse.Namespace) -> int:
    written = plot(args.files, args.field, args.out, region=args.region, units=args.units,
                   model=args.model, steps=args.steps, size=args.size,
                   regions_file=args.regions_file, climatology=args.climatology)
    print(f"plot: {len(written)} frame(s) of {args.field} -> {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "plot", help="plot any field of any GRIB file(s) with an automatic style",
        description="Render one map per valid time of FIELD from GRIB1/GRIB2 files: levels "
                    "from the data range, a palette by variable kind, on REGION or the "
                    "data's own area. FIELD is a catalogue name (t2m, r700), a derived name "
                    "(wind850, tp_6h) or a GRIB shortName[@typeOfLevel[:level]] (skt, "
                    "r@isobaricInhPa:700).")
    p.add_argument("files", nargs="+", type=Path, help="GRIB files (or one directory)")
    p.add_argument("--field", required=True, help="variable to plot")
    p.add_argument("--out", type=Path, required=True, help="output directory for the PNGs")
    p.add_argument("--region", default=None,
                   help="named region (default: the data's own area)")
    p.add_argument("--regions-file", type=Path, default=None, help="region table YAML")
    p.add_argument("--units", default=None, help="display units (default: by kind, e.g. degC)")
    p.add_argument("--model", default=None,
                   help="source label for titles (default: from file names or GRIB centre)")
    p.add_argument("--steps", type=parse_steps, default=None,
                   help="steps (hours after the first analysis) to plot, e.g. 0-12/3")
    p.add_argument("--climatology", type=Path, default=None,
                   help="GRIB file of monthly means, for anomalies (--field t2m_anomaly)")
    p.add_argument("--size", type=_size, default=(1000, 800), help="WIDTHxHEIGHT in pixels")
    p.set_defaults(func=_run)
