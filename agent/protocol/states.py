"""The job state machine as one pure table, shared by the agent and the local registry.

The registry enforces it atomically (a guarded UPDATE); the agent uses it to decide which
report to send next. No I/O lives here.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Job statuses with their exact wire spellings (spec §3.3)."""

    CREATED = "Created"
    PENDING = "Pending"
    CLAIMED = "Claimed"
    VALIDATING = "Validating"
    RUNNING = "Running"
    UPLOADING = "Uploading"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"
    UNKNOWN = "Unknown"


class AgentStatus(StrEnum):
    """Agent statuses with their exact wire spellings (spec §2.3)."""

    IDLE = "Idle"
    CLAIMING_JOB = "ClaimingJob"
    VALIDATING_JOB = "ValidatingJob"
    EXECUTING_JOB = "ExecutingJob"
    UPLOADING_JOB = "UploadingJob"
    EXECUTION_SUCCESS = "ExecutionSuccess"
    EXECUTION_FAILED = "ExecutionFailed"
    UPDATING_AGENT = "UpdatingAgent"
    SUCCESSFUL_AGENT_UPDATE = "SuccessfulAgentUpdate"
    FAILED_AGENT_UPDATE = "FailedAgentUpdate"
    UPDATING_MODULE = "UpdatingModule"
    SUCCESSFUL_MODULE_UPDATE = "SuccessfulModuleUpdate"
    FAILED_MODULE_UPDATE = "FailedModuleUpdate"
    PAUSED = "Paused"
    UNKNOWN = "Unknown"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED}
)

# Statuses an agent works a job through once it holds the claim.
ACTIVE: frozenset[JobStatus] = frozenset(
    {JobStatus.CLAIMED, JobStatus.VALIDATING, JobStatus.RUNNING, JobStatus.UPLOADING}
)

# The allowed moves. Self-moves on Validating/Running/Uploading carry progress messages;
# Claimed -> Claimed is deliberately absent, so a second claim always loses (409).
# Claimed -> Pending lets an agent hand back a job it claimed but never started
# (for example while draining). Canceled is reachable from every non-terminal status.
_S = JobStatus
MOVES: dict[JobStatus, frozenset[JobStatus]] = {
    _S.CREATED: frozenset({_S.PENDING, _S.CANCELED}),
    _S.PENDING: frozenset({_S.CLAIMED, _S.CANCELED}),
    _S.CLAIMED: frozenset({_S.PENDING, _S.VALIDATING, _S.RUNNING, _S.FAILED, _S.CANCELED}),
    _S.VALIDATING: frozenset({_S.VALIDATING, _S.RUNNING, _S.FAILED, _S.CANCELED}),
    _S.RUNNING: frozenset({_S.RUNNING, _S.UPLOADING, _S.COMPLETED, _S.FAILED, _S.CANCELED}),
    _S.UPLOADING: frozenset({_S.UPLOADING, _S.COMPLETED, _S.FAILED, _S.CANCELED}),
    _S.COMPLETED: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.UNKNOWN: frozenset(),
}

# Moves that only the agent holding the claim may make (everything after the claim,
# except a user's cancel).
AGENT_ONLY: frozenset[JobStatus] = frozenset(
    {
        _S.VALIDATING,
        _S.RUNNING,
        _S.UPLOADING,
        _S.COMPLETED,
        _S.FAILED,
    }
)


# The phases an agent reports between its claim and the final status, in order.
PHASES: tuple[JobStatus, ...] = (
    JobStatus.CLAIMED,
    JobStatus.VALIDATING,
    JobStatus.RUNNING,
    JobStatus.UPLOADING,
)


def catch_up(current: JobStatus, target: JobStatus) -> list[JobStatus]:
    """The moves that bring a job the registry shows at `current` to `target`, in order.

    Phases the registry missed (it was unreachable when they happened) are reported late but
    in order, so a job's history never skips a phase: Claimed → Uploading is Validating,
    Running, Uploading. A phase the registry already shows, or is past, needs no move (a job
    resumed after a restart repeats nothing, even where it starts a phase over); a target
    that is not a phase (a final status) is the one move itself.
    """
    if current in PHASES and target in PHASES:
        return list(PHASES[PHASES.index(current) + 1 : PHASES.index(target) + 1])
    return [target]


def can_move(current: JobStatus, new: JobStatus) -> bool:
    """Whether a job in `current` may move to `new`."""
    return new in MOVES[current]


def predecessors(new: JobStatus) -> frozenset[JobStatus]:
    """Every status from which a job may move to `new` (for a guarded UPDATE)."""
    return frozenset(s for s, targets in MOVES.items() if new in targets)


# The agent status that mirrors each job phase (spec §9).
AGENT_STATUS_FOR_PHASE: dict[JobStatus, AgentStatus] = {
    _S.CLAIMED: AgentStatus.CLAIMING_JOB,
    _S.VALIDATING: AgentStatus.VALIDATING_JOB,
    _S.RUNNING: AgentStatus.EXECUTING_JOB,
    _S.UPLOADING: AgentStatus.UPLOADING_JOB,
    _S.COMPLETED: AgentStatus.EXECUTION_SUCCESS,
    _S.FAILED: AgentStatus.EXECUTION_FAILED,
    _S.CANCELED: AgentStatus.EXECUTION_FAILED,
}
