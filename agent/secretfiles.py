"""Files that hold secrets: created 0600 atomically, read only when nobody else can."""

from __future__ import annotations

import os
import secrets
import stat
import struct
from pathlib import Path

_ACL = "system.posix_acl_access"


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
    """Read a secret file, refusing one that another user may read or write."""
    with path.open("rb") as f:  # checked and read through one descriptor: no swap between
        mode = os.fstat(f.fileno()).st_mode
        if (uid := foreign_owner(f.fileno())) is not None:
            msg = f"{path} belongs to another user (uid {uid}); it must be this user's or root's"
            raise InsecureSecretFile(msg)
        if others_may_use(f.fileno(), mode):
            msg = (
                f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
                f"run: chmod 600 {path}"
            )
            raise InsecureSecretFile(msg)
        return f.read()


def foreign_owner(fd: int) -> int | None:
    """The owner's uid when it is neither this user nor root (who could have planted it)."""
    uid = os.fstat(fd).st_uid
    return None if uid in (os.getuid(), 0) else uid


def others_may_use(fd: int, mode: int) -> bool:
    """Whether a user other than the owner may read or write the file.

    With a POSIX ACL the group bits of the mode are the ACL's mask, not the group's rights:
    systemd gives a credential mode 0400 plus an entry for the service's user, which `stat`
    shows as 0440. So an ACL is read entry by entry (a user entry for us is fine).
    """
    try:
        acl = os.getxattr(fd, _ACL)
    except OSError:  # no ACL, or a file system without them: the mode says it all
        return bool(mode & (stat.S_IRWXG | stat.S_IRWXO))
    entries = [struct.unpack_from("<HHI", acl, at) for at in range(4, len(acl) - 7, 8)]
    mask = next((perm for tag, perm, _ in entries if tag == 0x10), 7)
    for tag, perm, who in entries:
        if tag == 0x20 and perm:  # others
            return True
        if tag in (0x04, 0x08) and perm & mask:  # the owning group, a named group
            return True
        if tag == 0x02 and who != os.getuid() and perm & mask:  # a named user not us
            return True
    return False


def load_or_create_secret(path: Path, nbytes: int = 32) -> bytes:
    """The secret stored at `path`, created (random, 0600) on first use."""
    if path.exists():
        return read_secret(path)
    value = secrets.token_urlsafe(nbytes).encode("ascii")
    write_secret(path, value)
    return value
