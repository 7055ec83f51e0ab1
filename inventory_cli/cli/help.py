"""How `--help` and usage lines read: `inventory add PRODUCT QUANTITY [OPTIONS]`.

typer draws arguments as `{PRODUCT}` with a `<str>` type, flags as `--json <bool>`, and
lists commands in one block. Here an argument is its name, an option's value is a
word saying what to give (`--since TIME`), a flag is just the flag, and the commands
are grouped in panels (the panel of each command is set by `main.build_app`). A group
run without a command prints its help and exits 0.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# The panels of `inventory --help`, in order.
PANELS = ("Stock moves", "Reservations", "Transfers", "Products", "Queries", "Reports", "Audit", "Feed", "Maintenance")

# The value an option takes, where its own name does not say it.
_VALUE_NAMES = {
    "--since": "TIME", "--until": "TIME", "--limit": "N", "--position": "N",
    "--from-position": "N", "--to-position": "N", "--after-position": "N",
    "--reorder-point": "N", "--quantity": "N", "--batch-size": "N",
    "--from": "STORE", "--to": "STORE", "--store": "STORE", "--id": "ID", "--user": "NAME",
}


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.metavar or (self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")


class _Option(TyperOption):
    def _get_number_range_help_str(self) -> str | None:
        return None  # "[0<=x<=9223372036854775807]" says less than the help's words

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar:
            return self.metavar
        long_names = [o for o in self.opts if o.startswith("--")] or self.opts
        return _VALUE_NAMES.get(long_names[0], long_names[0].lstrip("-").upper())


def _plain_parameters(params: list[Any]) -> list[Any]:
    """Give typer's parameters the help display above (same parsing, other words)."""
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option
    return params


def _help_or_nothing(group: Any, ctx: Any, args: list[str]) -> None:
    """A group run bare prints its help on stdout and exits 0 (not 2, not on stderr)."""
    if not args and group.no_args_is_help and not ctx.resilient_parsing:
        text = ctx.get_help()  # rich help prints itself and returns ""
        if text:
            typer.echo(text)
        ctx.exit(0)


class HelpCommand(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_parameters(super().get_params(ctx))

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """`add PRODUCT QUANTITY [OPTIONS]`: the arguments first, as people type them."""
        pieces = [piece for param in self.get_params(ctx) for piece in param.get_usage_pieces(ctx)]
        return pieces + ([self.options_metavar] if self.options_metavar else [])


class HelpGroup(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_parameters(super().get_params(ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        _help_or_nothing(self, ctx, args)
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: Any) -> list[str]:
        """By panel (in PANELS' order), then in the order they were added."""
        names = super().list_commands(ctx)
        return sorted(names, key=lambda name: _panel_rank(self.commands[name]))

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        """Without rich (a pipe, NO_COLOR): one section per panel."""
        panels: dict[str, list[tuple[str, str]]] = {}
        commands = [(name, self.get_command(ctx, name)) for name in self.list_commands(ctx)]
        commands = [(name, command) for name, command in commands if command and not command.hidden]
        if not commands:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in commands)
        for name, command in commands:
            panel = getattr(command, "rich_help_panel", None) or "Commands"
            panels.setdefault(panel, []).append((name, command.get_short_help_str(limit)))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)


def _panel_rank(command: Any) -> int:
    panel = getattr(command, "rich_help_panel", None)
    return PANELS.index(panel) if panel in PANELS else len(PANELS)
