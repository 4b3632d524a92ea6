"""docker-compose.yaml, deploy/topology.yaml and scripts/celery_local.py describe one deployment.

docker-compose validates the compose file (schema, unknown keys, undefined services) and
resolves it; these tests then compare the resolved services, commands, queues, environment
names and volumes with the topology file the local script runs from.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from framecast.catalog import DEFAULT_MODELS_FILE, load_models

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "framecast.env.example"

# Service-specific additions to the shared Airflow environment, each for a documented reason.
SERVICE_EXTRA_ENV = {
    "scheduler": {"AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"},  # its /health endpoint
    # written into the login file once; the superuser URL that creates the database roles
    "airflow-init": {"FRAMECAST_ADMIN_PASSWORD", "FRAMECAST_DB_ADMIN_URL"},
}
PUBLISH_CONN = "AIRFLOW_CONN_FRAMECAST_PUBLISH_DEFAULT"


def airflow_services(topology) -> list[str]:
    return [*topology.components, topology.init]


def conn_vars() -> set[str]:
    return {"AIRFLOW_CONN_" + m.conn_id.upper() for m in load_models(DEFAULT_MODELS_FILE).values()}


def test_compose_file_validates(compose):
    proc = compose("config", "-q")
    assert proc.returncode == 0, proc.stderr


def test_compose_refuses_to_start_without_secrets(tmp_path, compose):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("POSTGRES_", "FRAMECAST_"))}
    proc = compose("config", "-q", env_file=empty, env=env)
    assert proc.returncode != 0
    assert re.search(r"set (POSTGRES_PASSWORD|FRAMECAST_\w+) in \.env", proc.stderr), proc.stderr


def test_services_are_the_topology(compose_config, topology):
    assert set(compose_config["services"]) == {
        *topology.components, *topology.infrastructure, topology.init}
    assert set(compose_config["volumes"]) >= set(topology.volumes)


def test_commands_and_queues_match(compose_config, topology, celery_local):
    services = compose_config["services"]
    for name, comp in topology.components.items():
        cmd = services[name]["command"]
        assert cmd[:1 + len(comp.command)] == ["airflow", *comp.command], name
        if comp.is_worker:
            queues = ",".join(topology.queues[q] for q in comp.queues)
            assert cmd[1 + len(comp.command):] == ["--queues", queues], name
            # the local script starts the same command, with its per-run queue names
            local = celery_local.worker_args(comp, topology.queues, "h", 1)
            assert local[:len(cmd) - 1] == cmd[1:], name
        else:
            assert cmd == ["airflow", *comp.command], name
    assert services[topology.init]["command"] == ["/opt/framecast/deploy/init.sh"]
    # both kinds of worker consume the render queue; only `worker` consumes the default queue
    assert {n for n, c in topology.components.items() if "render" in c.queues} == {
        "worker", "worker-render"}


def test_workers_scale_out(compose_config, topology):
    services = compose_config["services"]
    for name, comp in topology.components.items():
        svc = services[name]
        assert "healthcheck" in svc, name
        if comp.is_worker:
            # --scale needs replicas that do not clash: no fixed name, no published port
            assert "container_name" not in svc and "ports" not in svc, name
            assert "hostname" not in svc, name
            assert svc["depends_on"]["airflow-init"]["condition"] == (
                "service_completed_successfully")
    for name in topology.infrastructure:
        assert "healthcheck" in services[name], name


def test_environment_names_match_topology(compose_config, topology):
    services = compose_config["services"]
    shared = set(topology.env) | set(topology.env_compose_only) | conn_vars() | {PUBLISH_CONN}
    for name in airflow_services(topology):
        names = set(services[name]["environment"])
        expected = shared | SERVICE_EXTRA_ENV.get(name, set())
        if topology.components.get(name) and topology.components[name].is_worker:
            expected -= set(topology.env_not_on_workers)
        assert names == expected, name
    assert not set(topology.env) & set(topology.env_local_only)


def test_environment_values_agree_with_topology(compose_config, topology, celery_local):
    import json as _json

    env = compose_config["services"]["worker"]["environment"]
    pools = topology.pools()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == topology.queues["default"]
    assert env["FRAMECAST_RENDER_QUEUE"] == topology.queues["render"]
    assert env["FRAMECAST_RENDER_POOL"] in pools
    for spec in load_models(DEFAULT_MODELS_FILE).values():
        assert spec.download_pool in pools
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    assert env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] == "framecast_hostname.worker_hostname"
    # the render workers' concurrency is their own; everything else is shared
    render_env = compose_config["services"]["worker-render"]["environment"]
    assert {k for k in env if env[k] != render_env[k]} == {"AIRFLOW__CELERY__WORKER_CONCURRENCY"}
    assert _json.loads(topology.pools_file.read_text()) == pools


def _mount(v) -> tuple[str, str]:
    """(source, target) of a volume entry, short ("src:dst[:mode]") or long syntax."""
    if isinstance(v, dict):
        return v["source"], v["target"]
    src, dst = v.split(":")[:2]
    return src, dst


def test_volumes_mounted_where_the_env_says(compose_config, topology):
    services = compose_config["services"]
    for name in airflow_services(topology):
        svc = services[name]
        mounts = dict(_mount(v) for v in svc["volumes"])
        for vol, spec in topology.volumes.items():
            assert mounts.get(vol) == spec["path"], (name, vol)
            assert svc["environment"][spec["env"]] == spec["path"], (name, vol)


def test_local_script_environment_matches_topology(tmp_path, topology, celery_local):
    models = celery_local.write_models_file(tmp_path / "models.yaml", steps=[0, 1],
                                            chunk_size=1, products=["t2m_mslp"],
                                            regions=["europe"])
    cluster = celery_local.LocalCluster(tmp_path, "http://127.0.0.1:1", models)
    own = cluster.own_env()
    spec = load_models(models)["icon-eu"]
    assert set(own) == (set(topology.env) | set(topology.env_local_only)
                        | {"AIRFLOW_CONN_" + spec.conn_id.upper()})
    for vol, v in topology.volumes.items():
        assert own[v["env"]] == str(tmp_path / vol)
    assert own["AIRFLOW__OPERATORS__DEFAULT_QUEUE"].endswith("." + topology.queues["default"])
    assert own["FRAMECAST_RENDER_QUEUE"].endswith("." + topology.queues["render"])
    assert own["FRAMECAST_RENDER_POOL"] in topology.pools()
    assert own["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert own["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert own["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + own[
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    # one process per worker component, named after it
    assert {c.name for c in cluster.workers.values()} == {
        n for n, c in topology.components.items() if c.is_worker}
    # every component of one cluster shares the same secrets
    assert cluster.own_env()["AIRFLOW__API_AUTH__JWT_SECRET"] == own[
        "AIRFLOW__API_AUTH__JWT_SECRET"]


def test_compose_connections_point_at_the_catalog_servers(compose_config, tmp_path):
    """The default connection URIs resolve (as Airflow parses them) to each model's server."""
    env = compose_config["services"]["worker"]["environment"]
    specs = load_models(DEFAULT_MODELS_FILE)
    uris = {m.conn_id: env["AIRFLOW_CONN_" + m.conn_id.upper()] for m in specs.values()}
    code = (
        "import json, sys\n"
        "from airflow.models.connection import Connection\n"
        "from framecast_airflow.hooks import base_url_from_connection\n"
        "out = {}\n"
        "for cid, uri in json.loads(sys.argv[1]).items():\n"
        "    c = Connection(conn_id=cid, uri=uri)\n"
        "    out[cid] = base_url_from_connection(c.host, c.port, c.schema, c.extra_dejson)\n"
        "print(json.dumps(out))\n"
    )
    penv = {**os.environ, "AIRFLOW_HOME": str(tmp_path),
            "PYTHONPATH": str(ROOT / "plugins")}
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(uris)], env=penv,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {m.conn_id: m.default_base_url for m in specs.values()}


