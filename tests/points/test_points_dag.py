"""The ICON-EU DAG makes point forecasts: mapped batches of places, records, published files.

A real ``airflow dags test`` run against the local upstream server, like tests/dags.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from framecast.records import read_records
from framecast.upstream import UpstreamServer
from tests.dags.conftest import AirflowCase
from tests.points.conftest import RUN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
RUN_ID = "2026112300"
STEPS = [0, 3]
PLACES = """
lists:
  test:
    - {name: Hamburg, lat: 53.5507, lon: 9.993, tz: Europe/Berlin}
    - {name: Munich, lat: 48.1374, lon: 11.5755, elevation: 519, tz: Europe/Berlin}
    - {name: Vienna, lat: 48.2085, lon: 16.3721, tz: Europe/Vienna}
models:
  icon-eu: {places: test, batch_size: 2, sounding_steps: [0, 3],
            levels: [1000, 925, 850, 700, 500, 300]}
"""


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    from framecast.sampledata import generate_run
    from tests.points.conftest import point_sample_variables

    out = tmp_path_factory.mktemp("upstream-points")
    generate_run("icon-eu", RUN, STEPS, out, variables=point_sample_variables("icon-eu"),
                 bz2=True)
    return out


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    from framecast_airflow.localenv import LocalAirflow

    af = LocalAirflow(tmp_path_factory.mktemp("airflow-template-points"))
    af.migrate({"framecast_download": 4})
    return af


def test_icon_eu_dag_draws_batches_of_places_and_publishes_them(upstream, template, tmp_path):
    (tmp_path / "places.yaml").write_text(PLACES)  # beside the case's models.yaml
    with UpstreamServer(upstream) as up:
        case = AirflowCase(tmp_path, template, up.url, "icon-eu", steps=STEPS)
        proc = case.run("2026-11-23T00:00:00+00:00")
        assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
        fetched = {r.path.split("/")[1] for r in up.gets(".bz2")}
    assert {"td_2m", "clcl", "ww", "relhum", "t_2m"} <= fetched
    labels = sorted(r["rendered_map_index"] for r in case.states("meteograms"))
    assert labels == ["meteograms/Hamburg..Munich", "meteograms/Vienna"]
    assert {r["state"] for r in case.states()} == {"success"}

    frames = case.data / "frames" / "icon-eu" / RUN_ID
    records = [r for r in read_records(frames) if r.product in ("meteogram", "section",
                                                                 "sounding")]
    assert len(records) == 3 * (1 + 1 + 2)
    assert all(r.render_ms > 0 and r.bytes > 0 for r in records)

    manifest = json.loads((case.publish / "icon-eu" / RUN_ID / "manifest.json").read_text())
    assert sorted(manifest["places"]) == ["hamburg", "munich", "vienna"]
    assert manifest["product_names"] == ["t2m_mslp"]  # places are not map products
    munich = manifest["places"]["munich"]
    assert [s["step"] for s in munich["soundings"]] == [0, 3]
    for key in ("meteogram", "section", "csv", "json"):
        assert (case.publish / "icon-eu" / RUN_ID / munich[key]["file"]).is_file()
    index = json.loads((case.publish / "icon-eu" / RUN_ID / manifest["places_index"])
                       .read_text())
    assert [p["name"] for p in index["places"]] == ["Hamburg", "Munich", "Vienna"]
    img = Image.open(case.publish / "icon-eu" / RUN_ID / munich["meteogram"]["file"])
    assert img.size == (1000, 1250)
    assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 50
