"""The chart script forecast sites write today, kept as the benchmark's reference.

One figure per worker; for every frame ``contourf`` + ``contour`` with
``transform=ccrs.PlateCarree()`` (cartopy re-projects every path), ``clabel``, ``savefig(...,
bbox_inches='tight')``, then the collections are removed; a multiprocessing pool over chunks of
steps. Data is read with xarray + cfgrib, one file per variable and step, as published.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path

import numpy as np

T2M_LEVELS = np.arange(-36, 46, 2)
MSL_LEVELS = np.arange(940, 1064, 4)


def _open(path: Path):
    import xarray as xr

    ds = xr.open_dataset(path, engine="cfgrib", backend_kwargs={"indexpath": ""})
    var = next(iter(ds.data_vars))
    return ds[var]


def render_chunk(job: tuple) -> dict:
    """Render the given (step, t2m_file, msl_file) frames; returns per-frame ms and peak RSS."""
    frames, out_dir, size = job
    import cartopy.crs as ccrs
    import cartopy.feature as cfeature
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(size[0] / 100, size[1] / 100), dpi=100)
    proj = ccrs.LambertConformal(central_longitude=10, central_latitude=50,
                                 standard_parallels=(35, 65))
    ax = fig.add_subplot(1, 1, 1, projection=proj)
    ax.set_extent([-20, 45, 33, 68], crs=ccrs.PlateCarree())
    ax.coastlines("50m", linewidth=0.6)
    ax.add_feature(cfeature.BORDERS.with_scale("50m"), linewidth=0.5, linestyle="--")
    ax.add_feature(cfeature.LAKES.with_scale("50m"), facecolor="none", linewidth=0.4)
    cbar = None
    times, cpu = [], []
    for step, t2m_file, msl_file in frames:
        t0 = time.perf_counter()
        c0 = time.process_time()
        t2m = _open(t2m_file)
        msl = _open(msl_file)
        lons, lats = t2m.longitude.values, t2m.latitude.values
        cf = ax.contourf(lons, lats, t2m.values - 273.15, levels=T2M_LEVELS, cmap="turbo",
                         extend="both", transform=ccrs.PlateCarree())
        cs = ax.contour(lons, lats, msl.values / 100, levels=MSL_LEVELS, colors="black",
                        linewidths=0.8, transform=ccrs.PlateCarree())
        ax.clabel(cs, inline=True, fontsize=7, fmt="%d")
        if cbar is None:
            cbar = fig.colorbar(cf, ax=ax, orientation="horizontal", pad=0.03, shrink=0.8,
                                label="2 m temperature (°C)")
        ax.set_title(f"2 m temperature (°C) and mean sea level pressure (hPa)\n"
                     f"icon-eu +{step:03d} h")
        fig.savefig(Path(out_dir) / f"naive_{step:03d}.png", dpi=100, bbox_inches="tight")
        cf.remove()
        cs.remove()  # also removes its labels
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    plt.close(fig)
    return {"ms": times, "cpu_ms": cpu,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
