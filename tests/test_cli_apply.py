"""`reconciler apply` through the CLI against the embedded local hub: confirmation,
progress lines, JSON report, saved plans and staleness, safety, exit codes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reconciler import applyrun, connect
from reconciler.cli import apply as apply_cli
from reconciler.cli.main import run
from reconciler.model import Action, ActionResult, ApplyReport
from reconciler.planfile import checksum

PROJECT = """\
apiVersion: reconciler/v1
kind: Project
name: demo
policy: {prune: archive, protectLive: true}
"""


def session(name: str, *, label: str | None = None, env: str = "") -> str:
    extra = f'  env: {{TOKEN: "${{env:{env}}}"}}\n' if env else ""
    return (
        f"---\napiVersion: reconciler/v1\nkind: Session\nname: {name}\n"
        f"spec:\n  task: work on {name}\n  label: {label or name.title()}\n  tags: [demo]\n{extra}"
    )


class Cli:
    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.dir = tmp_path / "manifests"
        self.dir.mkdir()
        self.db = str(tmp_path / "hub.sqlite3")
        self.capsys = capsys
        self.write(PROJECT, "project.yaml")

    def write(self, text: str, name: str = "sessions.yaml") -> None:
        (self.dir / name).write_text(text)

    @property
    def invocation(self) -> str:
        """How a command the tool suggests starts: the hub flags these runs give."""
        return f"reconciler --api-url local --local-db {self.db}"

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = run(["--api-url", "local", "--local-db", self.db, *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def apply(self, *args: str) -> tuple[int, str, str]:
        return self.run("apply", str(self.dir), *args)

    def sessions(self) -> list[dict[str, Any]]:
        code, out, err = self.run(
            "sessions", "list", "--all", "--include-archived", "--format", "json"
        )
        assert code == 0, err
        items: list[dict[str, Any]] = json.loads(out)["sessions"]["websocket"]
        return items


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.setattr(apply_cli, "_stdin_is_terminal", lambda: False)
    return Cli(tmp_path, capsys)


LINE = re.compile(r"^\[(\d+)/(\d+)\] \+ (\w+) created (codesess_\w+) \d+\.\ds$")


def test_without_a_terminal_it_needs_yes(cli: Cli) -> None:
    cli.write(session("alpha"))
    code, out, err = cli.apply()
    assert code == 64
    assert "+ alpha: create" in out  # the plan is still shown
    assert "pass --yes" in err
    code, out, err = cli.apply("--yes")
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("[")]
    assert len(lines) == 1 and LINE.match(lines[0]), err
    assert "Apply complete: 1 succeeded, 0 failed, 0 skipped (1 action," in err
    assert cli.run("plan", str(cli.dir), "--detailed-exitcode")[0] == 0


def test_no_changes_says_so(cli: Cli) -> None:
    cli.write(session("alpha"))
    assert cli.apply("--yes")[0] == 0
    code, out, err = cli.apply()  # no --yes needed: nothing to confirm
    assert code == 0, err
    assert "No changes." in out


@pytest.mark.parametrize(("answer", "created"), [("y\n", 1), ("n\n", 0)])
def test_terminal_confirmation(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, answer: str, created: int
) -> None:
    monkeypatch.setattr(apply_cli, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(answer))
    cli.write(session("alpha"))
    code, out, err = cli.apply()
    assert code == 0, err
    assert "Apply this 1 action? [y/N]" in err
    assert len([s for s in cli.sessions() if "demo" in s.get("tags", [])]) == created


def test_json_report_on_stdout(cli: Cli) -> None:
    cli.write(session("alpha") + session("beta"))
    code, out, err = cli.apply("--yes", "--format", "json")
    assert code == 0, err
    report = json.loads(out)  # stdout holds only the report; the plan went to stderr
    assert "+ alpha: create" in err
    assert [(r["kind"], r["name"], r["outcome"]) for r in report["results"]] == [
        ("create", "alpha", "succeeded"),
        ("create", "beta", "succeeded"),
    ]
    assert all(
        r["sessionId"].startswith("codesess_") and r["error"] is None for r in report["results"]
    )
    assert report["summary"]["succeeded"] == 2 and report["interrupted"] is False


def _forge(path: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Edit a saved plan and recompute its checksum, as an attacker would."""
    document = json.loads(path.read_text())
    edit(document)
    document["checksum"] = checksum(document)
    path.write_text(json.dumps(document))


def _labels(cli: Cli) -> dict[str, str]:
    return {s["label"]: s["status"] for s in cli.sessions()}


