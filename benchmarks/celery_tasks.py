"""The Celery app and the one task the Celery peer benchmark runs (benchmarks/celery_bench.py).

The worker imports this module (`celery -A benchmarks.celery_tasks worker`); the Redis URL
comes from `ISTARI_BENCH_CELERY_REDIS`, set by the benchmark to the redis-server it started.
Without it the app points at port 1, where nothing listens, so an import never reaches a Redis
the machine happens to run.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from celery import Celery  # type: ignore[import-untyped]

URL_ENV = "ISTARI_BENCH_CELERY_REDIS"
TASK = "benchmarks.celery_tasks.run_tool"


def make_app(url: str) -> Any:
    """A Celery app with Redis as broker and result backend, set up for short tasks."""
    app = Celery("istari_bench", broker=url, backend=url)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        worker_hijack_root_logger=False,
        # A benchmark never gets its Redis back: fail at once rather than retry for ~20 s
        # (results still pending when a run is stopped try to unsubscribe as they go).
        result_backend_transport_options={"retry_policy": {"max_retries": 0}},
        # Celery's defaults otherwise (acks on receipt, prefetch 4 per process, fair
        # scheduling): what a user gets, and the fast choice for short tasks.
    )
    app.task(name=TASK)(run_tool)  # not as a decorator: celery is untyped, so it would be too
    return app


def run_tool(argv: list[str]) -> dict[str, float]:
    """Run `argv` as a child process and wait for it; when this body began and ended.

    `time.time()` first thing, so the benchmark (same host, same clock) can tell how long the
    task took to reach here from `apply_async`. `subprocess.run` is what a Celery user writes;
    CPython starts the child with vfork + exec on Linux.
    """
    start = time.time()
    subprocess.run(
        argv,
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return {"start": start, "end": time.time(), "pid": os.getpid()}


app = make_app(os.environ.get(URL_ENV, "redis://127.0.0.1:1/0"))
