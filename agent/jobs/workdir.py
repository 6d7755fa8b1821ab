"""One job's directory on disk: where inputs land, the tool works, and outputs must stay.

Layout under `<output_path>/<job id>/`: `in/` (the downloaded model), `parameters.json`,
`tmp/` (the tool's `{temp_dir}` and working directory), `input.json`, `output.json`,
`module_config.json` (0600: it may hold credentials), `job.log` (the tool's stdout and
stderr), `updates.jsonl` (log entries and progress the tool reports, docs/tool-updates.md),
`supervisor/` (the pid and exit status the tool's supervisor records) and `upload/`
(directory outputs zipped for upload). The directory is 0700: inputs may be confidential.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class WorkDir:
    """Paths of one job's work directory."""

    root: Path

    @classmethod
    def create(cls, output_path: Path, job_id: str) -> WorkDir:
        """Make a fresh work directory for `job_id` (an old one of the same job is removed)."""
        root = output_path / safe_name(job_id)
        if root.exists():
            shutil.rmtree(root)
        output_path.mkdir(parents=True, exist_ok=True)
        root.mkdir(mode=0o700)
        for sub in ("in", "tmp", "upload"):
            (root / sub).mkdir(mode=0o700)
        return cls(root.resolve())

    @classmethod
    def existing(cls, output_path: Path, job_id: str) -> WorkDir | None:
        """The work directory an earlier run of the agent made for `job_id`, if it is there."""
        root = output_path / safe_name(job_id)
        return cls(root.resolve()) if root.is_dir() else None

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    @property
    def temp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def uploads(self) -> Path:
        return self.root / "upload"

    @property
    def resources_file(self) -> Path:
        """Input name -> the model or artifact id that filled it (written at Validating)."""
        return self.root / "resources.json"

    @property
    def input_file(self) -> Path:
        return self.root / "input.json"

    @property
    def output_file(self) -> Path:
        return self.root / "output.json"

    @property
    def module_config(self) -> Path:
        return self.root / "module_config.json"

    @property
    def supervisor(self) -> Path:
        return self.root / "supervisor"

    @property
    def log_file(self) -> Path:
        return self.root / "job.log"

    @property
    def updates_file(self) -> Path:
        return self.root / "updates.jsonl"

    def contains(self, path: Path) -> bool:
        """Whether `path`, with every symlink resolved, lies inside this directory."""
        return path.resolve().is_relative_to(self.root)

    def size(self) -> int:
        """Bytes in the directory's regular files, each counted as the larger of its length
        and the disk it takes (a sparse file is as big as what its upload would send); links
        are not followed. A directory the tool made unreadable is made readable again (it is
        the agent's user's), so nothing it holds is left uncounted."""
        total, pending = 0, [self.root]
        while pending:
            here = pending.pop()
            try:
                entries = list(os.scandir(here))
            except PermissionError:
                try:
                    here.chmod(0o700)
                    entries = list(os.scandir(here))
                except OSError:
                    continue
            except OSError:
                continue  # gone meanwhile
            for entry in entries:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        total += max(st.st_size, st.st_blocks * 512)
                except OSError:
                    continue
        return total

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def safe_name(name: str, fallback: str = "file") -> str:
    """`name` reduced to one harmless path component (no separators, no leading dots)."""
    cleaned = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).lstrip(".")
    return cleaned[:200] or fallback
