"""config.example.toml documents every setting and loads as it stands."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from agent.config import Settings, load_settings

EXAMPLE = Path(__file__).parents[2] / "config.example.toml"


def test_every_setting_is_in_the_example_with_a_comment() -> None:
    text = EXAMPLE.read_text()
    for name in Settings.model_fields:
        match = re.search(rf"^(# )?\[?{name}[ .=\]]", text, re.MULTILINE)
        assert match is not None, f"{name} is missing from config.example.toml"
        before = text[: match.start()].rstrip().splitlines()[-1]
        assert before.startswith("#"), f"{name} has no comment above it"


def test_the_example_loads_and_its_commented_defaults_are_the_real_ones(tmp_path: Path) -> None:
    copy = tmp_path / "agent.toml"  # as the README says to use it: a private copy
    copy.write_text(EXAMPLE.read_text())
    copy.chmod(0o600)
    assert load_settings(copy, {}, {}).registry_url == "http://127.0.0.1:8765"
    defaults = Settings(registry_api_url="http://x", registry_api_token="t")
    commented = [
        line.removeprefix("# ")
        for line in EXAMPLE.read_text().splitlines()
        if re.match(r"^# [a-z_]+ = ", line)
    ]
    documented = tomllib.loads("\n".join(commented))
    assert len(documented) >= 10
    for name, value in documented.items():
        if name not in Settings.model_fields:
            continue  # a key inside a table's example (module_configurations)
        actual = getattr(defaults, name)
        if actual in (None, (), {}):
            continue  # no default (none, empty, or detected): the comment shows an example
        assert str(actual) == str(value) or actual == value, (name, value, actual)
