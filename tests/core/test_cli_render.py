"""``framecast render`` end to end on generated model runs, and its behaviour on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from framecast.cli import main
from framecast.records import read_records
from framecast.render.runner import render_chunk


def _pngs(root: Path) -> list[Path]:
    return sorted(root.rglob("*.png"))


def _no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_render_icon_eu_run(icon_eu_run, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["render", "--data", str(icon_eu_run), "--out", str(out), "--model", "icon-eu",
               "--product", "t2m_mslp,precip_mslp", "--region", "germany", "--steps", "0-3",
               "--workers", "1", "--chunk-size", "2", "--no-progress"])
    assert rc == 0
    run = out / "icon-eu" / "2026112300"
    files = _pngs(run)
    assert [p.name for p in files if p.parent.parent.name == "t2m_mslp"] == [
        f"t2m_mslp_germany_2026112300_{s:03d}.png" for s in range(4)]
    assert len(files) == 8
    for f in files:
        with Image.open(f) as im:
            assert im.size == (1000, 800)
            assert im.mode == "P"  # 8-bit palette PNG, the default
            assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 100
    recs = read_records(run)
    assert len(recs) == 8 and {r.step for r in recs} == {0, 1, 2, 3}
    assert all(r.bytes > 10_000 and r.render_ms > 0 for r in recs)
    assert "rendered 8 frames" in capsys.readouterr().out
    # Frames change with time: step 0 and step 3 differ.
    a = np.asarray(Image.open(files[0]).convert("RGB"))
    b = np.asarray(Image.open(files[3]).convert("RGB"))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1


def test_rerender_chunk_replaces_its_frames_only(icon_eu_run, tmp_path):
    kw = dict(model="icon-eu", run_time=_run(), product="clouds", region="uk_ireland")
    render_chunk(icon_eu_run, tmp_path, steps=[0, 1], **kw)
    render_chunk(icon_eu_run, tmp_path, steps=[2, 3], **kw)
    run = tmp_path / "icon-eu" / "2026112300"
    before = {p: p.stat().st_mtime_ns for p in _pngs(run)}
    render_chunk(icon_eu_run, tmp_path, steps=[2, 3], **kw)
    after = {p: p.stat().st_mtime_ns for p in _pngs(run)}
    changed = sorted(p.name[-7:-4] for p in after if after[p] != before[p])
    assert changed == ["002", "003"]
    assert len(read_records(run)) == 4  # no duplicate records after the re-run


def _run():
    from datetime import UTC, datetime

    return datetime(2026, 11, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize("model", ["gfs", "icon"])
def test_global_models_render(model, request, tmp_path):
    data = request.getfixturevalue(f"{model}_run")
    recs = render_chunk(data, tmp_path, model=model, run_time=_run(), product="z500_t500",
                        region="global", steps=[0, 6])
    assert len(recs) == 2
    for r in recs:
        with Image.open(tmp_path / model / "2026112300" / r.path) as im:
            px = np.asarray(im.convert("RGB"))
        # The filled field covers the globe: many colours in the centre of the map.
        centre = px[300:500, 300:700].reshape(-1, 3)
        assert len(np.unique(centre, axis=0)) > 20


def _fails(capsys, argv: list[str], code: int, *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == code, err
    assert err.startswith("framecast: error: ") and err.count("\n") == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_unknown_product_and_malformed_spec(icon_eu_run, tmp_path, capsys):
    base = ["render", "--data", str(icon_eu_run), "--out", str(tmp_path / "o"), "--workers", "1",
            "--no-progress"]
    _fails(capsys, [*base, "--product", "t2m_msl"], 2, "unknown product 't2m_msl'")
    spec = tmp_path / "p.yaml"
    spec.write_text(yaml.safe_dump({"products": {"x": {"title": "x", "regions": ["europe"],
                                                       "layers": [{"type": "filled"}]}}}))
    _fails(capsys, [*base, "--products-file", str(spec)], 2, str(spec), "products.x.layers[0]",
           "missing required field(s) ['cmap', 'field', 'levels']")
    assert not (tmp_path / "o").exists()


def test_missing_step_or_variable(icon_eu_run, tmp_path, capsys):
    out = tmp_path / "o"
    base = ["render", "--data", str(icon_eu_run), "--out", str(out), "--workers", "1",
            "--no-progress", "--region", "europe"]
    _fails(capsys, [*base, "--product", "t2m_mslp", "--steps", "5-9"], 3, "step(s) [7, 8, 9]")
    assert _pngs(out) == []
    partial = tmp_path / "partial"
    shutil.copytree(icon_eu_run, partial)
    for f in partial.rglob("*PMSL*"):
        f.unlink()
    _fails(capsys, ["render", "--data", str(partial), "--out", str(out), "--workers", "1",
                    "--no-progress", "--product", "t2m_mslp", "--region", "europe",
                    "--steps", "0"], 3, "msl")
    assert _pngs(out) == []


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_truncated_or_non_grib_file(icon_eu_run, tmp_path, capsys, damage):
    """A damaged GRIB file of step 2 fails the run with its file name, and the output folder
    holds no PNG and no temp file afterwards: steps 0-1 rendered before the bad step do not
    stay behind as a partial run. Writing frames before all inputs are checked, or leaving a
    ``.tmp`` behind, fails this test."""
    data = tmp_path / "data"
    shutil.copytree(icon_eu_run, data)
    victim = next(data.rglob("*_002_T_2M.grib2"))
    raw = victim.read_bytes()
    victim.write_bytes(raw[: len(raw) // 2] if damage == "truncate" else b"<html>404</html>")
    out = tmp_path / "o"
    _fails(capsys, ["render", "--data", str(data), "--out", str(out), "--workers", "1",
                    "--no-progress", "--product", "t2m_mslp", "--region", "germany",
                    "--steps", "0-3"], 3, victim.name)
    assert _pngs(out) == []
    assert _no_temp_files(out) if out.exists() else True
