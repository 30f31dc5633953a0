"""A small project folder and the two hubs for the CLI tests of the single-session
commands (show, forget, import, --replace, --selector, plan --destroy).

Each test gets its own project name (``project``), so tests that share the served hub
never see each other's managed sessions.

A test module imports ``cli_hub_fixture`` and ``folder_fixture`` (the fixtures
``cli_hub`` and ``folder``); the socket kind uses conftest's shared ``served_hub``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from clihub import HUB_KINDS, CliHub, make_cli_hub, unique

__all__ = ["Folder", "apply_all", "cli_hub_fixture", "folder_fixture", "plan_text"]

SESSIONS: Mapping[str, str] = {
    "alpha": """\
        task: Keep the alpha service green
        label: Alpha
        tags: [team-a, backend]
        """,
    "beta": """\
        task: Review beta pull requests
        label: Beta
        tags: [team-b]
        """,
    "gamma": """\
        task: Answer gamma questions
        label: Gamma
        tags: [team-a]
        """,
}


class Folder:
    """A manifests folder: ``project.yaml`` plus one file per session."""

    def __init__(self, root: Path, project: str) -> None:
        self.root = root
        self.project = project
        root.mkdir(parents=True, exist_ok=True)
        self.write_project()

    @property
    def path(self) -> str:
        return str(self.root)

    def write_project(self, policy: str = "{prune: archive, protectLive: true}") -> None:
        (self.root / "project.yaml").write_text(
            f"apiVersion: reconciler/v1\nkind: Project\nname: {self.project}\n"
            f"defaults: {{visibility: organization}}\npolicy: {policy}\n"
        )

    def write(self, name: str, spec: str, lifecycle: str = "") -> Path:
        body = textwrap.indent(textwrap.dedent(spec), "  ")
        text = f"apiVersion: reconciler/v1\nkind: Session\nname: {name}\nspec:\n{body}"
        if lifecycle:
            text += f"lifecycle: {lifecycle}\n"
        path = self.root / f"{name}.yaml"
        path.write_text(text)
        return path

    def remove(self, name: str) -> None:
        (self.root / f"{name}.yaml").unlink()


def apply_all(hub: CliHub, folder: Folder, *args: str) -> dict[str, str]:
    """``apply --yes`` the folder; name -> id of each session it created or replaced."""
    report = hub.json("apply", folder.path, "--yes", *args)
    return {r["name"]: r["sessionId"] for r in report["results"] if r["kind"] != "archive"}


def plan_text(hub: CliHub, folder: Folder, *args: str) -> tuple[int, str, str]:
    return hub.run("plan", folder.path, *args)


@pytest.fixture(name="folder")
def folder_fixture(tmp_path: Path) -> Folder:
    made = Folder(tmp_path / "manifests", unique("proj-"))
    for name, spec in SESSIONS.items():
        made.write(name, spec)
    return made


@pytest.fixture(name="cli_hub", params=HUB_KINDS)
def cli_hub_fixture(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[CliHub]:
    hub = make_cli_hub(request.param, tmp_path, monkeypatch, capsys, request)
    yield hub
    assert all(hub.token not in text for text in hub.outputs)
