"""`reconciler plan`: show what apply would change; optionally save it for apply."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from reconciler import asyncrun, gctune
from reconciler.cli import jsonout
from reconciler.cli.context import (
    format_option,
    hub_endpoint,
    override_policy_option,
    pass_options,
    plan_shape_options,
    project_option,
    scope_options,
)
from reconciler.errors import EXIT_CHANGES, EXIT_OK, ReconcilerError, SafetyError
from reconciler.model import Plan
from reconciler.pipeline import build_plan
from reconciler.planfile import (
    PlanInputs,
    command_line,
    credential_fingerprint,
    inputs_arguments,
    write_plan,
)
from reconciler.planner import refusals
from reconciler.planner.scope import ScopeFlags
from reconciler.render import PLAN_FORMATS, render_plan_as, render_plan_markdown
from reconciler.settings import GlobalOptions

__all__ = ["command"]


@click.command("plan")
@click.argument("paths", nargs=-1, type=click.Path())
@project_option
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Save the plan for `apply --plan FILE`."
)
@format_option(*PLAN_FORMATS, help="Output format on stdout.", dest="output_format")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 0 without changes, 2 with changes.")
@scope_options
@plan_shape_options
@click.option("--force", is_flag=True, help="Override safety rules (never preventDestroy).")
@override_policy_option
@pass_options
def command(
    opts: GlobalOptions,
    paths: tuple[str, ...],
    project_name: str | None,
    out: str | None,
    output_format: str,
    detailed_exitcode: bool,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    selectors: tuple[str, ...],
    replace: tuple[str, ...],
    destroy: bool,
    force: bool,
    overrides: tuple[str, ...],
) -> int:
    """Show what `apply` would change on the hub for the manifests under PATH (default .).

    Exit codes: 0 success (with --detailed-exitcode: no changes), 2 changes (only with
    --detailed-exitcode), 3 refused by a safety rule or a deny Policy, 64 usage error
    (an unknown --target, --exclude, --selector, --replace or --override-policy name, or
    no hub configured), 65 invalid manifests, a Policy rule that does not compile, or
    unset variables, 1 any other error.

    --out saves the plan with what it was made from (PATHs, --project, the scope, the
    overrides) and prints its checksum: `apply --plan FILE`, given the same PATHs and
    flags (and --expect-checksum with that checksum), applies only what this plan shows.
    """
    endpoint = hub_endpoint(opts)
    with gctune.bulk_allocation():
        context = asyncrun.run(
            build_plan(
                opts,
                paths,
                endpoint=endpoint,
                flags=ScopeFlags(targets, excludes, selectors, replace, destroy),
                project_name=project_name,
                overrides=overrides,
                to_apply=True,  # what apply would do: a create it cannot send refuses it
            )
        )
    for warning in (*map(str, context.load.warnings), *context.notes):
        click.echo(f"warning: {warning}", err=True)
    plan = context.plan
    refused = refusals(plan, context.desired, force=force)
    saved_as = apply_hint = None
    if out and not refused:
        # Saved before it is shown: a plan that cannot be saved fails the run before
        # stdout holds a plan a pipeline would take for saved.
        inputs = PlanInputs(
            paths=tuple(paths),
            project_name=project_name,
            targets=tuple(targets),
            excludes=tuple(excludes),
            selectors=tuple(selectors),
            replace=tuple(replace),
            destroy=destroy,
            overrides=tuple(overrides),
            # No org named: the token's own org is where it applies.
            credential=credential_fingerprint(endpoint.token) if plan.org_id is None else None,
        )
        saved_as = _save(plan, out, inputs)
        # The whole command that applies this file, as it must be given (its PATHs and
        # flags again; --force is never recorded, so it is said when this plan had it).
        again = command_line(inputs_arguments(inputs)) + (" --force" if force else "")
        start = opts.invocation(endpoint.options)
        apply_hint = (
            f"apply it with `{start} apply --plan {shlex.quote(out)} {again} "
            f"--expect-checksum {saved_as}`"
        )
    rendered = render_plan_as(plan, output_format, color=opts.color(), refusals=refused)
    if output_format == "json":
        jsonout.echo(rendered)
    else:
        click.echo(rendered, nl=False)
    summary_file = opts.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        try:
            with Path(summary_file).open("a", encoding="utf-8") as fh:
                fh.write(render_plan_markdown(plan, refusals=refused) + "\n")
                if saved_as is not None:  # what an approver of the saved file checks
                    fh.write(f"Saved as `{out}`, checksum `{saved_as}`.\n")
        except OSError as exc:  # the job summary is a courtesy: the plan stands
            reason = exc.strerror or type(exc).__name__
            click.echo(
                f"warning: could not add the plan to GITHUB_STEP_SUMMARY ({summary_file}): "
                f"{reason}",
                err=True,
            )
    # After rendering, so a refused plan is still shown in full (and never saved).
    if refused:
        if out:
            older = " (the file there is left as it was)" if Path(out).exists() else ""
            click.echo(f"Not saved to {out}: a refused plan is never saved{older}.", err=True)
        raise SafetyError(refused)
    if out:
        # The checksum ties the apply to this file: where the file is kept, anyone who
        # can edit it can make its checksum again; what was printed here they cannot.
        click.echo(f"Saved the plan to {out}, checksum {saved_as}: {apply_hint}.", err=True)
    if detailed_exitcode and plan.has_changes:
        return EXIT_CHANGES
    return EXIT_OK


def _save(plan: Plan, out: str, inputs: PlanInputs) -> str:
    """Write the plan to ``out``; its checksum."""
    try:
        return write_plan(plan, out, inputs)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ReconcilerError(f"could not save the plan to {out}: {reason}") from None