def test_a_saved_plan_is_applied_without_asking_and_names_where(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.write(session("alpha") + session("beta"))
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    # On a terminal too: the saved plan was the one reviewed (as Terraform's apply PLANFILE).
    monkeypatch.setattr(apply_cli, "_stdin_is_terminal", lambda: True)
    code, out, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 0, err
    assert "Apply this" not in err and "Apply complete: 2 succeeded" in err
    assert out.splitlines()[0] == f"Project demo, org org_local, endpoint local ({cli.db})"


def test_a_saved_plan_applies_once(cli: Cli, tmp_path: Path) -> None:
    cli.write(session("alpha") + session("beta"))
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    assert cli.run("apply", "--plan", saved, str(cli.dir))[0] == 0
    code, out, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 4, err
    assert (
        "its action 1, `create alpha`, is not in a fresh plan (0 actions now: applied already?)"
        in err
    )
    assert len(cli.sessions()) == 2


def test_a_saved_plan_is_not_replayed_after_apply_and_revert(cli: Cli, tmp_path: Path) -> None:
    cli.write(session("alpha"))
    assert cli.apply("--yes")[0] == 0
    cli.write(session("alpha", label="Alpha 2"))
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    assert cli.run("apply", "--plan", saved, str(cli.dir))[0] == 0
    cli.write(session("alpha"))  # back to what git had, and applied: the hub is as before
    assert cli.apply("--yes")[0] == 0
    assert _labels(cli) == {"Alpha": "active"}
    code, _, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 4, err
    assert (
        "its action 1, `update alpha`, is not in a fresh plan (0 actions now: applied already?)"
        in err
    )
    assert _labels(cli) == {"Alpha": "active"}


@pytest.mark.parametrize(
    ("variable", "canary", "refusal"),
    [
        # The tool's own credential: no manifests can reference it at all.
        (
            "AGENTUITY_SDK_KEY",
            "canary-token-forged-0b1e",
            "no manifests make it: create alpha: the plan references AGENTUITY_SDK_KEY",
        ),
        # An ordinary variable: the fresh plan has no such env.
        (
            "SOME_SETTING",
            "canary-setting-7c1d",
            "its action 1, `create alpha`, differs from a fresh plan's in body.env",
        ),
    ],
)
def test_a_forged_env_is_refused_though_its_checksum_was_recomputed(
    cli: Cli,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    canary: str,
    refusal: str,
) -> None:
    monkeypatch.setenv(variable, canary)
    cli.write(session("alpha"))
    saved = tmp_path / "plan.json"
    assert cli.run("plan", str(cli.dir), "--out", str(saved))[0] == 0

    def inject(document: dict[str, Any]) -> None:
        document["actions"][0]["body"]["env"] = {"STOLEN": f"${{env:{variable}}}"}

    _forge(saved, inject)
    code, _, err = cli.run("apply", "--plan", str(saved), str(cli.dir))
    assert code == 4, err
    assert refusal in err
    assert canary not in err
    assert cli.sessions() == []


def test_an_edited_label_is_refused(cli: Cli, tmp_path: Path) -> None:
    cli.write(session("alpha"))
    assert cli.apply("--yes")[0] == 0
    cli.write(session("alpha", label="Alpha 2"))
    saved = tmp_path / "plan.json"
    assert cli.run("plan", str(cli.dir), "--out", str(saved))[0] == 0

    def relabel(document: dict[str, Any]) -> None:
        document["actions"][0]["body"]["label"] = "pwned"
        document["actions"][0]["changes"][0]["after"] = "pwned"

    _forge(saved, relabel)
    code, _, err = cli.run("apply", "--plan", str(saved), str(cli.dir))
    assert code == 4, err
    assert "its action 1, `update alpha`, differs from a fresh plan's in body.label, changes" in err
    assert _labels(cli) == {"Alpha": "active"}
    # Edited without recomputing the checksum: corruption, refused before anything else.
    saved.write_text(saved.read_text().replace("pwned", "Alpha 3"))
    code, _, err = cli.run("apply", "--plan", str(saved), str(cli.dir))
    assert code == 4 and "fails its checksum" in err  # edited: not a plan to apply


def test_a_saved_plan_cannot_ask_alone_to_destroy_or_replace(cli: Cli, tmp_path: Path) -> None:
    """A reviewed "No changes" plan, its inputs and actions rewritten into a destroy of
    alpha (all of it what a genuine `plan --destroy --target alpha` saves) and its
    checksum made again: the fresh plan from those inputs agrees, so the apply must ask
    for --destroy itself. The same for --replace."""
    cli.write(session("alpha") + session("beta"))
    assert cli.apply("--yes")[0] == 0
    reviewed, destroying, replacing = (tmp_path / f for f in ("a.json", "d.json", "r.json"))
    assert cli.run("plan", str(cli.dir), "--out", str(reviewed))[0] == 0
    for saved, flags in ((destroying, ["--destroy"]), (replacing, ["--replace", "alpha"])):
        code, _, err = cli.run(
            "plan", str(cli.dir), "--target", "alpha", *flags, "--out", str(saved)
        )
        assert code == 0, err
    genuine = json.loads(destroying.read_text())

    def to_destroy(document: dict[str, Any]) -> None:
        document["inputs"], document["actions"] = genuine["inputs"], genuine["actions"]

    _forge(reviewed, to_destroy)
    code, out, err = cli.run("apply", "--plan", str(reviewed), str(cli.dir), "--yes")
    assert code == 4, err
    made = f"{cli.dir} --destroy --target alpha"
    assert (
        f"it was made from {made}, and this apply gives {cli.dir}: a saved plan applies only "
        "with what it was made from given again"
    ) in err
    # The file's record is shown as a question, never as the thing to type.
    assert (
        f"If {made} is what the plan you reviewed was made from, apply it with that: "
        f"`{cli.invocation} apply --plan {reviewed} {made}`; if not, make a new plan"
    ) in err
    assert _labels(cli) == {"Alpha": "active", "Beta": "active"}
    code, _, err = cli.run("apply", "--plan", str(replacing), str(cli.dir), "--yes")
    assert code == 4
    assert f"it was made from {cli.dir} --replace alpha --target alpha, and this apply" in err
    code, _, err = cli.run(
        "apply", "--plan", str(replacing), str(cli.dir), "--yes", "--target", "alpha"
    )
    assert code == 4
    assert f"and this apply gives {cli.dir} --target alpha:" in err
    assert sorted(_labels(cli).items()) == [("Alpha", "active"), ("Beta", "active")]
    # Asked for by the apply, as reviewed (its scope too): applied.
    code, _, err = cli.run(
        "apply", "--plan", str(destroying), str(cli.dir), "--yes", "--destroy", "--target", "alpha"
    )
    assert code == 0, err
    assert _labels(cli) == {"Alpha": "archived", "Beta": "active"}


def test_a_saved_plan_cannot_choose_its_paths_alone(cli: Cli, tmp_path: Path) -> None:
    """The reviewed plan of the folder, its inputs and actions rewritten into the plan of
    two of its files (what a genuine `plan project.yaml a.yaml` saves: beta, left out,
    archived by prune) and its checksum made again: the apply names the folder, so it is
    refused; only an apply that names those files applies it."""
    cli.write(session("alpha"), "a.yaml")
    cli.write(session("beta"), "b.yaml")
    assert cli.apply("--yes")[0] == 0
    reviewed, narrow = tmp_path / "reviewed.json", tmp_path / "narrow.json"
    assert cli.run("plan", str(cli.dir), "--out", str(reviewed))[0] == 0
    files = [str(cli.dir / "project.yaml"), str(cli.dir / "a.yaml")]
    code, _, err = cli.run("plan", *files, "--force", "--out", str(narrow))
    assert code == 0, err
    genuine = json.loads(narrow.read_text())
    assert [a["kind"] for a in genuine["actions"]] == ["archive"]

    def to_narrow(document: dict[str, Any]) -> None:
        document["inputs"], document["actions"] = genuine["inputs"], genuine["actions"]

    _forge(reviewed, to_narrow)
    for given in ([str(cli.dir)], []):
        code, _, err = cli.run("apply", "--plan", str(reviewed), *given, "--yes", "--force")
        assert code == 4, err
        assert f"it was made from {' '.join(sorted(files))}, and this apply gives" in err
    assert _labels(cli) == {"Alpha": "active", "Beta": "active"}
    code, _, err = cli.run("apply", "--plan", str(narrow), *files, "--yes", "--force")
    assert code == 0, err
    assert _labels(cli) == {"Alpha": "active", "Beta": "archived"}


def test_a_saved_plan_is_planned_again_from_the_apply_s_paths_never_the_file_s(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`m/../m` is `m` to a text compare, and another folder to the reader when `m` is a
    symbolic link: a file recording it (made by `plan m/../m`, the checksum its own)
    passed the check and planned the other folder. The fresh plan is the apply's."""
    work = tmp_path / "work"
    for folder, name in (("prod", "good"), ("m", "evil")):
        (work / "envs" / folder).mkdir(parents=True)
        (work / "envs" / folder / "p.yaml").write_text(PROJECT + session(name))
    (work / "m").symlink_to(work / "envs" / "prod")
    monkeypatch.chdir(work)
    reviewed, forged = tmp_path / "reviewed.json", tmp_path / "forged.json"
    assert cli.run("plan", "m", "--out", str(reviewed))[0] == 0
    code, out, _ = cli.run("plan", "m/../m", "--out", str(forged))
    assert code == 0 and "+ evil: create" in out
    code, _, err = cli.run("apply", "--plan", str(forged), "m", "--yes")
    assert code == 4, err
    assert "`create evil`" in err, err
    assert cli.sessions() == []
    assert cli.run("apply", "--plan", str(reviewed), "m", "--yes")[0] == 0
    assert _labels(cli) == {"Good": "active"}


def test_the_apply_plan_out_prints_runs_as_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`plan --out` names the hub and org as they were given: flags on the command line
    are in the apply it prints (without them it would ask another hub, or none), and
    that command, run as printed, applies; those the environment gave are left to it."""
    for name in ("CODER_API_URL", "AGENTUITY_ORG_ID", "AGENTUITY_SDK_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "project.yaml").write_text(PROJECT)
    (tmp_path / "m" / "s.yaml").write_text(session("alpha"))
    hub = ["--api-url", "local", "--org", "org_local", "--local-db", "alt hub.sqlite3"]
    capsys.readouterr()
    assert run([*hub, "plan", "m", "--out", "p.json"]) == 0
    err = capsys.readouterr().err
    printed = re.search(r"apply it with `([^`]*)`", err)
    assert printed is not None, err
    words = shlex.split(printed.group(1))
    assert words[:8] == ["reconciler", *hub, "apply"], words
    assert run([*words[1:], "--yes"]) == 0, capsys.readouterr().err
    assert run([*hub, "plan", "m", "--detailed-exitcode"]) == 0  # applied: nothing left
    # A URL that did not choose the hub was never checked: never echoed (credentials).
    capsys.readouterr()
    unused = ["--coder-url", "https://ci:s3cr3t-canary@hub.example"]
    assert run([*hub, *unused, "plan", "m", "--out", "u.json"]) == 0
    err = capsys.readouterr().err
    assert "s3cr3t-canary" not in err and "apply it with `reconciler --api-url local" in err
    # From the environment: not repeated (the environment that gave it gives it again).
    monkeypatch.setenv("CODER_API_URL", "local")
    capsys.readouterr()
    assert run(["--local-db", "alt hub.sqlite3", "plan", "m", "--out", "q.json"]) == 0
    assert "apply it with `reconciler --local-db 'alt hub.sqlite3' apply --plan q.json m" in (
        capsys.readouterr().err
    )


def test_expect_checksum_ties_the_apply_to_the_file_reviewed(cli: Cli, tmp_path: Path) -> None:
    """The hub moved after the review (an extra session another checkout made): the
    reviewed file is refused as stale, and a file rewritten to the fresh plan of what the
    hub became (its checksum made again) would pass every check of the file alone. The
    checksum `plan --out` printed, given to the apply, refuses it (4)."""
    cli.write(session("alpha"))
    assert cli.apply("--yes")[0] == 0
    cli.write(session("alpha", label="Alpha 2"))
    reviewed = tmp_path / "reviewed.json"
    code, _, err = cli.run("plan", str(cli.dir), "--out", str(reviewed))
    assert code == 0, err
    printed = json.loads(reviewed.read_text())["checksum"]
    # The whole command that applies it, as it must be given: the hub flags too.
    suggested = f"{cli.invocation} apply --plan {reviewed} {cli.dir} --expect-checksum {printed}"
    assert f"Saved the plan to {reviewed}, checksum {printed}: apply it with `{suggested}`." in err
    cli.write(session("alpha", label="Alpha 2") + session("beta"))  # what was not reviewed
    fresh = tmp_path / "fresh.json"
    assert cli.run("plan", str(cli.dir), "--out", str(fresh))[0] == 0
    reviewed.write_text(fresh.read_text())  # the artifact replaced, checksum its own
    code, _, err = cli.run(
        "apply", "--plan", str(reviewed), str(cli.dir), "--expect-checksum", printed
    )
    assert code == 4
    assert f"and --expect-checksum says {printed}: it is not the file that was reviewed" in err
    assert _labels(cli) == {"Alpha": "active"}
    # Given without `sha256:` or in capitals, the same; without --plan, a usage error.
    bare = printed.removeprefix("sha256:").upper()
    code, _, err = cli.run("apply", "--plan", str(fresh), str(cli.dir), "--expect-checksum", bare)
    assert code == 4 and "it is not the file that was reviewed" in err
    fresh_sum = json.loads(fresh.read_text())["checksum"].removeprefix("sha256:").upper()
    assert (
        cli.run("apply", "--plan", str(fresh), str(cli.dir), "--expect-checksum", fresh_sum)[0] == 0
    )
    assert cli.run("apply", str(cli.dir), "--expect-checksum", printed)[0] == 64
    # No checksum at all (a typo, a truncated copy, sha256sum of the file's bytes): a
    # usage error saying what is wanted, never "not the file reviewed".
    for wrong in ("é", "", printed[:20], hashlib.sha256(fresh.read_bytes()).hexdigest() + "0"):
        code, _, err = cli.run(
            "apply", "--plan", str(fresh), str(cli.dir), "--expect-checksum", wrong
        )
        assert code == 64 and "Traceback" not in err, wrong
        assert "--expect-checksum takes the checksum `plan --out` printed" in err


def test_a_saved_plan_of_other_manifests_is_refused(cli: Cli, tmp_path: Path) -> None:
    cli.write(session("alpha"))
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    cli.write(session("alpha") + session("beta"))  # the manifests moved on since the review
    code, _, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 4, err
    assert "a fresh plan would also `create beta`, which it does not hold" in err
    cli.write(session("alpha", label="Other"))
    code, _, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 4 and "`create alpha`, differs from a fresh plan's in body.label" in err
    assert cli.sessions() == []


def test_a_saved_plan_applied_away_from_its_manifests_says_where_to_run_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.write(session("alpha"))
    monkeypatch.chdir(tmp_path)
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", "manifests", "--out", saved)[0] == 0
    monkeypatch.chdir(cli.dir)
    code, _, err = cli.run("apply", "--plan", saved, "manifests")
    assert (code, err) == (
        64,
        f"error: saved plan {saved} was made from manifests, which is not here: run apply "
        "--plan from the folder where plan ran\n",
    )
    monkeypatch.chdir(tmp_path)
    assert cli.run("apply", "--plan", saved, "manifests")[0] == 0


def test_a_saved_plan_refused_when_a_session_changed(cli: Cli, tmp_path: Path) -> None:
    cli.write(session("alpha") + session("beta"))
    assert cli.apply("--yes")[0] == 0
    cli.write(session("alpha", label="Alpha 2") + session("beta", label="Beta 2"))
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    beta = next(s for s in cli.sessions() if s.get("label") == "Beta")
    code, _, err = cli.run("sessions", "update", beta["sessionId"], "--label", "by hand")
    assert code == 0, err
    code, out, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 4
    assert (
        "its action 2, `update beta`, differs from a fresh plan's in changes, precondition" in err
    )
    # Nothing was applied: the whole plan is refused.
    assert _labels(cli) == {"Alpha": "active", "by hand": "active"}


def test_a_saved_plan_records_each_change_s_cause_and_applies_when_it_is_the_same(
    cli: Cli, tmp_path: Path
) -> None:
    cli.write(session("alpha") + session("beta"))
    assert cli.apply("--yes")[0] == 0
    cli.write(session("alpha", label="Alpha 2") + session("beta"))  # in the manifests
    beta = next(s for s in cli.sessions() if s.get("label") == "Beta")
    assert cli.run("sessions", "update", beta["sessionId"], "--label", "by hand")[0] == 0
    saved = tmp_path / "plan.json"
    assert cli.run("plan", str(cli.dir), "--out", str(saved))[0] == 0
    causes = {
        a["name"]: [c["cause"] for c in a["changes"]]
        for a in json.loads(saved.read_text())["actions"]
    }
    assert causes == {"alpha": ["manifest"], "beta": ["drift"]}
    # A cause is part of the reviewed change: one forged is refused like any other member.
    forged = tmp_path / "forged.json"
    shutil.copy(saved, forged)

    def recause(document: dict[str, Any]) -> None:
        document["actions"][1]["changes"][0]["cause"] = "manifest"

    _forge(forged, recause)
    code, _, err = cli.run("apply", "--plan", str(forged), str(cli.dir))
    assert code == 4, err
    assert "its action 2, `update beta`, differs from a fresh plan's in changes" in err
    assert _labels(cli) == {"Alpha": "active", "by hand": "active"}
    # The plan as made: a fresh plan finds the same causes, and it applies.
    code, _, err = cli.run("apply", "--plan", str(saved), str(cli.dir))
    assert code == 0, err
    assert _labels(cli) == {"Alpha 2": "active", "Beta": "active"}


def test_a_saved_plan_for_another_endpoint_is_refused_before_any_request(
    cli: Cli, tmp_path: Path
) -> None:
    cli.write(session("alpha"))
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    other = tmp_path / "other" / "hub.sqlite3"
    code = run(
        ["--api-url", "local", "--local-db", str(other), "apply", "--plan", saved, str(cli.dir)]
    )
    err = cli.capsys.readouterr().err
    assert code == 4, err
    assert f"made against local ({cli.db}), and this run is against local ({other})" in err
    assert not other.parent.exists()  # nothing opened there


def test_a_saved_plan_never_lands_in_another_org(cli: Cli, tmp_path: Path) -> None:
    cli.write(session("alpha"))
    without_org, with_org = tmp_path / "default-org.json", tmp_path / "org1.json"
    assert cli.run("plan", str(cli.dir), "--out", str(without_org))[0] == 0
    assert cli.run("--org", "org_one", "plan", str(cli.dir), "--out", str(with_org))[0] == 0
    code, _, err = cli.run("--org", "org_other", "apply", "--plan", str(without_org), str(cli.dir))
    assert code == 4 and "made for org org_local, and this run is for org org_other" in err
    code, _, err = cli.run("--org", "org_other", "apply", "--plan", str(with_org), str(cli.dir))
    assert code == 4 and "made for org org_one, and this run is for org org_other" in err
    code, _, err = cli.run("apply", "--plan", str(with_org), str(cli.dir))
    assert code == 4 and "made for org org_one, and this run is for org org_local" in err
    assert cli.sessions() == []
    assert cli.run("--org", "org_one", "apply", "--plan", str(with_org), str(cli.dir))[0] == 0


def test_a_saved_plan_for_another_project_is_refused(cli: Cli, tmp_path: Path) -> None:
    cli.write(session("alpha"))
    saved = tmp_path / "plan.json"
    assert cli.run("plan", str(cli.dir), "--out", str(saved))[0] == 0
    _forge(saved, lambda document: document.update(project="evil"))
    code, _, err = cli.run("apply", "--plan", str(saved), str(cli.dir))
    assert code == 4, err
    assert "made for project evil, and the manifests are project demo" in err
    code, _, err = cli.run("apply", "--plan", str(saved), str(cli.dir), "--project", "other")
    assert code == 4 and "made for project evil, and this run is for project other" in err
    assert cli.sessions() == []


def test_saved_plan_checks_the_run_and_env_before_any_request(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_X", "value-never-shown")
    cli.write(session("alpha", env="SECRET_X"))
    saved = tmp_path / "plan.json"
    assert cli.run("plan", str(cli.dir), "--out", str(saved))[0] == 0
    assert "value-never-shown" not in saved.read_text()
    # Other PATHs, or a --target the plan was not made with: not this plan (4).
    code, _, err = cli.run("apply", "--plan", str(saved), str(tmp_path))
    assert code == 4 and f"it was made from {cli.dir}, and this apply gives {tmp_path}" in err
    assert cli.run("apply", "--plan", str(saved), str(cli.dir), "--target", "alpha")[0] == 4
    monkeypatch.delenv("SECRET_X")
    code, _, err = cli.run("apply", "--plan", str(saved), str(cli.dir))
    assert code == 65 and "SECRET_X" in err
    assert cli.sessions() == []


def test_safety_is_checked_again_and_force_lifts_it(cli: Cli) -> None:
    cli.write(session("alpha") + session("beta"))
    assert cli.apply("--yes")[0] == 0
    (cli.dir / "sessions.yaml").unlink()  # removing every managed session
    code, out, err = cli.apply("--yes")
    assert code == 3 and "removeAll" in err
    code, out, err = cli.apply("--yes", "--force")
    assert code == 0, err
    assert err.count(" archived codesess_") == 2


def test_unset_env_stops_before_any_write(cli: Cli) -> None:
    cli.write(session("alpha", env="NOT_SET_ANYWHERE"))
    code, _, err = cli.apply("--yes")
    assert code == 65 and "NOT_SET_ANYWHERE" in err
    assert cli.sessions() == []


def test_an_env_value_that_is_not_utf8_stops_before_any_write_naming_the_variable(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bytes that are not UTF-8 (Python passes them on as lone surrogates): was "an
    # argument or a file given is not valid UTF-8 text", naming nothing.
    monkeypatch.setenv("BAD_BYTES_TOKEN", "canary-bytes\udcffvalue")
    cli.write(session("alpha", env="BAD_BYTES_TOKEN"))
    for command in (["plan"], ["apply", "--yes"]):
        code, out, err = cli.run(*command, str(cli.dir))
        assert code == 65, err
        # Located at the (first) session, as an oversized create is: apply could not
        # send it.
        assert (
            "sessions.yaml:2:1: environment variable(s) not valid UTF-8 text: "
            "BAD_BYTES_TOKEN (used by create alpha); values are not shown"
        ) in err
        assert "canary-bytes" not in out + err
    assert cli.sessions() == []
    # A plain variable in a field (plainEnv): located at the field, the variable named
    # (it said "spec.task holds text that is not valid Unicode", blaming the manifest).
    cli.write(PROJECT.rstrip("\n") + "\nplainEnv: [BAD_BYTES_TOKEN]\n", "project.yaml")
    cli.write(session("alpha").replace("work on alpha", "work on ${env:BAD_BYTES_TOKEN}"))
    code, out, err = cli.run("validate", str(cli.dir))
    assert code == 65, err
    assert (
        "sessions.yaml:6:9: spec.task: environment variable(s) not valid UTF-8 text: "
        "BAD_BYTES_TOKEN; values are not shown"
    ) in err
    assert err.count("error:") == 1  # said once
    assert "canary-bytes" not in out + err


def test_a_plain_variable_that_is_not_utf8_is_said_once_at_its_reference(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An enum field (was said twice, the second time as a bad enum value), a list (was
    # placed at the spec's first key), Project defaults (was said once per session).
    monkeypatch.setenv("BAD_PLAIN", "canary-plain\udcff")
    cli.write(
        PROJECT + "plainEnv: [BAD_PLAIN]\ndefaults: {label: 'L ${env:BAD_PLAIN}'}\n",
        "project.yaml",
    )
    doc = (
        "---\napiVersion: reconciler/v1\nkind: Session\nname: {name}\nspec:\n"
        "  task: work on {name}\n"
        "  visibility: '${{env:BAD_PLAIN}}'\n"
        "  tags:\n    - fine\n    - 't-${{env:BAD_PLAIN}}'\n"
    )
    cli.write(doc.format(name="alpha") + doc.format(name="beta"))
    code, out, err = cli.run("validate", str(cli.dir))
    assert code == 65, err
    said = [line for line in err.splitlines() if line.startswith("error:")]
    bad = "environment variable(s) not valid UTF-8 text: BAD_PLAIN; values are not shown"
    assert [line.split("sessions.yaml:")[1] for line in said] == [
        f"2:1: spec.label: {bad} (value from the Project defaults)",
        f"7:15: spec.visibility: {bad}",
        f"10:7: spec.tags: {bad}",
        f"17:15: spec.visibility: {bad}",
        f"20:7: spec.tags: {bad}",
    ]
    assert "canary-plain" not in out + err


def test_a_saved_plan_names_every_variable_that_is_not_utf8_and_what_needs_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Planned with good values, applied with bad ones: every variable at once, and the
    # actions that need them (it named the first only, and no session).
    monkeypatch.setenv("BAD_ONE", "fine")
    monkeypatch.setenv("BAD_TWO", "fine")
    cli.write(session("alpha", env="BAD_ONE") + session("beta", env="BAD_TWO"))
    saved = tmp_path / "plan.json"
    assert cli.run("plan", str(cli.dir), "--out", str(saved))[0] == 0
    monkeypatch.setenv("BAD_ONE", "canary-one\udcff")
    monkeypatch.setenv("BAD_TWO", "canary-two\udcfe")
    code, out, err = cli.run("apply", "--plan", str(saved), str(cli.dir), "--yes")
    assert code == 65, err
    where = cli.dir / "sessions.yaml"
    assert (
        "environment variable(s) not valid UTF-8 text: BAD_ONE, BAD_TWO (used by create "
        f"alpha at {where}:2, create beta at {where}:11); "
        "values are not shown"
    ) in err
    assert "canary" not in out + err
    assert cli.sessions() == []


def _fake_apply(report: ApplyReport) -> Any:
    async def fake(plan: Any, client: Any, **kw: Any) -> ApplyReport:
        for r in report.results:
            kw["on_result"](r)
        return report

    return fake


def test_apply_examples_then_plan_has_no_changes(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RELEASE_GITHUB_TOKEN", "NPM_TOKEN"):
        monkeypatch.setenv(name, "secret-value-never-shown")
    # The directory itself: its .reconcilerignore keeps the CI recipes out.
    examples = [str(Path(__file__).parent.parent / "examples")]
    code, out, err = cli.run("apply", *examples, "--yes")
    assert code == 0, err
    assert "secret-value-never-shown" not in out + err
    assert cli.run("plan", *examples, "--detailed-exitcode")[0] == 0


def test_partial_failure_exits_1_and_interrupt_130(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.write(session("alpha"))
    a = Action("create", "alpha")
    failed = ApplyReport((ActionResult(a, "failed", error="HTTP 400"),))
    monkeypatch.setattr(applyrun, "apply_plan", _fake_apply(failed))
    code, _, err = cli.apply("--yes")
    assert code == 1
    assert "[1/1] + alpha FAILED: HTTP 400" in err
    assert "error: 1 action(s) failed: create alpha" in err
    stopped = ApplyReport(
        (ActionResult(a, "skipped", error="not started: interrupted"),), interrupted=True
    )
    monkeypatch.setattr(applyrun, "apply_plan", _fake_apply(stopped))
    code, out, err = cli.apply("--yes", "--format", "json")
    assert code == 130
    assert json.loads(out)["interrupted"] is True  # the report is still printed
    assert "Apply interrupted" in err


async def test_ctrl_c_sets_the_stop_event_then_cancels_the_task() -> None:
    stop = asyncio.Event()

    async def running() -> None:
        await asyncio.sleep(10)

    task = asyncio.ensure_future(running())
    with apply_cli._ctrl_c_stops(stop, task):
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.wait_for(stop.wait(), 2)
        assert not task.done()  # the first press only stops new actions
        os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(asyncio.CancelledError):
            await task
    assert stop.is_set()


def test_apply_lists_and_writes_through_one_client(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.client.core import CoderClient

    opened: list[CoderClient] = []
    real_init = CoderClient.__init__

    def counting(self: CoderClient, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(CoderClient, "__init__", counting)
    cli.write(session("alpha") + session("beta"))
    code, _, err = cli.apply("--yes")
    assert code == 0, err
    assert len(opened) == 1  # the listing's connections serve the creates too
    # One list page, two creates, one listing of the markers written (duplicates).
    assert opened[0].request_count == 4
    assert err.count(" created codesess_") == 2


@pytest.mark.parametrize("command", ["plan", "apply", "apply --plan", "status"])
def test_the_endpoint_is_resolved_once_per_command(
    command: str, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.write(session("alpha"))
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    calls: list[str] = []
    local = connect._local  # what every resolution of `--api-url local` builds

    def counted(opts: Any) -> Any:
        calls.append("resolve")
        return local(opts)

    monkeypatch.setattr(connect, "_local", counted)
    argv = {
        "plan": ["plan", str(cli.dir)],
        "apply": ["apply", str(cli.dir), "--yes"],
        "apply --plan": ["apply", "--plan", saved, str(cli.dir)],
        "status": ["status", str(cli.dir)],
    }[command]
    code, _, err = cli.run(*argv)
    assert code == 0, err
    assert calls == ["resolve"]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_a_saved_plan_applies_at_a_later_commit_of_the_same_manifests(
    cli: Cli, tmp_path: Path
) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(cli.dir), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return done.stdout.strip()

    cli.write(session("alpha"))
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "reviewed")
    reviewed = git("rev-parse", "HEAD")
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    (cli.dir / "README.txt").write_text("merged\n")  # a merge commit: manifests unchanged
    git("add", ".")
    git("commit", "-qm", "merge")
    merged = git("rev-parse", "HEAD")
    # A commit edited into the file (its checksum made again) is never recorded: the
    # checkout's is, where apply runs.
    assert json.loads(Path(saved).read_text())["commit"] == reviewed
    forged = "0123456789abcdef0123456789abcdef01234567"
    text = Path(saved).read_text().replace(reviewed, forged)
    Path(saved).write_text(text)
    _forge(Path(saved), lambda document: None)
    code, _, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 0, err
    [created] = cli.sessions()
    code, out, err = cli.run("sessions", "get", created["sessionId"], "--format", "json")
    assert code == 0, err
    assert json.loads(out)["metadata"]["reconciler"]["commit"] == merged


def test_a_saved_plan_applies_after_a_comment_moves_its_lines_or_its_tags_are_reordered(
    cli: Cli, tmp_path: Path
) -> None:
    # A merge that shifts the lines above a pending create, or a tag list written in
    # another order, changes nothing a create does: the plan still applies, recording
    # the declaration's place as the checkout has it.
    cli.write(session("alpha").replace("tags: [demo]", "tags: [demo, ops]"))
    saved = str(tmp_path / "plan.json")
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    edited = "# reviewed by ops\n# and by security\n" + session("alpha").replace(
        "tags: [demo]", "tags: [ops, demo]"
    )
    cli.write(edited)
    code, _, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 0, err
    [created] = cli.sessions()
    code, out, err = cli.run("sessions", "get", created["sessionId"], "--format", "json")
    assert json.loads(out)["metadata"]["reconciler"]["source"].endswith("sessions.yaml:4")
    # A real change is still refused.
    cli.write(edited + session("beta"))
    assert cli.run("plan", str(cli.dir), "--out", saved)[0] == 0
    cli.write(edited + session("beta", label="Other"))
    code, _, err = cli.run("apply", "--plan", saved, str(cli.dir))
    assert code == 4 and "body.label" in err, err


def test_a_saved_plan_of_another_folders_embedded_hub_is_refused(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.write(session("alpha"))
    here, there = tmp_path / "here", tmp_path / "there"
    for folder in (here, there):
        shutil.copytree(cli.dir, folder / "manifests")
    monkeypatch.chdir(here)
    assert run(["--api-url", "local", "plan", "manifests", "--out", "plan.json"]) == 0
    monkeypatch.chdir(there)  # the same relative --local-db is another hub here
    assert run(["--api-url", "local", "apply", "--plan", str(here / "plan.json")]) == 4
    err = capsys.readouterr().err
    assert (
        f"made against local ({here}/.reconciler/hub.sqlite3), and this run is against "
        f"local ({there}/.reconciler/hub.sqlite3)" in err
    )
    assert not (there / ".reconciler").exists()
