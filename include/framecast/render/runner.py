"""Rendering a chunk of frames (one product, one region, some steps), or a whole run in parallel.

A chunk is the unit of work of one Airflow mapped task or one CLI worker job: the worker keeps
its :class:`~framecast.render.frame.MapFrame` (static layers, projected pixel geometry) in a
per-process cache, so consecutive chunks of the same product/region pay the set-up once.
Each chunk rewrites exactly its own frames and its own records file, so re-running it is safe.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from framecast.errors import DataError, FramecastError, RenderError
from framecast.products import BarbsLayer, Catalog, Product, load_catalog
from framecast.records import FrameRecord, chunk_name, run_dir, write_records

_FRAMES: dict[tuple, object] = {}


@dataclass(frozen=True)
class Chunk:
    """One unit of rendering work."""

    product: str
    region: str
    steps: tuple[int, ...]

    @property
    def label(self) -> str:
        """Human name used for mapped task instances, e.g. ``t2m_mslp/europe/+000..+012``."""
        return f"{self.product}/{self.region}/+{min(self.steps):03d}..+{max(self.steps):03d}"


def plan_chunks(catalog: Catalog, products: Sequence[str], regions: Sequence[str] | None,
                steps: Sequence[int], chunk_size: int) -> list[Chunk]:
    """All (product, region, steps) chunks, early steps first so first charts appear soonest.

    ``regions=None`` uses each product's own region list.
    """
    if chunk_size < 1:
        raise RenderError(f"chunk size must be >= 1, got {chunk_size}")
    steps = sorted(set(steps))
    if not steps:
        raise DataError("no forecast steps to render")
    pairs: list[tuple[str, str]] = []
    for p in products:
        prod = catalog.product(p)
        for r in (regions if regions is not None else prod.regions):
            catalog.region(r)
            pairs.append((p, r))
    groups = [tuple(steps[i:i + chunk_size]) for i in range(0, len(steps), chunk_size)]
    return [Chunk(p, r, g) for g in groups for (p, r) in pairs]


def _frame_for(catalog: Catalog, product: Product, region: str):
    from framecast.render.frame import MapFrame
    from framecast.render.memory import freeze_static

    key = (catalog.sources, product.name, region)
    frame = _FRAMES.get(key)
    if frame is None:
        frame = MapFrame(product, catalog.region(region))
        _FRAMES[key] = frame
        freeze_static()
    return frame


def _needed(product: Product) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for layer in product.layers:
        names = [layer.u, layer.v] if isinstance(layer, BarbsLayer) else [layer.field]
        out.extend((n, layer.units) for n in names)
    return out


def load_fields(dataset, product: Product, step: int) -> dict:
    """The fields one frame of ``product`` needs at ``step``, in each layer's units."""
    return {name: dataset.field(name, step).to(units) for name, units in _needed(product)}


def render_chunk(data_dir: Path, out_root: Path, *, model: str, run_time: datetime,
                 product: str, region: str, steps: Iterable[int],
                 catalog: Catalog | None = None, try_number: int = 0,
                 on_frame: Callable[[FrameRecord], None] | None = None,
                 decoder: str = "eccodes",
                 climatology: Path | None = None) -> list[FrameRecord]:
    """Render ``steps`` of ``product`` on ``region`` from the GRIB files in ``data_dir``.

    Frames go to ``run_dir(out_root, model, run_time)/<product>/<region>/``; the chunk's
    records to ``_records/``. All steps are checked before anything is drawn, so a missing step
    or variable fails the chunk with a clear error instead of leaving half of it rendered.
    ``climatology`` is the monthly-means file anomaly products subtract (opened only when
    the product needs it, so other products never depend on it).
    """
    from framecast.dataset import RunDataset
    from framecast.render.encode import encode_png, write_atomic
    from framecast.render.memory import collect_frame
    from framecast.variables import load_catalogue

    catalog = catalog or load_catalog()
    prod = catalog.product(product)
    catalog.region(region)
    steps = sorted(set(steps))
    base = run_dir(out_root, model, run_time)
    frame_dir = base / product / region
    host = os.environ.get("FRAMECAST_HOSTNAME") or socket.gethostname()
    records: list[FrameRecord] = []
    needs_clim = any(load_catalogue().climatology_inputs(n) for n, _ in _needed(prod))
    with RunDataset.open(Path(data_dir), model=model, decoder=decoder,
                         climatology=climatology if needs_clim else None) as ds:
        if ds.run_time != run_time:
            raise DataError(f"{data_dir}: holds run {ds.run_time:%Y-%m-%d %H} UTC, "
                            f"expected {run_time:%Y-%m-%d %H} UTC")
        missing = [s for s in steps if s not in ds.steps]
        if missing:
            raise DataError(f"{data_dir}: step(s) {missing} missing for product {product!r} "
                            f"(available: {ds.steps})")
        frame = _frame_for(catalog, prod, region)
        for step in steps:
            t0 = time.perf_counter()
            fields = load_fields(ds, prod, step)
            t1 = time.perf_counter()
            img = frame.render(fields, model=model, run_time=run_time, step=step)
            t2 = time.perf_counter()
            name = prod.format_filename(region=region, model=model, run=run_time, step=step)
            palette = frame.png_palette(img) if prod.png_palette else None
            nbytes = write_atomic(frame_dir / name,
                                  encode_png(img, compress_level=prod.png_compress_level,
                                             palette=palette))
            t3 = time.perf_counter()
            valid = next(iter(fields.values())).valid_time
            rec = FrameRecord(
                model=model, run=run_time.isoformat(), product=product, region=region,
                step=step, path=f"{product}/{region}/{name}", load_ms=(t1 - t0) * 1000,
                render_ms=(t2 - t1) * 1000, encode_ms=(t3 - t2) * 1000, bytes=nbytes,
                host=host, try_number=try_number, valid_time=valid.isoformat())
            records.append(rec)
            if on_frame is not None:
                on_frame(rec)
            del fields, img
            collect_frame()
    write_records(base, chunk_name(product, region, steps), records)
    return records