def test_env_example_sets_every_mandatory_variable():
    compose_text = (ROOT / "docker-compose.yaml").read_text()
    mandatory = set(re.findall(r"\$\{(\w+):\?", compose_text))
    example = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
               if line and not line.startswith("#")}
    assert mandatory and mandatory <= example


def test_dockerfile_copies_existing_paths_and_installs_pinned_requirements():
    text = (ROOT / "Dockerfile").read_text()
    sources = [src for line in text.splitlines() if line.startswith("COPY ")
               for src in line.split()[1:-1]]
    assert sources
    for src in sources:
        if "[" in src:  # a wildcard: an optional staged folder (var/natural-earth)
            continue
        assert (ROOT / src).exists(), src
    assert "pip install -r requirements.txt" in text
    assert "pip install --no-deps ." in text
    assert "preseed_natural_earth.py" in text
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert not ignored & {"include", "dags", "plugins", "deploy", "requirements.txt"}


def test_shell_scripts_parse():
    for script in ("deploy/init.sh", "deploy/entrypoint.sh", "deploy/local-images.sh",
                   "deploy/images/postgres/docker-entrypoint.sh"):
        proc = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
        assert proc.returncode == 0, (script, proc.stderr)
        assert os.access(ROOT / script, os.X_OK), script


def test_pools_file_is_what_airflow_pools_import_accepts(topology):
    pools = topology.pools()
    for name, p in pools.items():
        assert isinstance(p["slots"], int) and p["slots"] > 0, name
        assert p["description"], name
