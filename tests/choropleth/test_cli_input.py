"""Bad input through the command line: one clear error each, no traceback, no video written;
``check`` lists every problem of every spec at once; ``--url`` renders any spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

FRAMECAST = str(Path(sys.executable).with_name("framecast"))

SPEC = """
name: gdp
source: {{{source}}}
interval: year
start: 1960-01-01
end: 1964-01-01
size: [400, 240]
style: {{breaks: [20, 40, 60, 80]}}
"""


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([FRAMECAST, "choropleth", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def db(tmp_path_factory, realdata):
    path = tmp_path_factory.mktemp("cli") / "wb.sqlite"
    realdata.load(f"sqlite:///{path}", "wb", "epoch_s", "iso_a2")
    return f"sqlite:///{path}"


def _spec(tmp_path: Path, source: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(SPEC.format(source=source))
    return p


def test_url_renders_a_spec_without_connection_or_url(db, tmp_path):
    spec = _spec(tmp_path, "table: wb, time_column: t, metric: gdp")
    r = _run("render", str(spec), "--url", db, "--out", str(tmp_path / "o"), "--no-progress",
             "--json")
    assert r.returncode == 0, r.stderr
    assert '"code_type": "iso_a2"' in r.stdout and '"time_kind": "epoch_s"' in r.stdout
    assert (tmp_path / "o" / "gdp.mp4").stat().st_size > 0
    r = _run("render", str(spec), "--out", str(tmp_path / "o2"))
    assert r.returncode == 2 and "pass --url" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("source, code, message", [
    ("table: wb, time_column: t, metric: gdp, code_type: iso3", 2,
     "source.code_type: 'iso3' is not one of ('detect', 'iso_a2', 'iso_a3', 'iso_numeric', "
     "'fips', 'name')"),
    ("table: wb, time_column: t, metric: gdpx", 7,
     "source.metric: column(s) ['gdpx'] not in wb"),
    ("table: wb, time_column: label, metric: gdp", 3,
     "source.time_column: wb: time column 'label' holds text values such as"),
    ("table: wb, time_column: t, metric: gdp, metrc: pop", 2,
     "source: unknown key(s) ['metrc']; known keys there: ['aggregate', 'chunk_rows', "
     "'code_column', 'code_type', 'connection', 'frames_per_query', 'metric', 'metrics', "
     "'query', 'table', 'time_column', 'time_unit', 'url']"),
])
def test_bad_input_one_clear_error_no_video(db, tmp_path, source, code, message):
    spec = _spec(tmp_path, source)
    out = tmp_path / "o"
    r = _run("render", str(spec), "--url", db, "--out", str(out), "--no-progress")
    assert r.returncode == code, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "__init__()" not in r.stderr
    assert len([ln for ln in r.stderr.splitlines() if ln.strip()]) == 1, r.stderr
    assert not list(out.rglob("*.mp4")) and not list(out.rglob("*.part"))


def test_check_reports_every_problem_at_once(tmp_path):
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "a.yaml").write_text(
        "name: a\nsource: {table: t, metrc: x, code_type: iso3}\nstart: 2020-01-05\n"
        "end: 2020-01-01\nsize: [401, 300]\ngeography: {projection: gall, levle: admin1}\n"
        "colour: red\n")
    (folder / "b.yaml").write_text("name: b\nsource: {table: t}\nstart: 2020-01-01\n"
                                   "end: 2020-01-03\nstyle: {cmap: nope}\n")
    (folder / "c.yaml").write_text("name: c\nsource: {table: t, metrics: [x, y]}\n"
                                   "start: 2020-01-01\nend: 2020-01-03\n")
    r = _run("check", str(folder))
    assert r.returncode == 2, r.stderr
    err = r.stderr
    for part in ("a.yaml: 7 problems", "top level: unknown key(s) ['colour']",
                 "geography: unknown key(s) ['levle']", "source: unknown key(s) ['metrc']",
                 "source.code_type: 'iso3'", "empty date range", "size [401, 300] must be even",
                 "geography.projection 'gall'", "b.yaml: style.cmap: 'nope'",
                 "2 of 3 spec(s) have problems"):
        assert part in err, (part, err)
    assert "ok  " in r.stdout and "c.yaml: c, 3 frames, metrics ['x', 'y']" in r.stdout
    assert "Traceback" not in err
