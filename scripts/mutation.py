#!/usr/bin/env python3
"""Mutation score of the modules whose bugs would publish wrong or broken charts (mutmut).

    python scripts/mutation.py [NAME ...]      # `make mutation`; NAME from MODULES below
    python scripts/mutation.py --sample 7 NAME  # only mutants numbered ...7 (a 10% sample)
    python scripts/mutation.py --jobs 2 NAME    # two mutants at a time
    python scripts/mutation.py --mutants FILE NAME  # only the mutants named in FILE

Each module runs on its own: a copy of the package and the tests under
``var/mutation/<name>/`` (mutmut mutates ``src/``; the package lives in ``include/`` here), with
a ``[tool.mutmut]`` section that mutates only that module and selects only its tests; mutmut
then runs, for every mutant, just the tests that call the mutated function, in ``--jobs``
processes (default 1). The sample model runs the download tests serve are generated once per
target (``FRAMECAST_TEST_SAMPLE_RUNS``), not once per mutant. Printed per module: killed / total
mutants and the score; the exit code is 1 when a module scores below ``THRESHOLD``. Surviving
mutants are listed with ``--show-survivors`` (their diffs: ``cd var/mutation/<name> && mutmut
show <mutant>``). ``--mutants FILE`` runs only the mutants named in FILE (one a line, e.g. the
survivors a full run listed with ``--show-survivors``) on a fresh staging of the current code
and tests: when tests were only added, a mutant killed before stays killed, so the full run's
killed count plus the re-run's gives the current score without another full run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "var" / "mutation"
THRESHOLD = 0.80
# Counted as killed: a test failed, or the mutant hung (timeout) or crashed the interpreter.
KILLED = {"killed", "timeout", "segfault", "caught by type check"}


@dataclass(frozen=True)
class Target:
    name: str
    modules: tuple[str, ...]  # paths under include/
    tests: tuple[str, ...]  # pytest selection (paths and -k/-m options)


MODULES = (
    # plus the linear sampler's accuracy against an analytic field; the placement and isobar
    # tests there render or contour whole maps (seconds per mutant)
    Target("sampling", ("framecast/render/sampling.py",),
           ("tests/core/test_sampling.py", "tests/core/test_placement_and_smoothness.py", "-k",
            "not placement and not isobars")),
    # the increment and latest-order tests on the local folder only (their FTP/SFTP variants
    # start servers per test; the manifest logic they check is the same)
    Target("publish", ("framecast/publish/manifest.py", "framecast/publish/publisher.py",
                       "framecast/publish/local.py"),
           ("tests/publish/test_local.py", "tests/publish/test_manifest.py",
            "tests/publish/test_increments.py", "tests/publish/test_latest_order.py",
            "-k", "not ftp")),
    # the whole-run ICON-EU download test (about 12 s, full-size fields) is left out: the
    # same paths are covered by tiny real GRIB messages in test_fetch_units.py
    Target("fetch", ("framecast/fetch.py",),
           ("tests/dags/test_fetch_units.py", "tests/dags/test_fetch.py", "-k",
            "not test_dwd_files_are_decompressed and not test_file_of_another_step")),
    Target("choropleth_source", ("framecast/choropleth/source.py",),
           ("tests/choropleth/test_source.py", "tests/choropleth/test_source_units.py",
            "tests/choropleth/test_source_guard.py")),
)


def _toml_list(items) -> str:
    return "[" + ", ".join(f'"{x}"' for x in items) + "]"


def stage(t: Target) -> Path:
    """A fresh copy of the package (as src/) and the tests with this target's mutmut config."""
    d = WORK / t.name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    shutil.copytree(REPO / "include", d / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "tests", d / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    py = (REPO / "pyproject.toml").read_text()
    py += (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"only_mutate = {_toml_list('src/' + m for m in t.modules)}\n"
        f"pytest_add_cli_args_test_selection = {_toml_list(t.tests)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-p", "no:xdist", "-q"]\n'
        "use_git_change_detection = false\n"
    )
    (d / "pyproject.toml").write_text(py)
    return d