#: What a render worker process is called in ``ps``/``top`` (Linux ``comm``, 15 bytes at most):
#: a forked worker would otherwise look exactly like the task process or CLI that started it.
WORKER_NAME = "fc-render"


def _worker_init() -> None:
    from framecast.geo import ensure_cartopy

    ensure_cartopy()  # pyproj/cartopy before eccodes, see framecast.geo


def _pool_worker_init() -> None:
    with contextlib.suppress(OSError):  # Linux only; elsewhere the name stays
        Path("/proc/self/comm").write_text(WORKER_NAME)
    _worker_init()


def _index_before_fork(data_dir: Path) -> None:
    """Index the run once here, so every forked worker starts with it (each worker opens the
    run for every product and region it draws; see ``framecast.dataset.index.build_index``).
    A run that cannot be indexed is left to the workers, which report it per chart."""
    from framecast.dataset.index import build_index, find_files

    with contextlib.suppress(FramecastError, OSError):
        build_index(find_files(data_dir))


def _run_chunk(args: tuple) -> list[FrameRecord]:
    (data_dir, out_root, model, run_time, chunk, products_file, regions_file, decoder,
     climatology, try_number) = args
    catalog = load_catalog(products_file, regions_file)
    return render_chunk(data_dir, out_root, model=model, run_time=run_time,
                        product=chunk.product, region=chunk.region, steps=chunk.steps,
                        catalog=catalog, decoder=decoder, climatology=climatology,
                        try_number=try_number)


def _run_chunks(jobs: list[tuple]) -> list[FrameRecord]:
    return [rec for j in jobs for rec in _run_chunk(j)]


def _by_product(jobs: list[tuple]) -> list[list[tuple]]:
    """Consecutive jobs of one product and steps (its regions) as one unit of pool work.

    Why: the product's fields are then decoded once in one worker for all its regions (the
    process-wide field cache of ``framecast.dataset``) rather than once in each of two workers;
    for windowed products (24 h maximum, minimum, sums) that is 24 or more decodes a frame.
    """
    groups: list[list[tuple]] = []
    for j in jobs:
        last = groups[-1][-1][4] if groups else None
        if last is not None and (last.product, last.steps) == (j[4].product, j[4].steps):
            groups[-1].append(j)
        else:
            groups.append([j])
    return groups


def render_run(data_dir: Path, out_root: Path, *, model: str, run_time: datetime,
               chunks: Sequence[Chunk], workers: int | None = None,
               products_file: Path | None = None, regions_file: Path | None = None,
               progress: Callable[[int], None] | None = None,
               decoder: str = "eccodes",
               climatology: Path | None = None, try_number: int = 0,
               start_method: str = "spawn") -> list[FrameRecord]:
    """Render all ``chunks`` with a process pool (``workers=1`` renders in this process).

    The first error stops the run: pending chunks are cancelled and the error re-raised.
    ``try_number`` is stored in every frame record (the Airflow try that rendered it).
    ``start_method`` ``"spawn"`` starts clean interpreters (safe from any caller); ``"fork"``
    lets the workers inherit this process's imports and warm caches, for a caller that knows it
    runs no other threads (an Airflow task process; its ``__main__`` cannot be re-run by spawn).
    """
    workers = workers or max(1, min(len(chunks), os.cpu_count() or 1))
    jobs = [(Path(data_dir), Path(out_root), model, run_time, c, products_file, regions_file,
             decoder, climatology, try_number) for c in chunks]
    out: list[FrameRecord] = []
    if workers == 1:
        _worker_init()
        for j in jobs:
            recs = _run_chunk(j)
            out.extend(recs)
            if progress:
                progress(len(recs))
        return out
    import multiprocessing as mp

    if start_method == "fork":
        _index_before_fork(Path(data_dir))
    ctx = mp.get_context(start_method)
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_pool_worker_init) as pool:
        futures = [pool.submit(_run_chunks, g) for g in _by_product(jobs)]
        try:
            for fut in as_completed(futures):
                recs = fut.result()
                out.extend(recs)
                if progress:
                    progress(len(recs))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return out
