"""Publish to an FTP server, or FTPS with explicit TLS (``AUTH TLS`` + ``PROT P``), via ftplib.

FTP has no atomic "write file" primitive, but ``RNFR``/``RNTO`` within one directory is a rename
on the server's file system; so every file goes up as a hidden ``.part`` name and is renamed
when the transfer completed. Servers that refuse to rename onto an existing name get a
delete-then-rename fallback (a short window in which the old file is missing, never a
half-written one).
"""

from __future__ import annotations

import contextlib
import ftplib
import posixpath
import ssl
from datetime import UTC, datetime
from pathlib import Path

from framecast.errors import PublishAuthError, PublishError
from framecast.publish.target import RemoteStat, clean_relpath, is_transient, temp_name


def _code(exc: ftplib.Error) -> str:
    return str(exc)[:3]


class FtpTarget:
    """An FTP or FTPS server. ``root`` is relative to the login directory unless it starts
    with ``/``."""

    def __init__(
        self,
        host: str,
        port: int = 21,
        *,
        user: str = "anonymous",
        password: str = "",
        root: str = "",
        tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        passive: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.root = root.rstrip("/") if root not in ("", "/") else root
        self.tls = tls
        self.ssl_context = ssl_context
        self.timeout = timeout
        self.passive = passive
        scheme = "ftps" if tls else "ftp"
        self.description = f"{scheme}://{user}@{host}:{port}/{root.lstrip('/')}"
        self._ftp: ftplib.FTP | None = None
        self._known_dirs: set[str] = set()

    # -- connection -------------------------------------------------------------------------
    def connect(self) -> None:
        if self._ftp is not None:
            return
        ftp: ftplib.FTP
        if self.tls:
            ctx = self.ssl_context or ssl.create_default_context()
            ftp = ftplib.FTP_TLS(context=ctx, timeout=self.timeout)
        else:
            ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(self.host, self.port)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.auth()
            ftp.login(self.user, self.password)
            if isinstance(ftp, ftplib.FTP_TLS):
                ftp.prot_p()
            ftp.set_pasv(self.passive)
            ftp.voidcmd("TYPE I")
        except ftplib.error_perm as exc:
            _quiet_close(ftp)
            if _code(exc) in ("530", "532", "331", "332"):
                raise PublishAuthError(
                    f"{self.description}: login rejected for user {self.user!r} ({exc})"
                ) from exc
            raise PublishError(f"{self.description}: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            _quiet_close(ftp)
            raise PublishAuthError(
                f"{self.description}: TLS certificate not trusted ({exc.verify_message}); "
                "pass the server's CA file"
            ) from exc
        except BaseException:
            _quiet_close(ftp)
            raise
        self._ftp = ftp
        self._known_dirs = set()

    def close(self) -> None:
        ftp, self._ftp = self._ftp, None
        if ftp is not None:
            try:
                # a polite QUIT, but never a long wait on a connection that just broke
                if ftp.sock is not None:
                    ftp.sock.settimeout(min(5.0, self.timeout))
                ftp.quit()
            except Exception:
                _quiet_close(ftp)

    def clone(self) -> FtpTarget:
        return FtpTarget(
            self.host,
            self.port,
            user=self.user,
            password=self.password,
            root=self.root,
            tls=self.tls,
            ssl_context=self.ssl_context,
            timeout=self.timeout,
            passive=self.passive,
        )

    @property
    def ftp(self) -> ftplib.FTP:
        if self._ftp is None:
            self.connect()
        assert self._ftp is not None
        return self._ftp

    def _p(self, remote: str) -> str:
        rel = clean_relpath(remote)
        if not self.root:
            return rel or "."
        return posixpath.join(self.root, rel) if rel else self.root

    # -- operations -------------------------------------------------------------------------
    def makedirs(self, path: str) -> None:
        rel = clean_relpath(path)
        parts = [p for p in (self.root.split("/") + rel.split("/")) if p]
        prefix = "/" if self.root.startswith("/") else ""
        cur = prefix
        for part in parts:
            cur = posixpath.join(cur, part) if cur else part
            if cur in self._known_dirs:
                continue
            try:
                self.ftp.mkd(cur)
            except ftplib.error_perm as exc:
                # 550/521 "exists" is fine; anything else must not hide behind it
                if not self._is_dir(cur):
                    raise PublishError(f"{self.description}: cannot create {cur}: {exc}") from exc
            self._known_dirs.add(cur)

    def _is_dir(self, path: str) -> bool:
        pwd = self.ftp.pwd()
        try:
            self.ftp.cwd(path)
        except ftplib.error_perm:
            return False
        self.ftp.cwd(pwd)
        return True

    def _store(self, final: str, fh) -> None:
        tmp = temp_name(final)
        try:
            self._stor(tmp, fh)
        except ftplib.error_perm as exc:
            raise PublishError(f"{self.description}: cannot store {final}: {exc}") from exc
        except BaseException as exc:
            if not is_transient(exc):
                self._try_delete(tmp)
            raise
        try:
            self.ftp.rename(tmp, final)
        except ftplib.error_perm:
            # some servers refuse RNTO onto an existing file
            self._try_delete(final)
            try:
                self.ftp.rename(tmp, final)
            except ftplib.error_perm as exc:
                self._try_delete(tmp)
                raise PublishError(
                    f"{self.description}: cannot rename {tmp} to {final}: {exc}"
                ) from exc

    def _stor(self, path: str, fh) -> None:
        """``ftplib.storbinary`` without its ``TYPE I`` per file: binary mode is set once per
        connection, which saves one round trip per file (a sixth of the cost on a WAN)."""
        with self.ftp.transfercmd(f"STOR {path}") as conn:
            while chunk := fh.read(1 << 16):
                conn.sendall(chunk)
            if isinstance(conn, ssl.SSLSocket):
                conn.unwrap()
        self.ftp.voidresp()

    def _try_delete(self, path: str) -> None:
        with contextlib.suppress(ftplib.error_perm):
            self.ftp.delete(path)

    def upload(self, local: Path, remote: str) -> None:
        with open(local, "rb") as fh:
            self._store(self._p(remote), fh)

    def write_bytes(self, remote: str, data: bytes) -> None:
        import io

        self._store(self._p(remote), io.BytesIO(data))

    def read_bytes(self, remote: str) -> bytes | None:
        chunks: list[bytes] = []
        try:
            self.ftp.retrbinary(f"RETR {self._p(remote)}", chunks.append)
        except ftplib.error_perm as exc:
            if _code(exc) == "550":
                return None
            raise PublishError(f"{self.description}: cannot read {remote}: {exc}") from exc
        return b"".join(chunks)

    def stat(self, remote: str) -> RemoteStat | None:
        path = self._p(remote)
        try:
            size = self.ftp.size(path)
        except ftplib.error_perm as exc:
            if _code(exc) == "550":
                return None
            raise
        if size is None:
            return None
        try:
            mtime = _parse_mdtm(self.ftp.voidcmd(f"MDTM {path}").split()[-1])
        except ftplib.error_perm:
            mtime = None
        return RemoteStat(size=int(size), mtime=mtime)

    def _entries(self, path: str) -> list[tuple[str, bool]]:
        """(name, is_dir) of a directory; MLSD where supported, NLST + CWD probing otherwise."""
        try:
            return [
                (name, facts.get("type") == "dir")
                for name, facts in self.ftp.mlsd(path, facts=["type"])
                if facts.get("type") in ("file", "dir")
            ]
        except ftplib.error_perm as exc:
            if _code(exc) == "550":
                return []
            if _code(exc) not in ("500", "501", "502"):
                raise
        try:
            names = [posixpath.basename(n) for n in self.ftp.nlst(path)]
        except ftplib.error_perm:
            return []
        return [(n, self._is_dir(posixpath.join(path, n))) for n in names if n not in (".", "..")]

    def scan(self, remote: str) -> dict[str, RemoteStat]:
        path = self._p(remote)
        try:
            listing = list(self.ftp.mlsd(path, facts=["type", "size", "modify"]))
        except ftplib.error_perm as exc:
            if _code(exc) == "550":
                return {}
            if _code(exc) not in ("500", "501", "502"):
                raise
            # no MLSD: one SIZE/MDTM per file
            out = {}
            for name in self.listdir(remote):
                st = self.stat(posixpath.join(clean_relpath(remote), name))
                if st is not None:
                    out[name] = st
            return out
        out = {}
        for name, facts in listing:
            if facts.get("type") != "file":
                continue
            out[name] = RemoteStat(
                size=int(facts.get("size", -1)), mtime=_parse_mdtm(facts.get("modify", ""))
            )
        return out

    def listdir(self, remote: str) -> list[str]:
        return sorted(name for name, _ in self._entries(self._p(remote)))

    def remove(self, remote: str) -> None:
        self._try_delete(self._p(remote))

    def remove_tree(self, remote: str) -> None:
        if not clean_relpath(remote):
            raise PublishError(f"refusing to remove the publish root {self.description}")
        self._rmtree(self._p(remote))

    def _rmtree(self, path: str) -> None:
        for name, is_dir in self._entries(path):
            child = posixpath.join(path, name)
            if is_dir:
                self._rmtree(child)
            else:
                self._try_delete(child)
        try:
            self.ftp.rmd(path)
        except ftplib.error_perm as exc:
            if _code(exc) != "550" or self._is_dir(path):
                raise PublishError(f"{self.description}: cannot remove {path}: {exc}") from exc
        self._known_dirs.discard(path)

    def link_latest(self, link: str, target_name: str) -> bool:
        """FTP has no symlinks: ``latest.json`` is the pointer."""
        return False


def _parse_mdtm(stamp: str) -> float | None:
    """FTP time stamps (MDTM, MLSD ``modify``) are UTC ``YYYYMMDDHHMMSS[.sss]``."""
    try:
        return datetime.strptime(stamp[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _quiet_close(ftp: ftplib.FTP) -> None:
    with contextlib.suppress(Exception):
        ftp.close()