def results(d: Path) -> dict[str, str]:
    proc = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "results", "--all",
                           "true"], cwd=d, capture_output=True, text=True, timeout=600)
    out = {}
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*(\S+):\s+(.+?)\s*$", line)
        if m and "__mutmut_" in m.group(1):
            out[m.group(1)] = m.group(2)
    return out


def run(t: Target, show: bool, sample: str = "", jobs: int = 1,
        only: tuple[str, ...] = ()) -> tuple[int, int, float]:
    d = stage(t)
    env = dict(os.environ)
    env.setdefault("CARTOPY_DATA_DIR", str(REPO.parent / "shared" / "cartopy-data"))
    env.setdefault("MPLBACKEND", "Agg")
    env["FRAMECAST_TEST_SAMPLE_RUNS"] = str(d / "sample-runs")
    t0 = time.monotonic()
    # a sample: every mutant whose number ends in one of the digits (spread over functions)
    names = [f"*__mutmut_*{digit}" for digit in sample] + list(only)
    proc = subprocess.run([str(Path(sys.executable).parent / "mutmut"), "run",
                           "--max-children", str(jobs), *names], cwd=d, env=env,
                          capture_output=True, text=True)
    took = time.monotonic() - t0
    (d / "mutmut-run.log").write_text(proc.stdout + proc.stderr)
    res = {k: v for k, v in results(d).items() if v != "not checked"}
    if proc.returncode != 0 or not res:
        print(f"{t.name}: mutmut failed ({proc.returncode}); see {d / 'mutmut-run.log'}\n"
              f"{(proc.stdout + proc.stderr)[-3000:]}", file=sys.stderr)
        return 0, 0, took
    killed = sum(s in KILLED for s in res.values())
    if len(t.modules) > 1:  # the score of each file of the target as well
        for mod in t.modules:
            name = mod.removesuffix(".py").replace("/", ".")
            mine = [s for k, s in res.items() if k.rsplit(".", 1)[0] == name]
            if mine:
                k = sum(s in KILLED for s in mine)
                print(f"  {name:34s} {k:4d}/{len(mine):<4d} killed  {k / len(mine):6.1%}")
    if show:
        for name, status in sorted(res.items()):
            if status not in KILLED:
                print(f"    {status:12s} {name}")
    return killed, len(res), took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="targets to run (default: all)")
    ap.add_argument("--show-survivors", action="store_true")
    ap.add_argument("--sample", default="", metavar="DIGITS",
                    help="run only mutants whose number ends in one of DIGITS (e.g. 7 = 10%%)")
    ap.add_argument("--jobs", type=int, default=1, metavar="N",
                    help="mutants tested at a time (mutmut --max-children; default 1)")
    ap.add_argument("--mutants", type=Path, metavar="FILE",
                    help="run only the mutants named in FILE, one a line")
    a = ap.parse_args()
    only: tuple[str, ...] = ()
    if a.mutants:
        only = tuple(w for line in a.mutants.read_text().splitlines()
                     for w in line.split()[-1:] if "__mutmut_" in w)
        if not only:
            ap.error(f"{a.mutants}: no mutant names in it")
    chosen = [t for t in MODULES if not a.names or t.name in a.names]
    if not chosen:
        ap.error(f"unknown target(s) {a.names}; known: {[t.name for t in MODULES]}")
    load = os.getloadavg()
    what = (f"{len(only)} named mutants" if only else
            f"sample: mutants numbered *{'|'.join(a.sample)}" if a.sample else "all mutants")
    print(f"mutmut, {a.jobs} process(es), {what}; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    ok = True
    rows = []
    for t in chosen:
        killed, total, took = run(t, a.show_survivors, a.sample, a.jobs, only)
        score = killed / total if total else 0.0
        ok &= score >= THRESHOLD
        rows.append((t, killed, total, score, took))
        print(f"{t.name:18s} {killed:4d}/{total:<4d} killed  {score:6.1%}  {took / 60:5.1f} min  "
              f"({', '.join(t.modules)})", flush=True)
    print(f"threshold {THRESHOLD:.0%}: {'all met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
