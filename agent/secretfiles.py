"""Files that hold secrets: created 0600 atomically, read only when nobody else can."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


class InsecureSecretFile(Exception):
    """A file holding a secret can be read by other users."""


def write_secret(path: Path, data: bytes) -> None:
    """Write `data` to `path` with mode 0600, atomically (no moment where it is readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_secret(path: Path) -> bytes:
    """Read a secret file, refusing one that group or others may read or write."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        msg = (
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
            f"run: chmod 600 {path}"
        )
        raise InsecureSecretFile(msg)
    return path.read_bytes()


def load_or_create_secret(path: Path, nbytes: int = 32) -> bytes:
    """The secret stored at `path`, created (random, 0600) on first use."""
    if path.exists():
        return read_secret(path)
    value = secrets.token_urlsafe(nbytes).encode("ascii")
    write_secret(path, value)
    return value
