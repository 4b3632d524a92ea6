"""A real SFTP server for tests: asyncssh serving one folder on 127.0.0.1, in its own process.

Run as ``python sftp_server.py --root DIR --host-key FILE --user U [--password P]
[--authorized-key PUB] [--port N] [--die-after-bytes N]``; prints ``READY <port>`` once
listening. ``--die-after-bytes`` makes the process kill itself (``os._exit``, no goodbye to the
client) when that many bytes were written in total: a server crash in the middle of an upload.
Its own process so that a crash really takes the listening socket and all sessions with it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import asyncssh


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--host-key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password")
    ap.add_argument("--authorized-key")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--die-after-bytes", type=int, default=0)
    args = ap.parse_args()
    written = 0

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def password_auth_supported(self) -> bool:
            return args.password is not None

        def validate_password(self, username: str, password: str) -> bool:
            return username == args.user and password == args.password

    class Sftp(asyncssh.SFTPServer):
        def __init__(self, chan: asyncssh.SSHServerChannel) -> None:
            super().__init__(chan, chroot=args.root.encode())

        def write(self, file_obj, offset: int, data: bytes):
            nonlocal written
            written += len(data)
            if args.die_after_bytes and written >= args.die_after_bytes:
                os._exit(17)
            return super().write(file_obj, offset, data)

    async def serve() -> None:
        keys = None
        if args.authorized_key:
            keys = asyncssh.read_authorized_keys(args.authorized_key)
        server = await asyncssh.create_server(
            Server, "127.0.0.1", args.port, server_host_keys=[args.host_key],
            sftp_factory=Sftp, authorized_client_keys=keys, allow_scp=False,
        )
        port = server.sockets[0].getsockname()[1]
        print(f"READY {port}", flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
