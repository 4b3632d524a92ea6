"""Preseed Natural Earth shapefiles for exactly what the shipped regions and maps draw.

framecast never downloads geography at run time (a missing file is an error naming it), so a
deployment fills ``CARTOPY_DATA_DIR`` once, at image build time (see Dockerfile), with
cartopy's own downloader. The list is derived from the configuration, not hard-coded: every
region's coastline scale with its land, borders and lakes (the map renderer draws land and
lakes at 50m when a region asks for 10m coastlines), the land mask the sample-data generator
uses, and the admin-0 countries the choropleth maps join on.

    python deploy/preseed_natural_earth.py [--regions regions.yaml] [--check] [--list]
        [--add category/name/scale ...] [--from DIR]

``--check`` downloads nothing and exits 1 when a file is missing; ``--list`` prints the set.
``--add`` preseeds more layers, e.g. ``cultural/admin_1_states_provinces_lakes/10m`` for
choropleth maps of every country's subdivisions (``geography: {level: admin1, scale: 10m}``).
``--from DIR`` copies the files from a folder in the same layout instead of downloading (to
stage them for an image build on a machine that cannot reach naturalearthdata.com).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

Feature = tuple[str, str, str]  # (category, name, scale)

# Drawn by framecast.sampledata.land (land/sea mask of generated fields).
SAMPLE_DATA_FEATURES: tuple[Feature, ...] = (("physical", "land", "110m"),)
# framecast.choropleth.geography.SCALES: the admin-0 scales choropleth specs may choose.
CHOROPLETH_FEATURES: tuple[Feature, ...] = (
    ("cultural", "admin_0_countries", "110m"),
    ("cultural", "admin_0_countries", "50m"),
    ("cultural", "admin_1_states_provinces_lakes", "110m"),  # geography.level: admin1
)


def area_scale(coastline_scale: str) -> str:
    """Scale of land and lakes for a region (mirrors framecast.render.frame._lakes_scale)."""
    return "50m" if coastline_scale == "10m" else coastline_scale


def region_features(coastline_scale: str, borders: bool, lakes: bool) -> set[Feature]:
    """The Natural Earth layers the map renderer draws for one region."""
    out = {("physical", "coastline", coastline_scale),
           ("physical", "land", area_scale(coastline_scale))}
    if borders:
        out.add(("cultural", "admin_0_boundary_lines_land", coastline_scale))
    if lakes:
        out.add(("physical", "lakes", area_scale(coastline_scale)))
    return out


def needed_features(regions: Iterable) -> list[Feature]:
    """Every feature the given regions, the sample data and the choropleth maps need."""
    need: set[Feature] = set(SAMPLE_DATA_FEATURES) | set(CHOROPLETH_FEATURES)
    for r in regions:
        need |= region_features(r.coastline_scale, r.borders, r.lakes)
    return sorted(need)


def shapefile(data_dir: Path, feature: Feature) -> Path:
    category, name, scale = feature
    return data_dir / "shapefiles" / "natural_earth" / category / f"ne_{scale}_{name}.shp"


def missing(data_dir: Path, features: Iterable[Feature]) -> list[Feature]:
    return [f for f in features if not shapefile(data_dir, f).is_file()]


def download(data_dir: Path, features: Iterable[Feature]) -> None:
    """Fetch with cartopy's downloader into ``data_dir`` (its standard layout)."""
    import cartopy
    from cartopy.io import shapereader

    cartopy.config["data_dir"] = str(data_dir)
    for category, name, scale in features:
        print(f"downloading Natural Earth {scale} {category}/{name}", flush=True)
        shapereader.natural_earth(resolution=scale, category=category, name=name)


def copy_from(source: Path, data_dir: Path, features: Iterable[Feature]) -> None:
    """Copy each feature's shapefile with its sidecar files (.shx, .dbf, .prj, ...)."""
    import shutil

    for f in features:
        src = shapefile(source, f)
        if not src.is_file():
            raise FileNotFoundError(f"Natural Earth file {src} is missing in --from {source}")
        dest = shapefile(data_dir, f).parent
        dest.mkdir(parents=True, exist_ok=True)
        for part in src.parent.glob(src.stem + ".*"):
            shutil.copy2(part, dest / part.name)


def main(argv: list[str] | None = None) -> int:
    from framecast.geo import data_dir as configured_dir
    from framecast.products import load_catalog

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regions", type=Path, default=None, help="regions.yaml (default: shipped)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="target folder (default: $CARTOPY_DATA_DIR)")
    p.add_argument("--check", action="store_true", help="download nothing; fail if missing")
    p.add_argument("--list", action="store_true", help="print the needed features and exit")
    p.add_argument("--add", action="append", default=[], metavar="CATEGORY/NAME/SCALE",
                   help="another layer to preseed, e.g. "
                        "cultural/admin_1_states_provinces_lakes/10m (repeatable)")
    p.add_argument("--from", dest="source", type=Path, default=None,
                   help="copy from this folder (cartopy's layout) instead of downloading")
    args = p.parse_args(argv)

    catalog = load_catalog(regions=args.regions) if args.regions else load_catalog()
    features = needed_features(catalog.regions.values())
    for extra in args.add:
        parts = tuple(extra.strip("/").split("/"))
        if len(parts) != 3 or parts[0] not in ("cultural", "physical") \
                or parts[2] not in ("110m", "50m", "10m"):
            print(f"error: --add {extra!r} must be category/name/scale, e.g. "
                  f"cultural/admin_1_states_provinces_lakes/10m", file=sys.stderr)
            return 2
        features = sorted({*features, parts})
    if args.list:
        for f in features:
            print(" ".join(f))
        return 0
    target = args.data_dir or configured_dir()
    if target is None:
        print("error: set CARTOPY_DATA_DIR or pass --data-dir", file=sys.stderr)
        return 2
    todo = missing(target, features)
    if args.check:
        for f in todo:
            print(f"missing: {shapefile(target, f)}", file=sys.stderr)
        print(f"{len(features) - len(todo)} of {len(features)} Natural Earth files present "
              f"in {target}")
        return 1 if todo else 0
    if args.source is not None:
        try:
            copy_from(args.source, target, todo)
        except FileNotFoundError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        download(target, todo)
    still = missing(target, features)
    if still:
        print(f"error: still missing after download: {still}", file=sys.stderr)
        return 1
    print(f"{len(features)} Natural Earth files present in {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
