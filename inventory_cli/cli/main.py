"""The `inventory` command: the app, its global options, the entry point.

The commands live in `commands/`, one module per concern; each adds its
commands with `register(app)`, called from here in the order `--help` lists
them. Heavier modules (the application, storage, rich) are imported inside the
commands that use them, so that `--help` and TAB completion stay fast.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterable
from typing import Annotated, Optional

import typer

from inventory_cli import __version__
from inventory_cli.cli.boundary import EXIT_USAGE, fail, flush_stdout
from inventory_cli.cli.context import Settings
from inventory_cli.cli.help import HelpCommand

# Typer draws help and usage errors with rich boxes; plain text where that would
# end up in a pipe, a log file or a terminal that asked for no colour.
_PLAIN = not sys.stderr.isatty() or "NO_COLOR" in os.environ

_APP_SETTINGS: dict = dict(
    name="inventory",
    rich_markup_mode=None if _PLAIN else "rich",
    help="Stock of a store as an append-only event log in one SQLite file.\n\n"
    "Example: inventory add SKU-1 10 && inventory stock SKU-1",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# The modules of `inventory_cli.cli.commands`, in the order --help lists them, with
# the commands (or groups) each registers, so that a run imports only its own.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "stock_moves": ("add", "remove", "count", "revert"),
    "reservations": ("reserve", "release", "fulfill", "expire", "reservations"),
    "transfers": ("transfer", "receive", "transfers"),
    "products": ("product",),
    "queries": ("stock", "history", "replay", "diff", "stores"),
    "audit": ("verify", "export"),
    "reports": ("report",),
    "import_": ("import",),
    "maintenance": ("rebuild-projections", "backup", "info"),
    "feed": ("consumers", "metrics"),
    "moving": ("migrate", "restore"),
}


# The panel --help shows each module's commands in.
PANELS: dict[str, str] = {
    "stock_moves": "Stock moves",
    "reservations": "Reservations",
    "transfers": "Transfers",
    "products": "Products",
    "queries": "Queries",
    "audit": "Audit",
    "reports": "Reports",
    "import_": "Stock moves",
    "maintenance": "Maintenance",
    "feed": "Feed",
    "moving": "Maintenance",
}


# Commands with subcommands, for the configuration file's defaults (config.command_defaults).
_GROUPS: dict[str, tuple[str, ...]] = {
    name: ("set", "list") if name == "product" else ()
    for names in COMMAND_MODULES.values() for name in names
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"inventory {__version__}")
        raise typer.Exit()


def main_options(
    ctx: typer.Context,
    db: Annotated[
        Optional[str],
        typer.Option(
            "--db",
            envvar="INVENTORY_DB",
            metavar="PATH|URL",
            help="The SQLite file (default: inventory.db in the user data folder), or a PostgreSQL URL (postgresql://USER@HOST/DB).",
            show_default=False,
        ),
    ] = None,
    no_pager: Annotated[
        bool, typer.Option("--no-pager", help="Never page long output at a terminal.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    from inventory_cli.cli import config

    # A broken configuration file or an empty location stops the commands that run
    # (RunningCommand), not the help of a command, which click shows after this callback.
    problem = None
    try:
        settings = config.load()
    except config.ConfigProblem as error:
        settings, problem = {}, f"{error} Nothing was written."
    # By name: typer carries its own copy of click, whose enum is not click's.
    from_env = getattr(ctx.get_parameter_source("db"), "name", "") != "COMMANDLINE"
    location, empty = _location(None if from_env else db)
    ctx.obj = Settings(location, pager=not no_pager,
                       configured_db=settings.get("db"), problem=empty or problem)
    ctx.default_map = config.command_defaults(settings, _GROUPS)


def _location(db: str | None) -> tuple[str | None, str | None]:
    """--db, else INVENTORY_DB, and the problem with it: a location given empty is a
    mistake, never the default file.

    click reads an empty INVENTORY_DB as unset, so the environment is asked again here:
    `--db "$DB"` with DB unset, or `INVENTORY_DB=`, must not write to the user's real data.
    """
    given = db if db is not None else os.environ.get("INVENTORY_DB")
    if given is not None and not given.strip():
        source = "--db" if db is not None else "INVENTORY_DB"
        return None, (f"{source} is empty; give the database file's path (or leave {source} out "
                      "to use the default file). Nothing was written.")
    return given, None


def build_app(modules: Iterable[str] = COMMAND_MODULES) -> typer.Typer:
    """The app with the commands of these modules of `commands/` (all of them by default)."""
    from inventory_cli.cli.help import HelpGroup

    built = typer.Typer(cls=HelpGroup, **_APP_SETTINGS)
    built.callback()(main_options)
    for module in modules:
        commands, groups = len(built.registered_commands), len(built.registered_groups)
        _commands_module(module).register(built)
        for info in built.registered_commands[commands:]:
            info.cls, info.rich_help_panel = RunningCommand, PANELS.get(module)
        for group in built.registered_groups[groups:]:
            group.cls, group.rich_help_panel = HelpGroup, PANELS.get(module)
            for info in group.typer_instance.registered_commands:
                info.cls = RunningCommand
    return built


class RunningCommand(HelpCommand):
    """Every command: its help as help.py draws it; run, it needs a usable configuration
    file and location."""

    def invoke(self, ctx: typer.Context):
        settings = ctx.find_object(Settings)
        if settings is not None and settings.problem:
            fail(settings.problem, EXIT_USAGE)
        return super().invoke(ctx)


def _commands_module(name: str):
    # __import__ rather than importlib.import_module, which `python -X importtime` does not see.
    return __import__(f"inventory_cli.cli.commands.{name}", fromlist=["register"])


def __getattr__(name: str) -> typer.Typer:
    """`app`, the whole command line (for tests and tools), built on first use."""
    if name == "app":
        globals()["app"] = built = build_app()
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    try:
        _only_the_command_asked_for(sys.argv[1:])(prog_name="inventory")
    finally:
        # The process ends here, and Python's exit would walk every object that typer,
        # pydantic and rich created, collection after collection (25-40 ms, a sixth
        # of a command). Frozen, they are left to the operating system; the rest of
        # a normal exit (flushing, closing) runs as usual. Every store is closed by now.
        gc.freeze()
        flush_stdout()


def _only_the_command_asked_for(args: list[str]) -> typer.Typer:
    """The app with just the command being run, when that is clear from the arguments.

    Typer builds every command's parameters at each start (~15 ms for all of
    them), and each command here is a fresh process: building one is enough,
    and only its module is imported. Help, completion and unknown names get the
    whole app.
    """
    if any(name.endswith("_COMPLETE") for name in os.environ):
        return build_app()
    position = 0
    while position < len(args) and args[position].startswith("-"):
        if args[position] in ("--help", "-h", "--version"):
            return build_app()
        position += 2 if args[position] == "--db" else 1
    if position >= len(args):
        return build_app()
    name = args[position]
    modules = [module for module, names in COMMAND_MODULES.items() if name in names]
    if not modules:
        return build_app()
    lite = build_app(modules)
    lite.registered_commands = [c for c in lite.registered_commands if _command_name(c) == name]
    lite.registered_groups = [g for g in lite.registered_groups if g.name == name]
    if not lite.registered_commands and not lite.registered_groups:
        return build_app()
    return lite


def _command_name(info) -> str:
    return info.name or info.callback.__name__.replace("_", "-")
