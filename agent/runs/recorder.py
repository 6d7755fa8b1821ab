"""One job run's record as the runner writes it (it does nothing without run records)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

from agent import jsontext
from agent.runs.model import Entry, Sample, describe_inputs
from agent.runs.store import RunRecords

log = structlog.get_logger(__name__)


class RunRecorder:
    """One job run's record, as the runner writes it (does nothing without `RunRecords`)."""

    def __init__(self, records: RunRecords | None, job: Any, agent_id: str) -> None:
        self._records = records
        fn = job.function
        self.run_id = (
            records.begin(job.id, agent_id, fn.name, fn.module_name, fn.module_version)
            if records is not None
            else None
        )

    def step(self, phase: str) -> None:
        if self._records is not None and self.run_id is not None:
            self._records.step(self.run_id, phase)

    def inputs_from(self, input_file: Path) -> None:
        if self._records is None or self.run_id is None:
            return
        try:
            document = jsontext.loads(input_file.read_text())
            self._records.inputs(self.run_id, describe_inputs(document))
        except (OSError, ValueError) as e:
            log.warning("run.inputs_unrecorded", error=str(e))

    def outputs(self, outputs: list[dict[str, Any]]) -> None:
        if self._records is not None and self.run_id is not None:
            self._records.outputs(self.run_id, outputs)

    def resources(self, wall: float, cpu: float | None, peak_rss_kb: int | None) -> None:
        if self._records is not None and self.run_id is not None:
            self._records.resources(self.run_id, wall, cpu, peak_rss_kb)

    def entry(self, entry: Entry) -> None:
        if self._records is not None and self.run_id is not None:
            self._records.entry(self.run_id, entry)

    def sample(self, sample: Sample) -> None:
        if self._records is not None and self.run_id is not None:
            self._records.sample(self.run_id, sample)

    def end(
        self, status: str, reason: str, message: str, exit_code: int | None, log: Path | None
    ) -> None:
        if self._records is not None and self.run_id is not None:
            self._records.end(self.run_id, status, reason, message, exit_code)
            if log is not None and log.exists():
                self._records.keep_log(self.run_id, log)
