"""Crash safety: what lets a job outlive a crash of the agent that runs it.

- `journal`: jobs in progress and the registry updates owed, kept durably (`state.sqlite3`);
- `owed`: final statuses, journaled first, sent with retries and re-sent until they land;
- `lock`: one agent per state path.

What a restarted agent does with what the journal kept is the job package's
(`agent/jobs/recovery.py`).
"""
