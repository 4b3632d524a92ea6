"""Fixtures for publishing tests: small real rendered runs, and real servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from framecast.records import FrameRecord, run_dir, write_records

RUN_TIME = datetime(2026, 11, 23, 0, tzinfo=UTC)
COLOURS = {"t2m": (200, 80, 60), "pmsl": (60, 90, 200), "precip": (40, 160, 90)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_png(path: Path, text: str, colour: tuple[int, int, int], size=(200, 150)) -> None:
    """A small real PNG; noise makes sizes differ per frame like real charts."""
    img = Image.new("RGB", size, (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle([10, 10, size[0] - 10, size[1] - 40], fill=colour)
    draw.text((20, size[1] - 32), text, fill=(0, 0, 0))
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    for i in range(40):
        x = (seed >> (i % 24)) % size[0] + i
        draw.point((x % size[0], (seed + 7 * i) % size[1]), fill=(i * 5 % 255, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format="PNG")


def make_run(
    out_root: Path,
    *,
    model: str = "icon-eu",
    run_time: datetime = RUN_TIME,
    products=("t2m", "pmsl"),
    regions=("europe", "alps"),
    steps=(0, 1, 2, 3),
    tag: str = "",
    size=(200, 150),
) -> Path:
    """A rendered run folder: PNG frames + frame records, like the renderer leaves it."""
    rd = run_dir(out_root, model, run_time)
    for product in products:
        for region in regions:
            recs = []
            for step in steps:
                rel = f"{product}/{region}/{product}_{region}_{step:03d}.png"
                make_png(rd / rel, f"{tag}{model} {product} {region} +{step}h",
                         COLOURS.get(product, (120, 120, 120)), size)
                recs.append(FrameRecord(
                    model=model, run=run_time.isoformat(), product=product, region=region,
                    step=step, path=rel, bytes=(rd / rel).stat().st_size,
                    valid_time=(run_time + timedelta(hours=step)).isoformat(),
                ))
            write_records(rd, f"{product}__{region}", recs)
    return rd


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_published(root: Path, model: str, run_path: Path, *, complete: bool = True) -> dict:
    """The remote tree holds exactly the run's files, byte for byte, and the manifest agrees."""
    run_id = run_path.name
    remote_run = root / model / run_id
    manifest = json.loads((remote_run / "manifest.json").read_text())
    assert manifest["run_id"] == run_id and manifest["model"] == model
    assert manifest["complete"] is complete
    assert manifest["files"], "manifest lists no files"
    for rel, meta in manifest["files"].items():
        remote = remote_run / rel
        local = run_path / rel
        assert remote.is_file(), f"missing on server: {rel}"
        assert remote.stat().st_size == meta["size"] == local.stat().st_size, rel
        assert sha256(remote) == meta["sha256"] == sha256(local), rel
    on_server = {
        p.relative_to(remote_run).as_posix() for p in remote_run.rglob("*") if p.is_file()
    }
    assert on_server == set(manifest["files"]) | {"manifest.json"}, "unexpected remote files"
    return manifest


@pytest.fixture
def run_path(tmp_path: Path) -> Path:
    return make_run(tmp_path / "out")
