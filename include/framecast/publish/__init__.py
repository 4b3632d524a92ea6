"""Publishing rendered runs to a web server: local folder, FTP, FTPS or SFTP.

Entry points: :func:`publish_run` (whole run, switches ``latest``), :func:`publish_increment`
(the steps of one chunk of a run still arriving), :func:`publish_product`
(early products of a run still rendering), :func:`target_from_url`. See docs/publishing.md.
"""

from __future__ import annotations

from framecast.publish.ftp import FtpTarget
from framecast.publish.local import LocalTarget
from framecast.publish.publisher import (
    PublishReport,
    publish_increment,
    publish_product,
    publish_run,
)
from framecast.publish.sftp import SftpTarget
from framecast.publish.target import PublishTarget, RemoteStat
from framecast.publish.url import target_from_url, tls_context

__all__ = [
    "FtpTarget",
    "LocalTarget",
    "PublishReport",
    "publish_increment",
    "PublishTarget",
    "RemoteStat",
    "SftpTarget",
    "publish_product",
    "publish_run",
    "target_from_url",
    "tls_context",
]
