"""Options more than one command takes, defined once: the router config.

Every command that reads a router config takes ``--config FILE``; without it the file named
by ``MANGAROUTE_CONFIG`` is used, so a container or a shell session sets it once. What happens
with neither depends on the command: the offline tools (``targets``, ``route``, ``plan`` ...)
fall back to the shipped MangaAssist example, ``serve`` refuses (see
:func:`serving_config_path`) because that example's ARNs name a placeholder account.

This module imports nothing heavy (no gRPC, no AWS SDK): the sidecar's own entry point uses
it too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import TYPE_CHECKING, Any, TypeVar

from mangaroute.config import load_config, load_default_config
from mangaroute.core.errors import ConfigError
from mangaroute.core.settings import RouterConfig

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "CONFIG_ENV",
    "PLACEHOLDER_ACCOUNT",
    "ConfigNotGiven",
    "add_config_option",
    "add_json_option",
    "config_path",
    "laid_out_help",
    "router_config",
    "serving_config_path",
    "settings_from_flags",
]

CONFIG_ENV = "MANGAROUTE_CONFIG"
PLACEHOLDER_ACCOUNT = "123456789012"
"""The account id in the shipped example's ARNs (the AWS documentation's placeholder)."""

_S = TypeVar("_S", bound="DataclassInstance")


class ConfigNotGiven(ConfigError):
    """A serving command was started with no config and without ``--demo``."""

    def __init__(self, message: str) -> None:
        self.source = "--config"
        self.key = ""
        Exception.__init__(self, message)


def add_config_option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    *,
    fallback: str = "the shipped MangaAssist config",
    needs: str = "",
) -> None:
    """``--config FILE`` with the help text every command shares."""
    what = f"router config (TOML){needs}"
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help=f"{what}; default: ${CONFIG_ENV} when set, else {fallback}",
    )


def add_json_option(
    parser: argparse.ArgumentParser, help_text: str = "print JSON for machines"
) -> None:
    """``--json``: the command prints JSON, and fails with a JSON error object
    (:func:`mangaroute.cli.output.error_json`)."""
    parser.add_argument("--json", action="store_true", help=help_text)


def laid_out_help(description: str, epilog: str | None = None) -> dict[str, Any]:
    """The keywords of a parser (``ArgumentParser(...)`` or ``add_parser(...)``) whose
    description and epilog are laid out by hand - paragraphs, example lines - and are printed
    as written, not re-wrapped."""
    return {
        "description": description,
        "epilog": epilog,
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }


def settings_from_flags(settings_type: type[_S], args: argparse.Namespace, **given: Any) -> _S:
    """A settings dataclass whose fields are the command's flags of the same names
    (``max_streams`` is ``--max-streams``): each field is ``given`` when it is there (a flag
    that needs parsing first), else the flag's value when the command has that flag, else
    the field's default."""
    flags = {
        name: getattr(args, name)
        for name in (field.name for field in dataclasses.fields(settings_type))
        if name not in given and hasattr(args, name)
    }
    return settings_type(**flags, **given)


def router_config(flag: str | None) -> RouterConfig:
    """The router config an offline command reads: :func:`config_path`'s file, else the
    shipped MangaAssist example."""
    path = config_path(flag)
    return load_config(path) if path else load_default_config()


def config_path(flag: str | None) -> str | None:
    """The config file to read: ``--config``, else ``$MANGAROUTE_CONFIG``, else ``None``
    (the command's own fallback). An empty variable counts as unset."""
    if flag:
        return flag
    return os.environ.get(CONFIG_ENV, "").strip() or None


def serving_config_path(flag: str | None, *, demo: bool) -> str | None:
    """The config a serving command uses: ``--config`` or ``$MANGAROUTE_CONFIG``; ``None``
    only with ``demo`` (the shipped example). Without either, :class:`ConfigNotGiven`, which
    says what to do: serving the example by accident would send production traffic to ARNs
    in a placeholder account."""
    if demo and flag:
        raise ConfigNotGiven(
            "--demo serves the shipped example config and --config names your own; give one"
        )
    if demo:
        return None
    path = config_path(flag)
    if path is None:
        raise ConfigNotGiven(
            f"no router config: pass --config FILE or set {CONFIG_ENV}=FILE "
            "('mangaroute config show > router.toml' prints a starting point); "
            "--demo serves the shipped MangaAssist example, whose ARNs name the placeholder "
            f"account {PLACEHOLDER_ACCOUNT}"
        )
    return path
