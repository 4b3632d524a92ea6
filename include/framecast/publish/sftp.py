"""Publish to an SFTP server through paramiko (the library behind Airflow's SFTP provider).

Files go up under a hidden ``.part`` name and are moved into place with OpenSSH's
``posix-rename`` extension, which replaces an existing file atomically (plain SFTP ``rename``
refuses to overwrite). The target can be built from credentials, from an already-open paramiko
``SSHClient``/``SFTPClient`` (what an Airflow hook hands out), or from a factory returning one:
a factory is what makes reconnecting after a dropped connection possible.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import stat as stat_mod
from collections.abc import Callable
from pathlib import Path
from typing import Any

from framecast.errors import PublishAuthError, PublishError
from framecast.publish.target import RemoteStat, clean_relpath, temp_name

log = logging.getLogger(__name__)

ClientFactory = Callable[[], Any]  # returns a paramiko SFTPClient or SSHClient


class SftpTarget:
    """An SFTP server. ``root`` is absolute when it starts with ``/``, else relative to the
    login directory."""

    def __init__(
        self,
        host: str | None = None,
        port: int = 22,
        *,
        user: str | None = None,
        password: str | None = None,
        key_file: str | Path | None = None,
        root: str = "",
        known_hosts: str | Path | None = None,
        accept_unknown_host: bool = False,
        timeout: float = 30.0,
        client: Any = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        if host is None and client is None and client_factory is None:
            raise PublishError("SftpTarget needs a host, an open paramiko client or a factory")
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.key_file = str(key_file) if key_file else None
        self.root = root.rstrip("/") if root not in ("", "/") else root
        self.known_hosts = str(known_hosts) if known_hosts else None
        self.accept_unknown_host = accept_unknown_host
        self.timeout = timeout
        self._given = client
        if client_factory is None and host is None:
            client_factory = _channel_factory(client)
        self.client_factory = client_factory
        where = f"{user}@{host}:{port}" if host else "paramiko-client"
        self.description = f"sftp://{where}/{root.lstrip('/')}"
        self._ssh: Any = None  # SSHClient we opened (and must close)
        self._sftp: Any = None
        self._known_dirs: set[str] = set()

    # -- connection -------------------------------------------------------------------------
    def connect(self) -> None:
        if self._sftp is not None:
            return
        import paramiko

        if self._given is not None:
            given, self._given = self._given, None
            self._sftp = self._as_sftp(given)
        elif self.client_factory is not None:
            try:
                self._sftp = self._as_sftp(self.client_factory())
            except paramiko.SSHException as exc:
                err = _security_error(self.description, self.user, exc)
                if err is None:
                    raise
                raise err from exc
        else:
            self._sftp = self._open_own()
        # without a timeout a server that stops answering (no reset) would hang the worker
        # forever; with it the publisher sees a timeout, reconnects and retries
        self._sftp.get_channel().settimeout(self.timeout)
        self._known_dirs = set()

    def _as_sftp(self, client: Any) -> Any:
        import paramiko

        if isinstance(client, paramiko.SSHClient):
            return client.open_sftp()
        if isinstance(client, paramiko.SFTPClient):
            return client
        raise PublishError(f"expected a paramiko SSHClient or SFTPClient, got {type(client)!r}")

    def _open_own(self) -> Any:
        import paramiko

        ssh = paramiko.SSHClient()
        ssh.load_system_host_keys()
        if self.accept_unknown_host:
            # trust on first use: only with a file to record the key in, so the next
            # connection checks it and a changed key is refused (BadHostKeyException)
            if not self.known_hosts:
                raise PublishError(f"{self.description}: accepting an unknown host key needs a "
                                   "known_hosts file to record it in (--known-hosts)")
            kh = Path(self.known_hosts)
            try:
                kh.parent.mkdir(parents=True, exist_ok=True)
                if not kh.exists():
                    kh.touch(mode=0o600)
            except OSError as exc:
                raise PublishError(f"cannot create known_hosts file {kh}: {exc}") from exc
        if self.known_hosts:
            try:
                ssh.load_host_keys(self.known_hosts)
            except OSError as exc:
                raise PublishError(f"cannot read known_hosts file {self.known_hosts}: {exc}") from exc
        policy = _tofu_policy() if self.accept_unknown_host else paramiko.RejectPolicy()
        ssh.set_missing_host_key_policy(policy)
        try:
            ssh.connect(
                self.host,
                port=self.port,
                username=self.user,
                password=self.password,
                key_filename=self.key_file,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                look_for_keys=False,
                allow_agent=False,
            )
        except paramiko.SSHException as exc:
            ssh.close()
            err = _security_error(self.description, self.user, exc)
            if err is None:
                raise
            raise err from exc
        except BaseException:
            ssh.close()
            raise
        self._ssh = ssh
        try:
            return ssh.open_sftp()
        except BaseException:
            ssh.close()
            self._ssh = None
            raise

    def close(self) -> None:
        sftp, self._sftp = self._sftp, None
        ssh, self._ssh = self._ssh, None
        for obj in (sftp, ssh):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()

    def clone(self) -> SftpTarget:
        """Same server, new connection; for a given client: a new channel on its transport."""
        return SftpTarget(
            self.host,
            self.port,
            user=self.user,
            password=self.password,
            key_file=self.key_file,
            root=self.root,
            known_hosts=self.known_hosts,
            accept_unknown_host=self.accept_unknown_host,
            timeout=self.timeout,
            client_factory=self.client_factory,
        )

    @property
    def sftp(self) -> Any:
        if self._sftp is None:
            self.connect()
        return self._sftp

    def _p(self, remote: str) -> str:
        rel = clean_relpath(remote)
        if not self.root:
            return rel or "."
        return posixpath.join(self.root, rel) if rel else self.root

    # -- operations -------------------------------------------------------------------------
    def makedirs(self, path: str) -> None:
        full = self._p(path)
        parts = [p for p in full.split("/") if p and p != "."]
        cur = "/" if full.startswith("/") else ""
        for part in parts:
            cur = posixpath.join(cur, part) if cur else part
            if cur in self._known_dirs:
                continue
            try:
                st = self.sftp.stat(cur)
                if not stat_mod.S_ISDIR(st.st_mode or 0):
                    raise PublishError(f"{self.description}: {cur} exists and is not a directory")
            except FileNotFoundError:
                try:
                    self.sftp.mkdir(cur)
                except OSError as exc:
                    # a parallel worker may have created it meanwhile
                    try:
                        self.sftp.stat(cur)
                    except FileNotFoundError:
                        raise PublishError(
                            f"{self.description}: cannot create {cur}: {exc}"
                        ) from exc
            self._known_dirs.add(cur)

    def _move_into_place(self, tmp: str, final: str) -> None:
        try:
            self.sftp.posix_rename(tmp, final)
            return
        except FileNotFoundError:
            raise
        except OSError:
            pass  # server without posix-rename: fall back to remove + rename
        with contextlib.suppress(FileNotFoundError):
            self.sftp.remove(final)
        self.sftp.rename(tmp, final)

    def _put(self, final: str, fh) -> None:
        tmp = temp_name(final)
        try:
            self.sftp.putfo(fh, tmp, confirm=True)
        except PermissionError as exc:
            raise PublishError(f"{self.description}: cannot write {final}: {exc}") from exc
        self._move_into_place(tmp, final)

    def upload(self, local: Path, remote: str) -> None:
        with open(local, "rb") as fh:
            self._put(self._p(remote), fh)

    def write_bytes(self, remote: str, data: bytes) -> None:
        import io

        self._put(self._p(remote), io.BytesIO(data))

    def read_bytes(self, remote: str) -> bytes | None:
        try:
            with self.sftp.open(self._p(remote), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None

    def stat(self, remote: str) -> RemoteStat | None:
        try:
            st = self.sftp.stat(self._p(remote))
        except FileNotFoundError:
            return None
        return RemoteStat(size=int(st.st_size or 0), mtime=st.st_mtime)

    def scan(self, remote: str) -> dict[str, RemoteStat]:
        try:
            attrs = self.sftp.listdir_attr(self._p(remote))
        except FileNotFoundError:
            return {}
        return {
            a.filename: RemoteStat(size=int(a.st_size or 0), mtime=a.st_mtime)
            for a in attrs
            if stat_mod.S_ISREG(a.st_mode or 0)
        }

    def listdir(self, remote: str) -> list[str]:
        try:
            return sorted(self.sftp.listdir(self._p(remote)))
        except FileNotFoundError:
            return []

    def remove(self, remote: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.sftp.remove(self._p(remote))

    def remove_tree(self, remote: str) -> None:
        if not clean_relpath(remote):
            raise PublishError(f"refusing to remove the publish root {self.description}")
        self._rmtree(self._p(remote))

    def _rmtree(self, path: str) -> None:
        try:
            entries = self.sftp.listdir_attr(path)
        except FileNotFoundError:
            return
        for attr in entries:
            child = posixpath.join(path, attr.filename)
            if stat_mod.S_ISDIR(attr.st_mode or 0):
                self._rmtree(child)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.sftp.remove(child)
        self.sftp.rmdir(path)
        self._known_dirs.discard(path)

    def link_latest(self, link: str, target_name: str) -> bool:
        """Symlink ``link`` -> ``target_name`` via temp symlink + posix-rename, if allowed."""
        final = self._p(link)
        tmp = temp_name(final)
        try:
            self.sftp.symlink(target_name, tmp)
        except OSError:
            return False
        try:
            self._move_into_place(tmp, final)
        except OSError:
            with contextlib.suppress(OSError):
                self.sftp.remove(tmp)
            return False
        return True


def _channel_factory(client: Any) -> ClientFactory:
    """New SFTP sessions on the SSH transport of an already-open paramiko client.

    An SSH connection multiplexes channels, so workers and reconnects after a dropped SFTP
    session need no credentials; if the transport itself is gone, opening fails with an
    SSHException and the publisher's retry gives up with a clear error.
    """
    import paramiko

    if isinstance(client, paramiko.SSHClient):
        transport = client.get_transport()
    elif isinstance(client, paramiko.SFTPClient):
        transport = client.get_channel().get_transport()
    else:
        raise PublishError(f"expected a paramiko SSHClient or SFTPClient, got {type(client)!r}")

    def factory() -> Any:
        if transport is None or not transport.is_active():
            raise paramiko.SSHException("the SSH connection of the given client is closed")
        return paramiko.SFTPClient.from_transport(transport)

    return factory


def _tofu_policy() -> Any:
    """A paramiko policy (paramiko imported lazily, as everywhere in this module)."""
    import paramiko

    class RecordFirstKey(paramiko.MissingHostKeyPolicy):
        """Trust on first use: accept an unknown host's key and save it to known_hosts."""

        def missing_host_key(self, client, hostname, key) -> None:
            client.get_host_keys().add(hostname, key.get_name(), key)
            filename = getattr(client, "_host_keys_filename", None)
            if not filename:
                raise PublishError("no known_hosts file to record the host key in")
            client.save_host_keys(filename)
            log.warning("accepted and recorded new host key of %s (%s %s) in %s", hostname,
                        key.get_name(), key.fingerprint, filename)

    return RecordFirstKey()


def _security_error(description: str, user: str | None, exc: Exception) -> Exception | None:
    """Rejected credentials or an untrusted host key as PublishAuthError (never retried);
    None for other SSH errors (those may be transient).

    paramiko also reports a connection that dies *during* authentication (a server restarting)
    as AuthenticationException; that one is a dropped connection, so it becomes a
    ConnectionResetError and is retried like any other.
    """
    import paramiko

    who = f" for user {user!r}" if user else ""
    if isinstance(exc, paramiko.AuthenticationException) and (
        "saw EOF" in str(exc) or "transport shut down" in str(exc)
    ):
        return ConnectionResetError(f"{description}: connection lost during login ({exc})")
    if isinstance(exc, paramiko.AuthenticationException):
        return PublishAuthError(f"{description}: authentication failed{who} ({exc})")
    if isinstance(exc, paramiko.BadHostKeyException):
        return PublishAuthError(f"{description}: host key mismatch ({exc})")
    if "known_hosts" in str(exc) or "not found in" in str(exc):
        return PublishAuthError(f"{description}: unknown host key ({exc}); add it to known_hosts")
    return None
