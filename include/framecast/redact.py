"""Keep secrets out of messages: passwords in URLs are replaced before anything is shown.

Database and server URLs carry passwords (``postgresql://user:secret@host/db``); error
messages, logs and CLI output name the URL so the operator knows which one failed, but never
with its password. Works on any text, so a message that quotes a URL inside a driver's own
error is covered too.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s'\"]*)"
                       r":(?P<pw>[^@\s'\"]+)@")


def redact(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", str(text))
