"""`reconciler validate [PATH...]`: check manifests offline; no request, no secrets."""

from __future__ import annotations

import json

import click

from reconciler.cli import jsonout
from reconciler.cli.context import (
    echo_manifest_errors,
    format_option,
    pass_options,
    project_option,
)
from reconciler.errors import (
    EXIT_INVALID,
    EXIT_OK,
    ManifestErrors,
    SafetyError,
    SafetyViolation,
)
from reconciler.manifest import Inspection, inspect_manifests
from reconciler.model import PolicyFinding
from reconciler.settings import GlobalOptions

__all__ = ["command"]


def _offline_findings(result: Inspection) -> tuple[PolicyFinding, ...]:
    """The session rules of the Policy documents that need no hub, evaluated."""
    if not result.policies:
        return ()
    from reconciler.policy import compile_policies, evaluate_policies

    compiled = compile_policies(result.policies)
    project = result.project.name if result.project is not None else ""
    return evaluate_policies(compiled, project=project, desired=result.sessions)


def _refusals(findings: tuple[PolicyFinding, ...]) -> list[SafetyViolation]:
    if not findings:
        return []
    # Here only: the planner package brings deepdiff, which validate otherwise skips.
    from reconciler.planner.safety import policy_violations

    return policy_violations(findings)


NO_PROJECT_NOTE = (
    "no Project document among these files: plan and apply need one "
    "(or --project NAME); the sessions were checked alone"
)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path())
@format_option(
    "text",
    "json",
    help="text: warnings on stderr, a summary line; json: one object on stdout.",
    dest="output_format",
)
@project_option
@pass_options
def command(
    opts: GlobalOptions, paths: tuple[str, ...], output_format: str, project_name: str | None
) -> int:
    """Check manifests: YAML, schema, names, ${env:...} syntax (default path `.`), and
    the Policy session rules that need no hub (neither `live` nor `change`).

    Says how many sessions each SessionSet yields.

    Exits 0 when valid (unset variables, env values written literally and warn policies
    are warnings), 3 when a deny
    Policy rule is broken, 65 with every error as file:line:col: message (a Policy
    rule that does not compile too). Sends no request and needs no secrets.
    """
    try:
        result = inspect_manifests(paths or ["."], environ=opts.environ, project_name=project_name)
        findings = _offline_findings(result)
    except ManifestErrors as exc:
        if output_format != "json":
            raise
        echo_manifest_errors(exc)  # on stderr as well, as every command says them
        errors = [e.to_dict() for e in exc.problems()]
        warned = [w.to_dict() for w in exc.warnings]
        jsonout.echo(json.dumps({"valid": False, "errors": errors, "warnings": warned}, indent=2))
        return EXIT_INVALID
    sets = [
        {"name": s.name, "file": s.file, "line": s.line, "sessions": s.sessions}
        for s in result.sets
    ]
    refused = _refusals(findings)
    # Fine for a hook that checks one file at a time; `plan` would refuse the folder.
    no_project = result.project is None and project_name is None and bool(result.sessions)
    if output_format == "json":
        warnings = [w.to_dict() for w in result.warnings]
        # Valid means what exit 0 means: a deny Policy refuses the manifests (exit 3).
        doc: dict[str, object] = {
            "valid": not refused,
            "errors": [],
            "warnings": warnings,
            "sets": sets,
        }
        if no_project:
            doc["notes"] = [NO_PROJECT_NOTE]
        if findings:
            from reconciler.planfile import finding_to_dict

            doc["policyFindings"] = [finding_to_dict(f) for f in findings]
        if refused:
            doc["refusals"] = [violation.to_dict() for violation in refused]
        jsonout.echo(json.dumps(doc, indent=2))
        if refused:
            raise SafetyError(refused)
        return EXIT_OK
    for warning in result.warnings:
        click.echo(f"warning: {warning.located()}", err=True)
    if findings:
        from reconciler.render.findings import finding_line

        for finding in findings:
            if not finding.refuses:
                click.echo(f"warning: policy: {finding_line(finding)}", err=True)
    if refused:
        raise SafetyError(refused)
    if no_project:
        click.echo(f"note: {NO_PROJECT_NOTE}", err=True)
    project = "1 project" if result.project is not None else "no project"
    click.echo(
        f"OK: {project}, {_plural(len(result.sessions), 'session')} in "
        f"{_plural(len(result.files), 'file')}"
    )
    for summary in result.sets:
        click.echo(
            f"  SessionSet {summary.name} ({summary.file}:{summary.line}): "
            f"{_plural(summary.sessions, 'session')}"
        )
    return EXIT_OK
