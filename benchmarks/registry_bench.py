"""Local registry benchmark: request rates, and 1 GiB transfers against a plain file copy.

Run: .venv/bin/python -m benchmarks.registry_bench [--blob-mib 1024] [--requests 3000]

Everything is measured in one run on this machine, so the ratios mean something:
- `available_jobs` and claim requests/s (8 concurrent clients over loopback);
- upload and download MiB/s of one blob against copying the same file on the same disk
  (read + write + fsync, 1 MiB chunks: what the registry itself has to do at the least);
- the registry process's peak RSS while it receives the blob (it must stay flat).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from agent.protocol.content import digest_file, properties_document
from agent.protocol.states import JobStatus
from agent.registry.client import RegistryClient
from agent.registry.models import NewRevision, Token
from agent.registry.transfer import download_revision, upload_blob, upload_bytes
from benchmarks.saved import RESULTS
from tests.support.registry import agent_with_module, submit_jobs

MiB = 1024 * 1024


def start_registry(data_dir: Path, token: str) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "ISTARI_LOCAL_REGISTRY_TOKEN": token}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--log-level", "warning", "registry", "serve",
         "--port", "0", "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line.split("listening on ")[1].split()[0]


class PeakRSS:
    """Samples a process's RSS every 10 ms in a thread; `peak` is the maximum seen."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self.baseline = self.peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self.baseline = self.proc.memory_info().rss
        self.peak = self.baseline
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def rate(n: int, concurrency: int, call: Any) -> float:
    """Requests per second for `n` calls of `call(i)` with `concurrency` in flight."""
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


def copy_file(src: Path, dst: Path) -> None:
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(MiB):
            fout.write(chunk)
        fout.flush()
        os.fsync(fout.fileno())


def make_blob(path: Path, mib: int) -> None:
    block = os.urandom(MiB)
    with path.open("wb") as f:
        for i in range(mib):
            f.write(block[i % 251 :] + block[: i % 251])  # distinct chunks, cheap to make


async def requests_bench(url: str, token: str, tmp: Path, n: int) -> dict[str, float]:
    async with RegistryClient(url, token) as client:
        agent = await agent_with_module(client)
        await submit_jobs(client, tmp, 100)
        available = await rate(n, 8, lambda i: client.available_jobs(agent, size=10))
        jobs = await submit_jobs(client, tmp, n // 4)
        claims = await rate(
            len(jobs), 8, lambda i: client.update_job_status(jobs[i].id, JobStatus.CLAIMED, agent)
        )
        health = await rate(n, 8, lambda i: client.readiness())
    return {"available_jobs_rps": available, "claim_rps": claims, "readiness_rps": health}


async def transfer_bench(url: str, token: str, pid: int, tmp: Path, mib: int) -> dict[str, float]:
    src = tmp / "blob.bin"
    make_blob(src, mib)
    start = time.perf_counter()
    copy_file(src, tmp / "copy.bin")
    copy_s = time.perf_counter() - start
    (tmp / "copy.bin").unlink()

    start = time.perf_counter()
    digest = digest_file(src)
    hash_s = time.perf_counter() - start
    async with RegistryClient(url, token) as client:
        target = await client.upload_url(digest.sha)
        assert target is not None
        with PeakRSS(pid) as rss:
            start = time.perf_counter()
            await client.put_blob(target.url, src)
            put_s = time.perf_counter() - start
        # An upload is a candidate until a revision names its salt (the registry checks the
        # address then): make the model that does, as a client would, then download it.
        props = await upload_bytes(client, properties_document(src.name, digest.size))
        content = Token(sha=digest.sha, salt=digest.salt)
        model = await client.create_model(
            NewRevision(content_token=content, properties_token=props, name=src.name,
                        size=digest.size)
        )  # fmt: skip
        start = time.perf_counter()
        await download_revision(client, model.file.current, tmp / "down.bin")
        get_s = time.perf_counter() - start
        (tmp / "down.bin").unlink()
        start = time.perf_counter()
        await upload_blob(client, src)  # hash + upload-url (409: stored) = the dedupe path
        dedupe_s = time.perf_counter() - start
    return {
        "blob_mib": mib,
        "file_copy_mibps": mib / copy_s,
        "sha384_mibps": mib / hash_s,
        "upload_put_mibps": mib / put_s,
        "upload_vs_copy": copy_s / put_s,
        "download_mibps": mib / get_s,
        "download_vs_copy": copy_s / get_s,
        "dedupe_upload_s": dedupe_s,
        "registry_rss_baseline_mb": rss.baseline / MiB,
        "registry_rss_peak_mb": rss.peak / MiB,
        "registry_rss_growth_mb": (rss.peak - rss.baseline) / MiB,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blob-mib", type=int, default=1024)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="istari-bench-", dir=os.environ.get("BENCH_TMP")) as d:
        tmp = Path(d)
        proc, url = start_registry(tmp / "registry", token)
        try:
            results = {
                "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
                "date": time.strftime("%Y-%m-%d"),
                **await requests_bench(url, token, tmp, args.requests),
                **await transfer_bench(url, token, proc.pid, tmp, args.blob_mib),
            }
        finally:
            proc.terminate()
            proc.wait()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "registry.json").write_text(json.dumps(results, indent=2))
    width = max(len(k) for k in results)
    for key, value in results.items():
        shown = f"{value:,.1f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")


if __name__ == "__main__":
    asyncio.run(main())
