"""Benchmark: bytes per ICON-EU cycle and upload time to SFTP, 24-bit vs 8-bit palette PNG.

A full ICON-EU cycle is every product x region of the ``icon-eu`` model entry for every step
(0-78 hourly, 81-120 3-hourly: 93 steps). Frames of ``--sample-steps`` generated steps are
rendered once per product and region and encoded both ways; the cycle's other steps reuse those
frames' bytes under their own names (rendering 1,100+ charts twice would take most of an hour
and tells nothing more about size or upload time). Each cycle is then published with framecast's
publisher to the real asyncssh SFTP server the publishing tests use (127.0.0.1, one process),
and timed. Usage::

    .venv/bin/python bench/bench_publish.py                 # 3 sample steps
    .venv/bin/python bench/bench_publish.py --sample-steps 1 --workers 4
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
SFTP_SCRIPT = ROOT / "tests" / "publish" / "sftp_server.py"


def cycle_steps() -> list[int]:
    from framecast.catalog import load_models

    return list(load_models()["icon-eu"].steps)


def render_samples(data: Path, out: Path, pairs: list[tuple[str, str]], steps: list[int]) -> dict:
    """{(product, region, step, mode): bytes} for mode "rgb" (24-bit) and "pal" (palette)."""
    from framecast.dataset import RunDataset
    from framecast.products import load_catalog
    from framecast.render.encode import encode_png
    from framecast.render.frame import MapFrame
    from framecast.render.runner import load_fields

    cat = load_catalog()
    frames: dict = {}
    with RunDataset.open(data, model="icon-eu") as ds:
        for product, region in pairs:
            prod = cat.product(product)
            frame = MapFrame(prod, cat.region(region))
            for step in steps:
                img = frame.render(load_fields(ds, prod, step), model="icon-eu", run_time=RUN,
                                   step=step)
                pal = frame.png_palette(img)
                frames[product, region, step, "rgb"] = encode_png(img, compress_level=3)
                frames[product, region, step, "pal"] = encode_png(img, palette=pal)
    return frames


def build_cycle(frames: dict, pairs: list[tuple[str, str]], sample: list[int], steps: list[int],
                mode: str, out_root: Path) -> tuple[Path, int]:
    """A rendered run folder for the whole cycle as the renderer leaves it; returns its bytes."""
    from framecast.products import load_catalog
    from framecast.records import FrameRecord, chunk_name, run_dir, write_records

    cat = load_catalog()
    base = run_dir(out_root, "icon-eu", RUN)
    total = 0
    for product, region in pairs:
        prod = cat.product(product)
        recs = []
        for i, step in enumerate(steps):
            data = frames[product, region, sample[i % len(sample)], mode]
            name = prod.format_filename(region=region, model="icon-eu", run=RUN, step=step)
            path = base / product / region / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            total += len(data)
            recs.append(FrameRecord(model="icon-eu", run=RUN.isoformat(), product=product,
                                    region=region, step=step, path=f"{product}/{region}/{name}",
                                    bytes=len(data),
                                    valid_time=(RUN + timedelta(hours=step)).isoformat()))
        write_records(base, chunk_name(product, region, steps), recs)
    return base, total


class SftpServer:
    """The publishing tests' asyncssh server in its own process, on a free loopback port."""

    def __init__(self, root: Path, keys: Path) -> None:
        import asyncssh

        keys.mkdir()
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(keys / "host")
        key.write_public_key(keys / "host.pub")
        self.password = "bench"
        self.proc = subprocess.Popen(
            [sys.executable, str(SFTP_SCRIPT), "--root", str(root), "--host-key",
             str(keys / "host"), "--user", "pub", "--password", self.password],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise SystemExit(f"sftp server did not start: {line!r}")
        self.port = int(line.split()[1])
        pub = (keys / "host.pub").read_text().split()
        self.known_hosts = keys / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")

    def target(self, root: str):
        from framecast.publish.url import target_from_url

        return target_from_url(f"sftp://pub@127.0.0.1:{self.port}{root}",
                               password=self.password, known_hosts=self.known_hosts)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample-steps", type=int, default=3)
    ap.add_argument("--workers", type=int, default=4, help="parallel SFTP connections")
    args = ap.parse_args()
    os.environ.setdefault("CARTOPY_DATA_DIR", str(ROOT.parent / "shared" / "cartopy-data"))
    from framecast.geo import ensure_cartopy

    ensure_cartopy()
    from framecast.catalog import load_models
    from framecast.publish.publisher import publish_run
    from framecast.sampledata import generate_run

    print(f"machine: {os.cpu_count()} cores, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start", flush=True)
    model = load_models()["icon-eu"]
    pairs = [(p, r) for p in model.products for r in model.regions]
    steps = cycle_steps()
    sample = list(range(6, 6 + args.sample_steps))
    with tempfile.TemporaryDirectory(prefix="fc-bench-publish-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        generate_run("icon-eu", RUN, range(max(sample) + 1), tmp / "data")
        frames = render_samples(tmp / "data", tmp / "frames", pairs, sample)
        print(f"rendered {len(pairs)} product/region pairs x {len(sample)} steps in "
              f"{time.perf_counter() - t0:.0f} s; cycle: {len(pairs)} pairs x {len(steps)} "
              f"steps = {len(pairs) * len(steps)} frames", flush=True)
        srv = SftpServer(tmp / "www", tmp / "keys")
        (tmp / "www").mkdir()
        results = {}
        try:
            for mode, label in (("rgb", "24-bit PNG (before)"), ("pal", "8-bit palette PNG")):
                run_path, total = build_cycle(frames, pairs, sample, steps, mode, tmp / mode)
                t0 = time.perf_counter()
                report = publish_run(run_path, srv.target(f"/{mode}"), model="icon-eu",
                                     run_time=RUN, workers=args.workers)
                dt = time.perf_counter() - t0
                sizes = [len(v) for k, v in frames.items() if k[3] == mode]
                results[mode] = (total, dt)
                print(f"{label}: {total / 1e6:.0f} MB per cycle ({statistics.median(sizes) / 1000:.0f}"
                      f" KB median frame), {len(report.uploaded)} files uploaded in {dt:.1f} s "
                      f"({total / 1e6 / dt:.1f} MB/s, {args.workers} connections)", flush=True)
                shutil.rmtree(tmp / mode)
        finally:
            srv.stop()
        (b0, t0_), (b1, t1_) = results["rgb"], results["pal"]
        print(f"palette vs 24-bit: {b0 / b1:.2f}x fewer bytes, upload {t0_ / t1_:.2f}x faster")
    print(f"machine: load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
