"""Say at start-up, not hours later, when a model's upstream server cannot be reached.

Run by deploy/init.sh (the compose service airflow-init). For every model of the catalog in use
(``FRAMECAST_MODELS_FILE`` or the shipped one) it resolves the upstream connection the way the
DAG's tasks do (FramecastUpstreamHook: ``AIRFLOW_CONN_<ID>``, else the model's default URL) and
sends one request to it. An unreachable server is reported with the model, the connection and
the URL; it is a warning, not a failure: upstream servers go down and come back, and the model
DAGs' sensors wait for them (and fail at their deadline naming the missing files).

    python deploy/check_upstreams.py [--timeout SECONDS]

Exit status: 0 (also when a server is unreachable), 2 when the catalog or a connection is
invalid.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def check(base_url: str, timeout: float) -> str | None:
    """None when the server answers at all (any HTTP status), else the reason it did not."""
    import requests

    try:
        requests.head(base_url.rstrip("/") + "/", timeout=timeout, allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per server")
    args = p.parse_args(argv)
    plugins = os.environ.get("AIRFLOW__CORE__PLUGINS_FOLDER")
    if plugins and plugins not in sys.path:
        sys.path.insert(0, plugins)
    from framecast.catalog import load_models
    from framecast.errors import FramecastError
    from framecast_airflow.hooks import FramecastUpstreamHook

    try:
        models = load_models()
        urls = {name: (spec.conn_id, FramecastUpstreamHook(spec).base_url)
                for name, spec in models.items()}
    except (FramecastError, ValueError, KeyError) as exc:
        print(f"init: upstream configuration invalid: {exc}", file=sys.stderr)
        return 2
    for name, (conn_id, url) in sorted(urls.items()):
        reason = check(url, args.timeout)
        if reason is None:
            print(f"init: upstream of {name} reachable: {url}")
        else:
            print(f"init: WARNING: upstream of {name} (connection {conn_id}) is not reachable "
                  f"at {url}: {reason}. Runs of {name} will wait for it in their sensor; "
                  f"check FRAMECAST_UPSTREAM_* in .env and the network.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    raise SystemExit(main())
