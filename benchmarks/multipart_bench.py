"""Multipart upload benchmark: a 10 GiB output through the agent's upload path, against its floor.

1. floor: what the bytes must at least go through on this machine, each step timed alone:
   sha384 over the file (the agent must know the sha before it may begin an upload) plus a
   plain copy of it on the same disk (read, write, fsync in 1 MiB chunks: the registry's
   landing of the bytes).
2. upload: a child process runs the agent's upload path (`upload_revision` with the agent's
   defaults: 2 GiB threshold, 128 MiB parts, 4 at once) against a registry process on the same
   disk, and creates the model (the registry verifies the blob then). Its peak RSS is sampled
   every 10 ms. The ratio is floor / upload (1.0: as fast as hashing and copying alone).
3. flat memory: the same upload path with a 1 GiB file (threshold lowered so it goes in parts
   too), peak RSS side by side with the big one's.

Run: .venv/bin/python -m benchmarks.multipart_bench [--quick] [--gib N]
(QUICK: 1 GiB with a 256 MiB threshold against 256 MiB; the full run needs about 3 x the
file size free on the disk, and removes what it wrote.)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agent import logs
from agent.registry.client import RegistryClient
from agent.registry.multipart import MultipartSettings
from agent.registry.transfer import upload_revision
from benchmarks.registry_bench import MiB, PeakRSS, copy_file, start_registry
from benchmarks.saved import footer, print_rows, save

GiB = 1024 * MiB


@dataclass(frozen=True)
class Plan:
    """How much to upload."""

    big_gib: float = 10.0
    small_gib: float = 1.0
    threshold_mib: int = 2048  # the agent's default (the SDK's)


QUICK = Plan(1.0, 0.25, 256)  # 1 GiB in parts too


def make_file(path: Path, size: int) -> None:
    """`size` bytes, fast: one pseudo-random MiB rotated per MiB (no two parts alike)."""
    block = os.urandom(MiB)
    with path.open("wb") as f:
        for i in range(size // MiB):
            f.write(block[i % 997 :] + block[: i % 997])


def floor(path: Path, root: Path) -> dict[str, float]:
    """Seconds to hash the file, and to copy it on the same disk."""
    start = time.perf_counter()
    h, buf = hashlib.sha384(), memoryview(bytearray(4 * MiB))
    with path.open("rb", buffering=0) as f:
        while got := f.readinto(buf):
            h.update(buf[:got])
    hash_s = time.perf_counter() - start
    copy = root / "copy.bin"
    start = time.perf_counter()
    copy_file(path, copy)
    copy_s = time.perf_counter() - start
    copy.unlink()
    return {"hash_s": hash_s, "copy_s": copy_s, "floor_s": hash_s + copy_s}


class _Timed(RegistryClient):
    """The client, noting when the multipart upload is begun (the agent's hashing is over)."""

    begun: float | None = None

    async def begin_multipart(self, sha: str, num_parts: int, model_id: str | None = None) -> Any:
        self.begun = time.perf_counter()
        return await super().begin_multipart(sha, num_parts, model_id)


async def _child_upload(url: str, token: str, path: Path, threshold: int) -> dict[str, Any]:
    settings = MultipartSettings(threshold=threshold)
    async with _Timed(url, token) as client:
        start = time.perf_counter()
        revision = await upload_revision(client, path, multipart=settings)
        uploaded = time.perf_counter()
        await client.create_model(revision)
        begun = client.begun or start
        return {
            "upload_s": uploaded - start,
            "agent_hash_s": begun - start,  # before the first request of the upload
            "parts_s": uploaded - begun,  # begin, every part, complete
            "create_s": time.perf_counter() - uploaded,
        }


def upload(url: str, token: str, path: Path, threshold: int) -> dict[str, Any]:
    """The agent's upload path in a child process (so its RSS is its own): time and peak RSS."""
    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.multipart_bench", "--child", url, str(path),
         str(threshold)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdin is not None
    with PeakRSS(child.pid) as rss:
        start = time.perf_counter()
        out, _ = child.communicate(token)
        wall_s = time.perf_counter() - start
    if child.returncode != 0:
        msg = f"the upload child exited with {child.returncode}"
        raise RuntimeError(msg)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result | {"wall_s": wall_s, "peak_rss_mb": rss.peak / MiB}


def measure(plan: Plan, root: Path | None = None) -> dict[str, Any]:
    """Both uploads and the floor, in one registry, on one disk."""
    with tempfile.TemporaryDirectory(prefix="istari-multipart-bench-", dir=root) as tmp:
        work = Path(tmp)
        token = secrets.token_urlsafe(24)
        proc, url = start_registry(work / "registry", token)
        try:
            results: dict[str, Any] = {}
            for name, gib, threshold in (
                ("small", plan.small_gib, 128 * MiB),  # in parts too, for the RSS comparison
                ("big", plan.big_gib, plan.threshold_mib * MiB),
            ):
                size = int(gib * GiB)
                path = work / f"{name}.bin"
                make_file(path, size)
                os.sync()
                run = floor(path, work) if name == "big" else {}
                os.sync()
                run |= upload(url, token, path, threshold)
                path.unlink()
                _drop_verified(work / "registry" / "blobs")  # the disk back for the next
                run |= {"gib": gib, "mib_per_s": size / MiB / run["upload_s"]}
                results[name] = run
            big = results["big"]
            results["ratio"] = big["floor_s"] / big["upload_s"]
            results["rss_growth_mb"] = big["peak_rss_mb"] - results["small"]["peak_rss_mb"]
            return results
        finally:
            proc.terminate()
            proc.wait()


def _drop_verified(blobs: Path) -> None:
    """Delete the verified blobs' files (`ab/cd/<sha>`); the registry is not read again."""
    for top in blobs.glob("[0-9a-f][0-9a-f]"):
        shutil.rmtree(top, ignore_errors=True)


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, figure, aim) lines of the table."""
    big, small = r["big"], r["small"]
    return [
        (f"floor for {big['gib']:g} GiB: sha384 + plain copy",
         f"{big['floor_s']:.1f} s ({big['hash_s']:.1f} + {big['copy_s']:.1f})", ""),
        (f"agent upload path, {big['gib']:g} GiB (hash, parts, complete)",
         f"{big['upload_s']:.1f} s ({big['mib_per_s']:.0f} MiB/s; create {big['create_s']:.2f} s)",
         ""),
        ("- of which the agent hashing / begin, parts, complete",
         f"{big['agent_hash_s']:.1f} s / {big['parts_s']:.1f} s", ""),
        ("floor / upload", f"{r['ratio']:.2f}",
         f">= 0.90: {'met' if r['ratio'] >= 0.9 else 'NOT met'}"),
        (f"agent peak RSS, {big['gib']:g} GiB / {small['gib']:g} GiB",
         f"{big['peak_rss_mb']:.1f} MB / {small['peak_rss_mb']:.1f} MB", "flat"),
    ]  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        url, path, threshold = sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
        token = sys.stdin.read().strip()  # never on the command line
        logs.configure("warning", json=False)
        print(json.dumps(asyncio.run(_child_upload(url, token, path, threshold))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 GiB against 256 MiB")
    parser.add_argument("--gib", type=float, default=None, help="the big upload's size")
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    if args.gib is not None:
        plan = Plan(args.gib, plan.small_gib, plan.threshold_mib)
    logs.configure("warning", json=False)
    started = time.time()
    results = measure(plan)
    out = save("multipart", asdict(plan), results, started)
    print_rows(rows(results))
    footer(results, out)


if __name__ == "__main__":
    main()
