"""House style as data: palette files, named palettes, site branding, products added by YAML.

Expected colours come from the palette files' own numbers (read here with plain string
handling), so the parser is checked against the file, not against itself.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from framecast.errors import SpecError
from framecast.products import CONFIG_DIR, load_catalog
from framecast.render.frame import LAND, OCEAN, MapFrame
from framecast.render.palettes import read_palette
from framecast.style import load_style

RUN = datetime(2026, 1, 14, 0, tzinfo=UTC)


def _file_rows(path: Path) -> list[list[str]]:
    rows = []
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            rows.append(line.split())
    return rows


def test_rgba_and_cpt_files_give_their_colours_in_order(tmp_path):
    rgba = tmp_path / "p.rgba"
    rgba.write_text("# a comment\nncolors=3\n255 0 0\n0 128 255 128\n0.5 0.5 0.5\n")
    p = read_palette(rgba)
    assert p.colors[0] == (1.0, 0.0, 0.0, 1.0)
    assert p.colors[1] == pytest.approx((0.0, 128 / 255, 1.0, 128 / 255))
    assert p.colors[2] == (0.5, 0.5, 0.5, 1.0)
    cpt = tmp_path / "p.cpt"
    cpt.write_text("0 255 255 255 1 255 255 255\n1 0/0/255 5 0/0/255\n5 red 10 red\n"
                   "B 10 10 10\nF 250 0 250\nN 128 128 128\n")
    c = read_palette(cpt)
    assert c.levels == (0.0, 1.0, 5.0, 10.0)
    assert c.colors == ((1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 1.0, 1.0), (1.0, 0.0, 0.0, 1.0))
    cm = c.cmap(3, "both")  # below, three bins, above
    assert cm.N == 5 and tuple(cm(0)) == pytest.approx((10 / 255, 10 / 255, 10 / 255, 1.0))
    assert tuple(cm(4)) == pytest.approx((250 / 255, 0.0, 250 / 255, 1.0))
    bad = tmp_path / "bad.cpt"
    bad.write_text("0 red 1 red\n2 blue 3 blue\n")
    with pytest.raises(SpecError, match=r"bad.cpt:2: interval starts at 2.0.*contiguous"):
        read_palette(bad)
    with pytest.raises(SpecError, match="unknown palette format '.pal'"):
        read_palette(tmp_path / "x.pal")


def test_shipped_named_palettes_match_their_files():
    style = load_style()
    for name in ("precipitation", "temperature", "snow", "clouds_sky"):
        assert name in style.palettes
    temp = CONFIG_DIR / "palettes" / "temperature.cpt"
    rows = [r for r in _file_rows(temp) if r[0] not in ("B", "F", "N")]
    pal = style.palette("temperature")
    assert pal.levels[0] == float(rows[0][0]) and pal.levels[-1] == float(rows[-1][4])
    for row, colour in zip(rows, pal.colors, strict=True):
        assert np.allclose(np.array(colour[:3]) * 255, [float(x) for x in row[1:4]])


def test_clouds_as_sky_clear_shows_the_map_overcast_is_grey_never_black():
    rows = _file_rows(CONFIG_DIR / "palettes" / "clouds_sky.rgba")
    values = np.array([[float(x) for x in r] for r in rows])
    assert values[0, 3] == 0  # clear: fully transparent
    assert values[-1, 3] == 255 and np.all(values[:, :3] >= 200)  # overcast opaque light grey
    assert np.all(np.diff(values[:, 3]) > 0)  # more cloud, more opaque
    # Rendered: 2 % cloud shows land and sea, 98 % is the overcast grey over both.
    from framecast.field import Field, Grid

    cat = load_catalog()
    prod = replace(cat.product("low_clouds"), size=(500, 400))
    frame = MapFrame(prod, cat.region("europe"))
    grid = Grid("regular", 29.5 + np.arange(657) * 0.0625, -23.5 + np.arange(1377) * 0.0625)
    lon, lat = np.meshgrid(grid.lons, grid.lats)
    cover = np.where(lon < 0, 2.0, 98.0).astype(np.float32)  # west clear, east overcast
    img = frame.render({"lcc": Field("lcc", "%", cover, grid, RUN, 0, RUN)}, model="icon-eu",
                       run_time=RUN, step=0)

    def at(lon_, lat_):
        r, c = frame.pixel_of(lon_, lat_)
        return np.median(img[r - 2:r + 3, c - 2:c + 3, :3].reshape(-1, 3), axis=0)

    assert np.allclose(at(-15.0, 45.0), [int(OCEAN[i:i + 2], 16) for i in (1, 3, 5)], atol=2)
    assert np.allclose(at(-4.0, 40.0), [int(LAND[i:i + 2], 16) for i in (1, 3, 5)], atol=2)
    assert np.allclose(at(26.0, 52.5), [200, 200, 200], atol=2)  # overcast over land
    assert np.allclose(at(18.0, 35.0), [200, 200, 200], atol=2)  # and over sea


def _branded(tmp_path: Path, corner: str) -> Path:
    logo = tmp_path / "logo.png"
    Image.new("RGBA", (80, 40), (255, 0, 255, 255)).save(logo)  # pure magenta
    style = tmp_path / "style.yaml"
    shutil.copytree(CONFIG_DIR / "palettes", tmp_path / "palettes")
    doc = yaml.safe_load((CONFIG_DIR / "style.yaml").read_text())
    doc["sites"] = {"mysite": {"logo": "logo.png", "logo_height": 20, "logo_corner": corner,
                               "footer": "Wetter Example · {product}", "title_size": 9,
                               "title_template": "{title} | {model} +{step} h"}}
    doc["default_site"] = "mysite"
    style.write_text(yaml.safe_dump(doc))
    return style


@pytest.mark.parametrize("corner", ["top-left", "bottom-right"])
def test_site_logo_footer_and_title_come_from_the_style(tmp_path, corner):
    from framecast.field import Field, Grid

    cat = load_catalog(style=_branded(tmp_path, corner))
    prod = replace(cat.product("t2m_mslp"), size=(600, 480))
    assert prod.site.name == "mysite" and prod.site.footer.startswith("Wetter Example")
    frame = MapFrame(prod, cat.region("europe"))
    grid = Grid("regular", 29.5 + np.arange(657) * 0.0625, -23.5 + np.arange(1377) * 0.0625)
    fields = {n: Field(n, u, np.full(grid.shape, v, np.float32), grid, RUN, 3, RUN)
              for n, u, v in (("t2m", "K", 283.0), ("msl", "Pa", 101300.0))}
    img = frame.render({k: f.to("degC" if k == "t2m" else "hPa") for k, f in fields.items()},
                       model="icon-eu", run_time=RUN, step=3)
    magenta = np.all(img[..., :3] == [255, 0, 255], axis=-1)
    rows, cols = np.nonzero(magenta)
    assert rows.size >= 0.8 * 20 * 40  # the logo, 20 px high (40 px wide), unscaled colours
    assert rows.max() - rows.min() + 1 == 20
    if corner == "top-left":
        assert rows.max() < 40 and cols.max() < 60
    else:
        assert rows.min() > 480 - 40 and cols.min() > 600 - 60
    assert frame._title.get_text() == "2 m temperature (°C) and mean sea level pressure (hPa) " \
                                      "| icon-eu +3 h"
    texts = [t.get_text() for t in frame.fig.texts]
    assert "Wetter Example · t2m_mslp" not in texts  # drawn once into the static underlay
    # ... where its pixels are: the footer corner is not plain white.
    corner_px = img[-12:, -150:, :3] if corner == "top-left" else img[-12:, :150, :3]
    if corner == "top-left":
        assert (corner_px.min(axis=-1) < 200).any()


def test_bad_style_entries_are_named(tmp_path):
    style = tmp_path / "style.yaml"
    style.write_text("sites:\n  s: {logo_corner: middle}\n")
    with pytest.raises(SpecError, match=r"sites.s.logo_corner: expected one of"):
        load_style(style)
    style.write_text("palettes:\n  p: {file: nope.cpt}\n")
    with pytest.raises(SpecError, match=r"palettes.p.file: no such file .*nope.cpt"):
        load_style(style)
    style.write_text("sites:\n  s: {footer: '{model}'}\n")
    with pytest.raises(SpecError, match=r"footer: unknown placeholder"):
        load_style(style)
