"""The registry's data directory and admin token, checked before anything is served.

The directory holds credentials (token hashes, stored credentials, the URL signing key), so it
must belong to the user serving and be private: one that other users own or may write to
(`/tmp` itself, say) is refused, never chmodded and taken over. A directory the registry
creates is made 0700. The admin token must be long enough not to be guessed.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

MIN_ADMIN_TOKEN = 32
MAKE_A_TOKEN = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"  # noqa: S105


class SetupRefused(Exception):
    """The registry refuses to start with this data directory or admin token."""


def check_admin_token(token: str, source: str) -> None:
    """Refuse an admin token shorter than MIN_ADMIN_TOKEN characters; `source` says where it
    came from, for the message (never the token itself)."""
    if len(token) < MIN_ADMIN_TOKEN:
        msg = (
            f"the admin token from {source} is {len(token)} characters; it must be at least "
            f"{MIN_ADMIN_TOKEN} characters of random. Make one with: {MAKE_A_TOKEN}"
        )
        raise SetupRefused(msg)


def prepare(data: Path) -> None:
    """Create `data` (0700), or check that an existing one is ours and not shared; 0700."""
    # An existing one is checked below, whoever made it (also one made just now by another).
    with contextlib.suppress(FileExistsError):
        data.mkdir(parents=True, mode=0o700)
    check(data)
    data.chmod(0o700)


def check(data: Path) -> None:
    """Refuse a data directory that is not a directory of ours that only we may write to."""
    try:
        st = data.stat()
    except FileNotFoundError:
        msg = f"{data} does not exist; start the registry with --data-dir {data} first"
        raise SetupRefused(msg) from None
    if not stat.S_ISDIR(st.st_mode):
        msg = f"--data-dir {data} is not a directory"
        raise SetupRefused(msg)
    if st.st_uid != os.geteuid():
        msg = (
            f"--data-dir {data} is owned by another user (uid {st.st_uid}), who could read or "
            "replace the registry's credentials; use a directory of your own (a new one is "
            "created with mode 0700)"
        )
        raise SetupRefused(msg)
    if st.st_mode & (stat.S_IWOTH | stat.S_IWGRP):
        who = "every user" if st.st_mode & stat.S_IWOTH else "its group"
        msg = (
            f"--data-dir {data} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}), "
            "so they could replace the registry's files; use a directory of your own, e.g. "
            f"--data-dir {data / 'istari-registry'} (a new one is created with mode 0700)"
        )
        raise SetupRefused(msg)
