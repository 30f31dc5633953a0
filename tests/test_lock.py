"""requirements.lock (what the action and the image install, with hashes) is current
with pyproject.toml: every runtime dependency and the build backend pinned to a version
their specifiers admit, every pin with hashes. Regenerate it with the command in its
header (docs/development.md)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = (ROOT / "requirements.lock").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _pins() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every package the lock pins."""
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", LOCK):
        match = re.match(r"([A-Za-z0-9_.-]+)==([^\s;\\]+)", block)
        if match:
            pins[canonicalize_name(match.group(1))] = (
                match.group(2),
                len(re.findall(r"--hash=sha256:[0-9a-f]{64}", block)),
            )
    return pins


def test_every_dependency_and_the_build_backend_are_pinned_within_their_specifiers() -> None:
    pins = _pins()
    wanted = [*PYPROJECT["project"]["dependencies"], *PYPROJECT["build-system"]["requires"]]
    for text in wanted:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: regenerate it"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside {requirement.specifier}: "
            "regenerate it"
        )


def test_every_pin_has_hashes_and_the_header_says_how_to_regenerate() -> None:
    pins = _pins()
    assert len(pins) >= len(PYPROJECT["project"]["dependencies"])
    assert all(hashes >= 1 for _, hashes in pins.values()), pins
    assert "--generate-hashes" in LOCK.split("\n", 3)[1]
