"""Tests about the project itself: `__all__` is complete, every command has help text."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import click
from clitree import subcommands

import reconciler
from reconciler.cli.main import cli


def _modules() -> list[str]:
    names = [reconciler.__name__]
    for info in pkgutil.walk_packages(reconciler.__path__, f"{reconciler.__name__}."):
        if not info.name.endswith("__main__"):
            names.append(info.name)
    return names


def test_every_module_declares_a_complete_all() -> None:
    problems = []
    for name in _modules():
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        if exported is None:
            problems.append(f"{name}: no __all__")
            continue
        public = [
            attr
            for attr, obj in vars(module).items()
            if not attr.startswith("_")
            and (inspect.isfunction(obj) or inspect.isclass(obj))
            and obj.__module__ == name
        ]
        problems += [
            f"{name}: {attr} missing from __all__" for attr in public if attr not in exported
        ]
        problems += [
            f"{name}: {attr} in __all__ but absent"
            for attr in exported
            if not hasattr(module, attr)
        ]
    assert problems == []


def _commands(group: click.Group, path: str = "reconciler") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = [(path, group)]
    for name, sub in subcommands(group).items():
        if isinstance(sub, click.Group):
            found += _commands(sub, f"{path} {name}")
        else:
            found.append((f"{path} {name}", sub))
    return found


def test_every_command_and_option_has_help_text() -> None:
    commands = _commands(cli)
    assert len(commands) > 20
    for path, command in commands:
        assert command.help and command.help.strip(), f"{path} has no help text"
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert param.help, f"{path} {param.opts} has no help text"
