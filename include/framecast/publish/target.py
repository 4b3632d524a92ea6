"""The contract every publish target fulfils, and what counts as a transient failure.

A target is one connection to one place (a local folder, an FTP/FTPS server, an SFTP server).
All paths given to a target are POSIX paths *relative to the target's root*, so the publishing
logic never needs to know where the root is or how the server spells paths.

Why the contract looks like this: a viewer must never see a half-written file, so the only way
to put content on a target is :meth:`PublishTarget.upload` / :meth:`PublishTarget.write_bytes`,
which write to a temporary name in the same directory and rename when complete. ``clone`` lets
the publisher open several independent connections (bounded parallelism) from one configured
target, and ``close`` + ``connect`` is how a dropped connection is reopened.
"""

from __future__ import annotations

import ftplib
import os
import posixpath
import secrets
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from framecast.errors import PublishError


@dataclass(frozen=True)
class RemoteStat:
    """What a target can cheaply tell about a remote file (mtime in epoch seconds, or None)."""

    size: int
    mtime: float | None = None


@runtime_checkable
class PublishTarget(Protocol):
    """One connection to a publish destination. Not thread-safe: one instance per worker."""

    #: short human-readable description for messages and logs (never contains a password)
    description: str

    def connect(self) -> None:
        """Open the connection (idempotent). Raises PublishAuthError on rejected credentials."""

    def close(self) -> None:
        """Close the connection; safe to call on a broken or already closed connection."""

    def clone(self) -> PublishTarget:
        """A new, unconnected target with the same configuration (for another worker)."""

    def makedirs(self, path: str) -> None:
        """Create ``path`` and its parents if missing."""

    def upload(self, local: Path, remote: str) -> None:
        """Copy ``local`` to ``remote`` via a temporary name + rename (atomic for readers)."""

    def write_bytes(self, remote: str, data: bytes) -> None:
        """Write ``data`` to ``remote`` via a temporary name + rename (atomic for readers)."""

    def read_bytes(self, remote: str) -> bytes | None:
        """Content of ``remote``, or None if it does not exist."""

    def stat(self, remote: str) -> RemoteStat | None:
        """Size (and mtime if known) of ``remote``, or None if it does not exist."""

    def scan(self, remote: str) -> dict[str, RemoteStat]:
        """Regular files in directory ``remote`` with their stats, in one round trip where
        the protocol allows (empty if the directory does not exist)."""

    def listdir(self, remote: str) -> list[str]:
        """Names (not paths) in directory ``remote``; empty if it does not exist."""

    def remove(self, remote: str) -> None:
        """Delete file ``remote`` (no error if missing)."""

    def remove_tree(self, remote: str) -> None:
        """Delete directory ``remote`` and everything below it (no error if missing)."""

    def link_latest(self, link: str, target_name: str) -> bool:
        """Atomically point symlink ``link`` at ``target_name`` (a sibling); False if unsupported."""


def temp_name(remote: str) -> str:
    """A unique hidden sibling of ``remote``: same directory, so the final rename is atomic.

    Hidden (leading dot) and suffixed ``.part`` so web servers listing the folder and the
    retention sweep can recognise leftovers of an interrupted upload.
    """
    head, tail = posixpath.split(remote)
    return posixpath.join(head, f".{tail}.{secrets.token_hex(4)}.part")


def is_temp_name(name: str) -> bool:
    """True for names made by :func:`temp_name` (leftovers of interrupted uploads)."""
    return name.startswith(".") and name.endswith(".part")


def clean_relpath(path: str) -> str:
    """Normalise a target-relative path and refuse anything escaping the root."""
    norm = posixpath.normpath(path.replace(os.sep, "/")).lstrip("/")
    if norm == ".":
        return ""
    if norm == ".." or norm.startswith("../"):
        raise PublishError(f"remote path {path!r} escapes the publish root")
    return norm


#: Exceptions meaning "the connection broke, reconnect and try again" (not "you may not").
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    socket.timeout,
    EOFError,
    ssl.SSLError,
    ftplib.error_temp,
    ftplib.error_reply,
    ftplib.error_proto,
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth a reconnect + retry.

    Permission and missing-path errors are permanent; broken sockets, timeouts, FTP 4xx replies
    and SSH transport errors are transient. paramiko is imported lazily so that FTP-only setups
    do not pay for it.
    """
    if isinstance(exc, TRANSIENT_ERRORS):
        return True
    try:
        import paramiko
    except ImportError:  # pragma: no cover - paramiko is a dependency
        paramiko = None
    if paramiko is not None:
        if isinstance(exc, paramiko.AuthenticationException):
            return False
        if isinstance(exc, (paramiko.SSHException, paramiko.ssh_exception.NoValidConnectionsError)):
            return True  # includes "unable to connect": the server may be restarting
    if isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError)):
        return False
    # paramiko reports "Socket is closed" / "Server connection dropped" as plain OSError
    return isinstance(exc, OSError) and type(exc) is OSError
