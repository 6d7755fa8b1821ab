"""`istari-agent install-service` into a scratch root, checked by systemd's own tools.

`systemd-analyze verify` must accept the units it writes (system and user), and
`systemd-analyze security --offline=yes` must score the system unit 2.5 or lower, both the
shipped `systemd/istari-agent.service` and the one written for this installation (whose
ExecStart lies under /root or /work here, which can relax ProtectHome).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli_config import CONFIG_ERROR, NO_CONFIG
from agent.config import load_settings

REPO = Path(__file__).parents[2]
SHIPPED = REPO / "systemd" / "istari-agent.service"
AGENT = Path(sys.executable).parent / "istari-agent"
MAX_EXPOSURE = 2.5
_EXPOSURE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+)")


def install(root: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"HOME": str(home)} if home else {})}
    return subprocess.run(
        [str(AGENT), "install-service", "--root", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )


def exposure(unit: Path) -> float:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    match = _EXPOSURE.search(out)
    assert match, out[-500:]
    return float(match.group(1))


def verify(unit: Path, *, user: bool = False, runtime: Path | None = None) -> str:
    env = {**os.environ, **({"XDG_RUNTIME_DIR": str(runtime)} if runtime else {})}
    argv = ["systemd-analyze", *(["--user"] if user else []), "verify", str(unit)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_the_shipped_unit_is_valid_and_scores_at_most_2_5() -> None:
    assert exposure(SHIPPED) <= MAX_EXPOSURE


@pytest.mark.parametrize("shipped", [SHIPPED, SHIPPED.with_name("istari-agent-user.service")])
def test_a_configuration_to_fix_is_not_restarted(shipped: Path) -> None:
    """The exit codes of a bad configuration and of a first start (template written) end the
    service: a restart every 5 s would only say the same again."""
    (line,) = [x for x in shipped.read_text().splitlines() if x.startswith("RestartPreventExit")]
    codes = {int(c) for c in line.partition("=")[2].split()}
    assert {CONFIG_ERROR, NO_CONFIG} <= codes


@pytest.mark.parametrize("shipped", [SHIPPED, SHIPPED.with_name("istari-agent-user.service")])
def test_systemctl_reload_signals_the_agent_to_read_its_configuration_again(
    shipped: Path,
) -> None:
    """`systemctl reload` sends SIGHUP (docs/configuration.md, "Reloading without a restart")."""
    lines = shipped.read_text().splitlines()
    assert [x for x in lines if x.startswith("ExecReload=")] == [
        "ExecReload=/bin/kill -HUP $MAINPID"
    ]


def test_install_writes_a_valid_hardened_unit_the_user_and_a_private_config(
    tmp_path: Path,
) -> None:
    token = tmp_path / "token.txt"
    token.write_text("s3cret-token\n")
    done = install(
        tmp_path / "root", "--registry-url", "https://reg.test", "--token-file", str(token)
    )
    assert done.returncode == 0, done.stderr
    unit = tmp_path / "root/etc/systemd/system/istari-agent.service"
    config = tmp_path / "root/etc/istari-agent/agent.toml"
    sysusers = tmp_path / "root/etc/sysusers.d/istari-agent.conf"
    assert f"wrote {unit}" in done.stdout
    assert "next: systemd-sysusers && systemctl daemon-reload && systemctl enable" in done.stdout
    text = unit.read_text()
    assert f"ExecStart={AGENT} run --config %d/agent.toml" in text
    assert "LoadCredential=agent.toml:/etc/istari-agent/agent.toml" in text
    assert "KillMode=process" in text and "Type=notify" in text
    verify(unit)
    assert exposure(unit) <= MAX_EXPOSURE
    assert sysusers.read_text().splitlines()[-1].startswith("u istari-agent ")
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    settings = load_settings(config, {}, {})
    assert settings.registry_api_token is not None
    assert settings.registry_api_token.get_secret_value() == "s3cret-token"
    assert str(settings.state_path) == "/var/lib/istari-agent"
    assert settings.drain_timeout == 3600

    config.write_text(config.read_text().replace("https://reg.test", "https://edited.test"))
    again = install(tmp_path / "root")
    assert again.returncode == 0, again.stderr
    assert "https://edited.test" in config.read_text()  # an edited config is never overwritten
    assert f"wrote {config}" not in again.stdout


def test_a_user_service_needs_no_root(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = install(tmp_path / "root", "--user", home=home)
    assert done.returncode == 0, done.stderr
    base = tmp_path / "root" / home.relative_to("/")
    unit = base / ".config/systemd/user/istari-agent.service"
    config = base / ".config/istari-agent/agent.toml"
    assert f"--config {home}/.config/istari-agent/agent.toml" in unit.read_text()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    verify(unit, user=True, runtime=runtime)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert str(load_settings(config, {}, {}).state_path) == f"{home}/.local/state/istari-agent"
    assert "systemctl --user enable --now istari-agent" in done.stdout
