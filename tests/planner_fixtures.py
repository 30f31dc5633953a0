"""Hand-built desired and observed values for planner, render and planfile tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.model import (
    DesiredSession,
    Lifecycle,
    Marker,
    Policy,
    Project,
    RemoteSession,
    SourceLocation,
)
from reconciler.planner.applied import applied_tag
from reconciler.planner.body import create_body

PROJECT = "platform"


def project(**policy: Any) -> Project:
    return Project(name=PROJECT, org_id="org_test", policy=Policy(**policy))


def spec(task: str = "Triage issues", **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "task": task,
        "label": "Triage",
        "agent": "claude-code",
        "visibility": "organization",
        "tags": ["triage"],
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def desired(
    name: str,
    *,
    resolved: dict[str, Any] | None = None,
    state: str = "active",
    prevent_destroy: bool = False,
    ignore: tuple[str, ...] = (),
    line: int = 1,
    **fields: Any,
) -> DesiredSession:
    s = spec(**fields)
    return DesiredSession(
        name=name,
        spec=s,
        resolved=resolved if resolved is not None else s,
        state=state,  # type: ignore[arg-type]
        lifecycle=Lifecycle(prevent_destroy=prevent_destroy, ignore_changes=ignore),
        source=SourceLocation(f"sessions/{name}.yaml", line),
    )


def marker(name: str, h: str, project_name: str = PROJECT) -> str:
    return Marker(project_name, name, h).tag


def remote_for(d: DesiredSession, session_id: str, **options: Any) -> RemoteSession:
    """The session the hub would report for ``d`` created as written (see ``item_for``)."""
    return RemoteSession.from_api(item_for(d, session_id, **options))


def hub_report(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a hub's single-session GET reports of the create-only fields of a session
    made with ``body``: as sent, env values resolved, workflowMode as the hub holds it
    (the record in ``metadata`` included)."""
    report = {k: body[k] for k in ("task", "repo", "repos", "workspaceId", "metadata") if k in body}
    loop = body.get("loop") is not None
    report["workflowMode"] = body.get("workflowMode", "loop" if loop else "standard")
    report["env"] = {key: "resolved-value" for key in body.get("env") or {}}
    return report


def item_for(
    d: DesiredSession,
    session_id: str,
    *,
    status: str = "active",
    hash_: str | None = None,
    project_name: str = PROJECT,
    created_at: str = "2025-01-01T00:00:00Z",
    **overrides: Any,
) -> dict[str, Any]:
    """The list item the hub would report for ``d`` created as written (by this version:
    marker and last-applied record included)."""
    spec_ = d.resolved
    item: dict[str, Any] = {
        "sessionId": session_id,
        "status": status,
        "label": spec_.get("label"),
        "visibility": spec_.get("visibility"),
        "defaultAgent": spec_.get("agent"),
        # As the create wrote them: marker, last-applied record, protection (planner.body).
        "tags": [
            marker(d.name, hash_, project_name) if hash_ and t == d.marker_tag(project_name) else t
            for t in create_body(project_name, d)["tags"]
        ],
        "skills": list(spec_.get("skills", [])),
        "createdAt": created_at,
        "participantCount": 0,
    }
    item.update(overrides)
    return {k: v for k, v in item.items() if v is not None}


def sample_plan_inputs() -> tuple[
    Project, list[DesiredSession], list[RemoteSession], dict[str, Any]
]:
    """One of each action, used by render, planfile and golden tests."""
    proj = project()
    create = desired(
        "api-fix",
        task="Fix the flaky API test",
        env={"GITHUB_TOKEN": "${env:GITHUB_TOKEN}"},
        repo={"fullName": "acme/api", "branch": "main"},
        metadata={"team": "platform"},
        line=3,
    )
    update_d = desired("docs-bot", task="Keep docs current", label="Docs bot", tags=["docs", "new"])
    # Last applied with label "Docs" (the manifest has changed it since) and tags
    # docs, new (someone changed them on the hub since).
    applied = desired("docs-bot", task="Keep docs current", label="Docs", tags=["docs", "new"])
    update_r = remote_for(
        update_d,
        "codesess_docs",
        label="Docs",
        tags=["docs", "old", marker("docs-bot", update_d.spec_hash), applied_tag(PROJECT, applied)],
    )
    old_replace = desired("nightly", task="Triage issues", env={"A": "${env:A}"})
    new_replace = desired("nightly", task="Triage every issue", env={"B": "${env:A}"})
    replace_r = remote_for(old_replace, "codesess_nightly")
    replace_detail = {
        "sessionId": "codesess_nightly",
        "task": "Triage issues",
        "env": {"A": "hub-value"},
        "metadata": {"reconciler": {"project": PROJECT}},
    }
    resume_d = desired("worker", task="Work the queue")
    resume_r = remote_for(resume_d, "codesess_worker", status="paused")
    gone = desired("old-report", task="Weekly report")
    gone_r = remote_for(gone, "codesess_old")
    foreign = remote_for(gone, "codesess_foreign", project_name="other-team")
    return (
        proj,
        [create, update_d, new_replace, resume_d],
        [update_r, replace_r, resume_r, gone_r, foreign],
        {"codesess_nightly": replace_detail},
    )
