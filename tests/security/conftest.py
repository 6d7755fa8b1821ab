"""The security tier: each test performs an attack a hostile tool, module, registry client or
local user could try, and asserts it fails. Its fixtures (`harness`, `local_registry`,
`client`) are the shared ones in tests/conftest.py."""

from __future__ import annotations
