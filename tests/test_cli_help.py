"""`--help` says what applies: the endpoint default, exit codes, metavars like the others."""

from __future__ import annotations

import pytest

from reconciler.cli.main import run


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert run([*argv, "--help"]) == 0
    text = capsys.readouterr().out
    return " ".join(text.split())  # click wraps lines: compare words


def test_global_api_url_help_does_not_claim_the_remote_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help(capsys)
    assert "default https://catalyst-usw.agentuity.cloud" not in text
    assert (
        "`local` for the embedded hub (only when asked for). [env CODER_API_URL] Unset: "
        "AGENTUITY_SDK_KEY selects https://catalyst-usw.agentuity.cloud; with neither, "
        "commands that need a hub exit 64."
    ) in text
    assert "--org ID" in text


def test_apply_help_lists_exit_64_and_shows_the_same_metavars(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = _help(capsys, "apply")
    assert text.startswith("Usage: reconciler apply [OPTIONS] [PATHS]...")
    assert "--project NAME" in text and "--project TEXT" not in text
    assert "64 usage error" in text
    for command in ("plan", "status", "validate", "forget", "import"):
        assert "--project NAME" in _help(capsys, command), command


def test_export_yes_has_a_short_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert "-y, --yes" in _help(capsys, "export")


def test_sessions_archive_help_says_any_status(capsys: pytest.CaptureFixture[str]) -> None:
    text = _help(capsys, "sessions", "archive")
    assert "an active session" not in text
    assert "Archive a session, whatever its status" in text
