"""The job lifecycle: from a claim to one outcome, and what a restarted agent goes on with.

`dispatch` claims jobs; `runner` works one through its phases (validate, execute, outputs,
upload), reporting each move (`phases`); `ending` decides its one `outcome`, which the runner
reports last; `recovery` settles what an earlier run of the agent left. The states themselves
are the shared contract's (`agent/protocol/states.py`).
"""

from __future__ import annotations
