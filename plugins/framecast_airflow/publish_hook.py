"""Airflow side of publishing: pick the publish target from an Airflow Connection.

Operators keep credentials where Airflow keeps them (connections, secrets backends) and a DAG
task only names the connection. The connection's type selects the target:

- ``sftp`` / ``ssh``: the SFTP provider's :class:`SFTPHook` opens the connection (paramiko;
  key file, private key, host key, ``no_host_key_check`` extras all work as documented by the
  provider). Each worker and each reconnect gets a fresh hook, so a dropped connection is
  reopened with the same settings.
- ``ftp``: plain FTP; ``ftps``: FTP with explicit TLS (extras ``ca_file``, ``verify``).
- ``fs`` / ``file`` / ``local``: a directory (extra ``path``, else the host field).

The remote root folder comes from the extra ``root`` (else the schema field). Everything else
(what to upload, in which order, retries, manifest, latest pointer) is framecast's core, so the
same publishing runs from the CLI without Airflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook

from framecast.errors import PublishError
from framecast.publish import (
    FtpTarget,
    LocalTarget,
    PublishReport,
    PublishTarget,
    SftpTarget,
    publish_product,
    publish_run,
    tls_context,
)

SFTP_TYPES = ("sftp", "ssh")
FTP_TYPES = ("ftp", "ftps")
LOCAL_TYPES = ("fs", "file", "local")


TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def _flag(value: Any, default: bool, name: str = "flag", where: str = "connection") -> bool:
    """A yes/no extra. Anything that is not clearly yes or no is refused, never guessed: a
    misspelt ``verify`` must not switch certificate checks off (fail closed)."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise PublishError(f"{where}: extra {name!r} must be true or false, got {value!r}")


class FramecastPublishHook(BaseHook):
    """Builds a framecast :class:`~framecast.publish.PublishTarget` from an Airflow Connection."""

    conn_name_attr = "publish_conn_id"
    default_conn_name = "framecast_publish_default"
    hook_name = "framecast publish target"

    def __init__(self, publish_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.publish_conn_id = publish_conn_id

    def get_conn(self) -> PublishTarget:
        return self.get_target()

    def get_target(self) -> PublishTarget:
        """The target the connection describes (not yet connected)."""
        conn = self.get_connection(self.publish_conn_id)
        kind = (conn.conn_type or "").lower()
        extra = conn.extra_dejson or {}
        root = str(extra.get("root") or conn.schema or "")
        where = f"Airflow connection {self.publish_conn_id!r}"
        if kind in SFTP_TYPES:
            conn_id = self.publish_conn_id

            def open_client() -> Any:
                from airflow.providers.sftp.hooks.sftp import SFTPHook

                # the publisher retries with backoff itself; one attempt per hook call
                return SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=1).get_conn()

            target = SftpTarget(client_factory=open_client, root=root)
            target.description = f"sftp://{conn.login}@{conn.host}:{conn.port or 22}/{root.lstrip('/')}"
            return target
        if kind in FTP_TYPES:
            tls = kind == "ftps" or _flag(extra.get("tls"), False, "tls", where)
            ctx = None
            if tls:
                ctx = tls_context(extra.get("ca_file"),
                                  verify=_flag(extra.get("verify"), True, "verify", where))
            if not conn.host:
                raise PublishError(f"{where}: no host set")
            return FtpTarget(
                conn.host, int(conn.port or 21), user=conn.login or "anonymous",
                password=conn.password or "", root=root, tls=tls, ssl_context=ctx,
                timeout=float(extra.get("timeout", 30)),
                passive=_flag(extra.get("passive"), True, "passive", where),
            )
        if kind in LOCAL_TYPES:
            path = extra.get("path") or conn.host or root
            if not path:
                raise PublishError(f"{where}: set the extra 'path' to the publish folder")
            return LocalTarget(Path(path))
        raise PublishError(
            f"{where}: connection type {conn.conn_type!r} cannot be a publish target "
            f"(use one of {', '.join(SFTP_TYPES + FTP_TYPES + LOCAL_TYPES)})"
        )


def publish_from_connection(
    conn_id: str,
    run_path: str | Path,
    *,
    model: str,
    run_time: datetime,
    products: Iterable[str] | None = None,
    final: bool = True,
    retention: int | None = None,
    workers: int = 4,
    retries: int = 5,
    backoff: float = 2.0,
    video: bool = False,
) -> dict[str, Any]:
    """Publish a rendered run to the target of Airflow connection ``conn_id``.

    ``final=True`` publishes the run (or just ``products``) as complete and switches
    ``latest``; ``final=False`` publishes ``products`` early, leaving ``latest`` alone.
    ``video=True`` encodes MP4 + GIF per product/region first. Returns a JSON-serialisable
    summary (pushed to XCom by a @task). Errors are framecast's own (PublishAuthError for
    rejected credentials, PublishError for an unreachable server), so Airflow's task retries
    resume the upload where it stopped.
    """
    run_path = Path(run_path)
    if video:
        from framecast.animate import animate_run

        animate_run(run_path, products=products)
    target = FramecastPublishHook(publish_conn_id=conn_id).get_target()
    report: PublishReport
    if final:
        report = publish_run(run_path, target, model=model, run_time=run_time, products=products,
                             retention=retention, workers=workers, retries=retries,
                             backoff=backoff)
    else:
        if not products:
            raise PublishError("publish_from_connection(final=False) needs the products to publish")
        report = publish_product(run_path, target, list(products), model=model,
                                 run_time=run_time, workers=workers, retries=retries,
                                 backoff=backoff)
    return {
        "model": report.model,
        "run_id": report.run_id,
        "target": report.target,
        "complete": report.complete,
        "products": report.products,
        "uploaded": len(report.uploaded),
        "skipped": len(report.skipped),
        "bytes": report.bytes_uploaded,
        "retries": report.retries,
        "seconds": round(report.seconds, 3),
        "latest": report.latest,
        "removed_runs": report.removed_runs,
    }
