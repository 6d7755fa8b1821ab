"""The agent's Prometheus metrics, in a registry of its own (prometheus-client).

Names are `istari_agent_*`. Registry requests are labelled by endpoint with ids replaced by
`{id}` (`PUT /api/v2/jobs/{id}/status`), so the label set stays small however many jobs run.
Gauges that mirror state elsewhere (running jobs, push connected, owed statuses) are read at
scrape time through callbacks, so they can never drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_ID = re.compile(r"^([0-9a-fA-F]{8}-[0-9a-fA-F-]{27}|[0-9a-fA-F]{32,}|\d+)$")
PHASE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600)
PICKUP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


def endpoint(method: str, path: str) -> str:
    """`METHOD /path` with every id segment replaced by `{id}` (pure)."""
    parts = ["{id}" if _ID.match(p) else p for p in path.split("?")[0].split("/")]
    return f"{method} {'/'.join(parts)}"


class Metrics:
    """Everything /metrics shows for one agent."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Counter(
            "istari_agent_jobs", "Jobs that ended here, by outcome.", ["outcome"], registry=r
        )
        self.phase_seconds = Histogram(
            "istari_agent_phase_seconds",
            "Time jobs spent in each phase.",
            ["phase"],
            buckets=PHASE_BUCKETS,
            registry=r,
        )
        self.pickup_seconds = Histogram(
            "istari_agent_pickup_seconds",
            "From a job's submission (the registry's clock) to this agent's claim.",
            buckets=PICKUP_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "istari_agent_registry_requests",
            "Registry requests, by endpoint and status (0 = no answer).",
            ["endpoint", "status"],
            registry=r,
        )
        self.request_errors = Counter(
            "istari_agent_registry_errors",
            "Registry requests that failed (no answer, or a 5xx), by endpoint.",
            ["endpoint"],
            registry=r,
        )
        self._running = Gauge("istari_agent_running_jobs", "Jobs in progress.", registry=r)
        self._push = Gauge(
            "istari_agent_mqtt_connected", "1 while push (MQTT) is connected and live.", registry=r
        )
        self._owed = Gauge(
            "istari_agent_journal_backlog",
            "Final statuses journaled and not yet delivered to the registry.",
            registry=r,
        )

    def watch(
        self,
        running: Callable[[], int],
        push_connected: Callable[[], bool],
        owed: Callable[[], int],
    ) -> None:
        """Read these at every scrape."""
        self._running.set_function(lambda: float(running()))
        self._push.set_function(lambda: float(push_connected()))
        self._owed.set_function(lambda: float(owed()))

    def request(self, method: str, path: str, status: int | None) -> None:
        """One registry request ended with `status` (None: no answer)."""
        name = endpoint(method, path)
        self.requests.labels(name, str(status or 0)).inc()
        if status is None or status >= 500:
            self.request_errors.labels(name).inc()

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
