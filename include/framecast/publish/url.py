"""Build a publish target from a URL, as the CLI and simple deployments configure it.

``file:///srv/www/charts``, ``ftp://user:pass@host:21/charts``, ``ftps://...`` (explicit TLS),
``sftp://user@host:22/srv/www/charts``. Paths follow curl's conventions: an FTP path is
relative to the login directory (``ftp://host//abs`` is absolute); an SFTP path is absolute
(``sftp://host/~/charts`` is relative to the home directory). Passwords may be given
separately so they need not appear in process listings.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import unquote, urlsplit

from framecast.errors import PublishError
from framecast.publish.ftp import FtpTarget
from framecast.publish.local import LocalTarget
from framecast.publish.sftp import SftpTarget
from framecast.publish.target import PublishTarget

SCHEMES = ("file", "ftp", "ftps", "sftp")


def tls_context(ca_file: str | Path | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """Client TLS context: system CAs, or ``ca_file`` (e.g. a self-signed server cert).

    Only the boolean ``False`` turns verification off; any other non-boolean value (a string
    from a config file) is refused, so a typo fails closed instead of open.
    """
    if verify is not False and verify is not True:
        raise PublishError(f"TLS verify must be true or false, got {verify!r}")
    if not verify:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise PublishError(f"cannot load CA file {ca_file}: {exc}") from exc


def target_from_url(
    url: str,
    *,
    password: str | None = None,
    key_file: str | Path | None = None,
    known_hosts: str | Path | None = None,
    accept_unknown_host: bool = False,
    ca_file: str | Path | None = None,
    verify_tls: bool = True,
    timeout: float = 30.0,
) -> PublishTarget:
    """The target a URL names; raises PublishError naming the URL when it is not usable."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    shown = url.replace(f":{parts.password}@", ":***@") if parts.password else url
    if scheme not in SCHEMES:
        if not parts.scheme and url:
            return LocalTarget(Path(url))
        raise PublishError(f"publish target {shown!r}: scheme must be one of {', '.join(SCHEMES)}")
    path = unquote(parts.path)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise PublishError(f"publish target {shown!r}: file URLs must be local (file:///path)")
        if not path:
            raise PublishError(f"publish target {shown!r}: no directory given")
        return LocalTarget(Path(path))
    if not parts.hostname:
        raise PublishError(f"publish target {shown!r}: no host given")
    try:
        port = parts.port
    except ValueError as exc:
        raise PublishError(f"publish target {shown!r}: bad port ({exc})") from exc
    user = unquote(parts.username) if parts.username else None
    pw = password if password is not None else (unquote(parts.password) if parts.password else None)
    if scheme in ("ftp", "ftps"):
        root = path[1:] if path.startswith("/") else path
        return FtpTarget(
            parts.hostname, port or 21, user=user or "anonymous", password=pw or "",
            root=root, tls=scheme == "ftps",
            ssl_context=tls_context(ca_file, verify=verify_tls) if scheme == "ftps" else None,
            timeout=timeout,
        )
    if path.startswith("/~/"):
        root = path[3:]
    elif path in ("/~", "/", ""):
        root = ""
    else:
        root = path
    return SftpTarget(
        parts.hostname, port or 22, user=user, password=pw, key_file=key_file, root=root,
        known_hosts=known_hosts, accept_unknown_host=accept_unknown_host, timeout=timeout,
    )
