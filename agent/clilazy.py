"""A click group whose subcommands are imported when used, not when the program starts.

`istari-agent run` is a long-lived daemon: the local registry, `record`, `runs` and the
service installer it does not need stay out of its memory (click's documented lazy-loading
pattern). `--help` still lists every subcommand.
"""

from __future__ import annotations

import importlib
from typing import Any

import click


class LazyGroup(click.Group):
    """A group with `lazy`: {name: "module.attribute"} of commands loaded on first use."""

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.lazy:
            return super().get_command(ctx, cmd_name)
        module, attribute = self.lazy[cmd_name].rsplit(".", 1)
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring mistake
            msg = f"{self.lazy[cmd_name]} is not a click command"
            raise TypeError(msg)
        return command
