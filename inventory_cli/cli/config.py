"""The configuration file: `config.toml` in the user config folder, or INVENTORY_CONFIG.

It may set `db`, `store` and `user`, the defaults below the options and the
environment variables:

    db = "/srv/inventory/inventory.db"
    store = "north"
    user = "anna"

Read only when it exists (tomllib is imported then), at every start: a
malformed file or an unknown key is a usage error naming the file and the line.
"""

from __future__ import annotations

import os
import sys

KEYS = ("db", "store", "user")


class ConfigProblem(Exception):
    """The configuration file cannot be used (exit 2)."""


def config_path() -> tuple[str, bool]:
    """The file's path, and whether INVENTORY_CONFIG named it."""
    named = os.environ.get("INVENTORY_CONFIG")
    if named:
        return named, True
    return os.path.join(user_config_dir(), "config.toml"), False


def user_config_dir() -> str:
    """platformdirs.user_config_dir("inventory-cli"); on Linux and the BSDs worked out
    here as platformdirs does (XDG), so that start-up does not import it."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        base = os.environ.get("XDG_CONFIG_HOME", "").strip() or os.path.expanduser("~/.config")
        return os.path.join(base, "inventory-cli")
    from platformdirs import user_config_dir as platform_dir

    return platform_dir("inventory-cli", appauthor=False)


def load() -> dict[str, str]:
    """The settings of the file ({} when there is none)."""
    path, named = config_path()
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        if named:
            raise ConfigProblem(f"{path}: INVENTORY_CONFIG names a file that does not exist.") from None
        return {}
    except OSError as error:
        raise ConfigProblem(f"{path}: cannot read the configuration file ({error.strerror}).") from None
    import tomllib

    try:
        text = raw.decode("utf-8")
        settings = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ConfigProblem(f"{path}: the configuration file is not UTF-8 text.") from None
    except tomllib.TOMLDecodeError as error:  # its message names the line and column
        raise ConfigProblem(f"{path}: not valid TOML: {error}.") from None
    for key, value in settings.items():
        line = _line_of(text, key)
        if key not in KEYS:
            raise ConfigProblem(f"{path}, line {line}: unknown key {key!r}; the file may set "
                                + ", ".join(KEYS) + ".")
        if not isinstance(value, str) or not value.strip():
            raise ConfigProblem(f"{path}, line {line}: {key} must be a non-empty string in quotes.")
    return settings


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith((key, f'"{key}"', f"'{key}'")) and "=" in stripped:
            return number
    return 1


def command_defaults(settings: dict[str, str], groups: dict[str, tuple[str, ...]]) -> dict | None:
    """click's default_map: the file's `store` and `user` for every command.

    ``groups`` names the commands, a group mapping to its subcommands' names
    ({"add": (), "product": ("set", "list")}). click looks a default up only when
    neither the option nor its environment variable was given.
    """
    inner = {key: settings[key] for key in ("store", "user") if key in settings}
    if not inner:
        return None
    return {name: ({sub: inner for sub in subs} if subs else inner) for name, subs in groups.items()}
