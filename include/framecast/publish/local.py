"""Publish into a local (or mounted network) directory: the embedded default target.

Same contract as the remote targets: temporary name in the same directory, fsync, then
``os.replace``, so a web server serving the folder never delivers a half-written frame.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from framecast.errors import PublishError
from framecast.publish.target import RemoteStat, clean_relpath, temp_name


class LocalTarget:
    """A directory on this machine; ``root`` is created on connect."""

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.description = f"file://{self.root}"

    # -- connection -------------------------------------------------------------------------
    def connect(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PublishError(f"cannot create publish root {self.root}: {exc}") from exc

    def close(self) -> None:
        """Nothing to close for a local folder."""

    def clone(self) -> LocalTarget:
        return LocalTarget(self.root, fsync=self.fsync)

    # -- helpers ----------------------------------------------------------------------------
    def _p(self, remote: str) -> Path:
        rel = clean_relpath(remote)
        return self.root / rel if rel else self.root

    def _write_via_temp(self, remote: str, writer) -> None:
        final = self._p(remote)
        tmp = self._p(temp_name(clean_relpath(remote)))
        try:
            with open(tmp, "wb") as fh:
                writer(fh)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # -- operations -------------------------------------------------------------------------
    def makedirs(self, path: str) -> None:
        self._p(path).mkdir(parents=True, exist_ok=True)

    def upload(self, local: Path, remote: str) -> None:
        with open(local, "rb") as src:
            self._write_via_temp(remote, lambda fh: shutil.copyfileobj(src, fh, 1 << 20))

    def write_bytes(self, remote: str, data: bytes) -> None:
        self._write_via_temp(remote, lambda fh: fh.write(data))

    def read_bytes(self, remote: str) -> bytes | None:
        try:
            return self._p(remote).read_bytes()
        except FileNotFoundError:
            return None

    def stat(self, remote: str) -> RemoteStat | None:
        try:
            st = self._p(remote).stat()
        except FileNotFoundError:
            return None
        return RemoteStat(size=st.st_size, mtime=st.st_mtime)

    def scan(self, remote: str) -> dict[str, RemoteStat]:
        out: dict[str, RemoteStat] = {}
        try:
            with os.scandir(self._p(remote)) as it:
                for e in it:
                    if e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        out[e.name] = RemoteStat(size=st.st_size, mtime=st.st_mtime)
        except (FileNotFoundError, NotADirectoryError):
            pass
        return out

    def listdir(self, remote: str) -> list[str]:
        try:
            return sorted(os.listdir(self._p(remote)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def remove(self, remote: str) -> None:
        self._p(remote).unlink(missing_ok=True)

    def remove_tree(self, remote: str) -> None:
        p = self._p(remote)
        if p == self.root:
            raise PublishError(f"refusing to remove the publish root {self.root}")
        if p.is_symlink():
            p.unlink()
        elif p.exists():
            shutil.rmtree(p)

    def link_latest(self, link: str, target_name: str) -> bool:
        final = self._p(link)
        tmp = self._p(temp_name(clean_relpath(link)))
        try:
            os.symlink(target_name, tmp)
        except OSError:
            return False  # e.g. a file system without symlinks: latest.json is the pointer
        try:
            os.replace(tmp, final)
        except OSError:
            # something else (a real folder?) occupies the name: leave it, latest.json rules
            tmp.unlink(missing_ok=True)
            return False
        return True
