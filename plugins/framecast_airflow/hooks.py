"""The upstream hook: owns the connection to a model's download server and its I/O.

Like the provider hooks, it turns an Airflow Connection into something the core can use (a base
URL) and wraps the core transfer functions, so DAG code never builds URLs or opens sockets. The
connection is http-typed: ``host`` (optionally with scheme), ``port``, ``schema`` as the URL
scheme and an optional extra ``base_path``, e.g.
``AIRFLOW_CONN_FRAMECAST_UPSTREAM_ICON_EU='http://127.0.0.1:8080/?base_path=/weather/nwp/icon-eu/grib'``
or a JSON connection. When the connection is not defined the model's ``default_base_url`` (the
public DWD/NOAA server) is used, so a fresh deployment works without configuration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from framecast.catalog import ModelSpec, RemoteFile
from framecast.errors import SpecError
from framecast.fetch import FetchResult, fetch_files, present_prefix


def base_url_from_connection(host: str, port: int | None, schema: str | None,
                             extra: dict) -> str:
    """Base URL from connection fields (pure; an explicit ``base_url`` extra wins)."""
    if extra.get("base_url"):
        return str(extra["base_url"]).rstrip("/")
    if not host:
        raise SpecError("upstream connection has no host")
    if "://" in host:
        url = host.rstrip("/")
    else:
        # https unless the connection says otherwise (a mirror on a private network)
        scheme = schema if schema in ("http", "https") else "https"
        url = f"{scheme}://{host}" + (f":{port}" if port else "")
    path = str(extra.get("base_path", "")).strip("/")
    return url + (f"/{path}" if path else "")


class FramecastUpstreamHook(BaseHook):
    """Downloads and existence checks against one model's upstream server."""

    conn_name_attr = "upstream_conn_id"
    default_conn_name = "framecast_upstream_icon_eu"
    conn_type = "http"
    hook_name = "framecast upstream (HTTP)"

    def __init__(self, spec: ModelSpec, upstream_conn_id: str | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.upstream_conn_id = upstream_conn_id or spec.conn_id
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            try:
                conn = self.get_connection(self.upstream_conn_id)
            except AirflowNotFoundException:
                if not self.spec.default_base_url:
                    raise SpecError(
                        f"connection {self.upstream_conn_id!r} is not defined and model "
                        f"{self.spec.name!r} has no default_base_url"
                    ) from None
                self.log.info("connection %s not defined; using %s", self.upstream_conn_id,
                              self.spec.default_base_url)
                self._base_url = self.spec.default_base_url
            else:
                self._base_url = base_url_from_connection(
                    conn.host or "", conn.port, conn.schema, conn.extra_dejson
                )
        return self._base_url

    def download(self, files: Iterable[RemoteFile], dest_root: Path) -> list[FetchResult]:
        """Fetch ``files`` into ``dest_root`` (skipping valid ones); FetchError names the URL."""
        return fetch_files(self.base_url, files, dest_root, http=self.spec.http)

    def present(self, files: Sequence[RemoteFile]) -> int:
        """How many of ``files``, in order, the server has before the first it has not (one
        HEAD per file up to there: what a waiting sensor needs, see ``present_prefix``)."""
        return present_prefix(self.base_url, files, timeout=self.spec.http.timeout)
