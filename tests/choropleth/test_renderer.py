"""The per-frame renderer on raw frames (no codec): exact colours where they must be."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from framecast.choropleth.geography import load_countries
from framecast.choropleth.raster import FIRST_COUNTRY, LABEL_OCEAN, RenderAssets, build_assets
from framecast.choropleth.renderer import FrameRenderer
from framecast.choropleth.style import resolve_scale, sample_cmap, style_from_dict


@pytest.fixture(scope="module")
def setup():
    c = load_countries("110m")
    style = style_from_dict({"breaks": [10, 100], "cmap": "Blues", "title": "T {time:%Y}",
                             "caption": "c"})
    scale = resolve_scale(style, 0, 1000)
    assets = build_assets(c, style, scale, 600, 340)
    return c, style, scale, assets


def _interior(assets: RenderAssets, label: int) -> tuple[int, int]:
    mask = (assets.labels.reshape(assets.height, assets.width) == label)
    dist = ndimage.distance_transform_edt(mask)
    y, x = np.unravel_index(np.argmax(dist), dist.shape)
    assert dist[y, x] >= 3, f"label {label} has no interior pixel"
    return int(y), int(x)


def test_countries_get_class_colours_and_no_data_grey(setup):
    c, style, scale, assets = setup
    r = FrameRenderer(assets, scale, style)
    values = np.full(len(c), np.nan)
    usa, bra, aus = c.index_of("USA"), c.index_of("BRA"), c.index_of("AUS")
    values[usa], values[bra] = 5.0, 500.0
    frame = r.render(values, "title", "caption")[..., :3]
    colours = sample_cmap("Blues", 3)
    assert tuple(frame[_interior(assets, FIRST_COUNTRY + usa)]) == tuple(colours[0])
    assert tuple(frame[_interior(assets, FIRST_COUNTRY + bra)]) == tuple(colours[2])
    assert tuple(frame[_interior(assets, FIRST_COUNTRY + aus)]) == style.nodata_color
    assert tuple(frame[_interior(assets, LABEL_OCEAN)]) == style.ocean_color
    # Next frame: only the palette changes; the buffer is fully rewritten.
    values[usa] = 50.0
    frame2 = r.render(values, "title", "caption")[..., :3]
    assert tuple(frame2[_interior(assets, FIRST_COUNTRY + usa)]) == tuple(colours[1])


def test_borders_are_blended_and_title_changes(setup):
    c, style, scale, assets = setup
    r = FrameRenderer(assets, scale, style)
    values = np.full(len(c), 500.0)
    f1 = r.render(values, "Title 2020").copy()
    f2 = r.render(values, "Title 2021").copy()
    tb = assets.title_box
    assert not np.array_equal(f1[tb[1]:tb[3]], f2[tb[1]:tb[3]])
    assert np.array_equal(f1[tb[3]:], f2[tb[3]:])
    # Some border pixels over countries are a mix of border (white) and fill colour.
    px = f1.reshape(-1, 4)[assets.blend_idx, :3].astype(int)
    fill = sample_cmap("Blues", 3)[2].astype(int)
    assert assets.blend_idx.size > 500
    assert ((px > fill).all(axis=1) & (px < 255).any(axis=1)).mean() > 0.5


def test_assets_round_trip(tmp_path, setup):
    _, _, _, assets = setup
    assets.save(tmp_path / "a.npz")
    back = RenderAssets.load(tmp_path / "a.npz")
    assert np.array_equal(back.labels, assets.labels)
    assert back.title_box == assets.title_box and back.font_path == assets.font_path


def test_frames_after_the_first_equal_a_fresh_full_render(setup):
    """Only changed countries are redrawn after frame one: the result must not drift."""
    c, style, scale, assets = setup
    r = FrameRenderer(assets, scale, style)
    rng = np.random.default_rng(3)
    values = rng.uniform(0, 1000, len(c))
    for step in range(12):
        # A few countries change class each step, now and then none or all of them.
        k = [3, 0, len(c)][step % 3] if step % 4 == 0 else 5
        values[rng.choice(len(c), k, replace=False)] = rng.uniform(0, 1000, k)
        if step == 7:
            values[:10] = np.nan
        title = "Title " + "x" * (20 - step)  # shorter text each step: old text must go
        got = r.render(values, title, f"caption {step}").copy()
        fresh = FrameRenderer(assets, scale, style).render(values, title, f"caption {step}")
        assert np.array_equal(got, fresh), f"step {step}"
    # Independent check of one country's interior against the scale's colour.
    usa = c.index_of("USA")
    values[usa] = 5.0
    frame = r.render(values, "t", "c")[..., :3]
    assert tuple(frame[_interior(assets, FIRST_COUNTRY + usa)]) == tuple(sample_cmap("Blues", 3)[0])
