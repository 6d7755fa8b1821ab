"""The security tier: each test performs an attack a hostile tool, module, registry client or
local user could try, and asserts it fails. The integration tier's fixtures serve here too."""

from __future__ import annotations

from tests.integration.conftest import harness  # noqa: F401 - fixtures re-exported
