"""Paying the render stack's imports once in a long-lived parent process.

A process that forks task processes (Airflow's scheduler with the LocalExecutor, a Celery
worker) calls :func:`prewarm`; each forked child then starts with framecast's renderer,
dataset layer, cartopy, pyproj, matplotlib and ecCodes already imported, instead of paying
about 0.6 s of imports per task (measured in docs/airflow.md). The shipped product,
region, style and variable specs are parsed here too (cached per process). Nothing here
draws or opens data: the parent stays small and fork-safe (no threads are started).
"""

from __future__ import annotations


def prewarm() -> None:
    """Import the modules every render task needs, in the order cartopy needs."""
    import os

    os.environ.setdefault("MPLBACKEND", "Agg")
    from framecast.geo import ensure_cartopy

    ensure_cartopy()  # pyproj/cartopy before eccodes, see framecast.geo
    import cartopy.crs  # noqa: F401
    import cartopy.feature  # noqa: F401
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.cm  # noqa: F401
    import matplotlib.figure  # noqa: F401
    import matplotlib.tri  # noqa: F401
    import scipy.ndimage  # noqa: F401
    import scipy.spatial  # noqa: F401
    from PIL import Image  # noqa: F401

    import framecast.dataset  # noqa: F401
    import framecast.render.encode  # noqa: F401
    import framecast.render.frame  # noqa: F401
    import framecast.render.runner  # noqa: F401
    from framecast.products import load_catalog
    from framecast.variables import load_catalogue

    load_catalog()  # the shipped specs, parsed once (cached by path and mtime)
    load_catalogue()
    from framecast.variables.derived import _units

    _units()  # MetPy's unit registry (pint): about 1.5-3 s to import, on first derived field
    from framecast.dataset.grib import eccodes

    # ecCodes reads its definition files on first use (about 0.5 s); one lookup loads them.
    handle = eccodes.codes_grib_new_from_samples("GRIB2")
    try:
        eccodes.codes_get_string(handle, "shortName")
    finally:
        eccodes.codes_release(handle)
