"""Property tests of the planner against a simulated hub.

For random desired and observed states: applying the plan to an in-memory hub and
planning again gives an empty plan; no action names a session without this project's
marker; the planner raises nothing but the project's own errors.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import planner
from reconciler.errors import ReconcilerError, UsageError
from reconciler.manifest import load_manifests
from reconciler.manifest.envref import resolve
from reconciler.model import (
    Action,
    DesiredSession,
    Lifecycle,
    Marker,
    Plan,
    Policy,
    Project,
    RemoteSession,
    normalise_visibility,
)
from reconciler.planfile import plan_to_dict
from reconciler.planner.ownership import own_marker
from reconciler.planner.scope import Scope
from reconciler.render import render_plan_markdown, render_plan_text

PROJECT = "platform"
NAMES = ("alpha", "beta", "gamma", "delta", "eps")
ENVIRON = {"LABEL_SUFFIX": "prod", "TOKEN": "s3cret"}
HASHES = ("000000000000", "0123456789ab", "ffffffffffff")

settings.register_profile(
    "convergence",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- the simulated hub ----------------------------------------------------------------


class SimulatedHub:
    """List items and single-session details, changed the way the real hub changes them."""

    def __init__(self, items: Sequence[Mapping[str, Any]], details: Mapping[str, Any]) -> None:
        self.items: dict[str, dict[str, Any]] = {i["sessionId"]: dict(i) for i in items}
        self.details: dict[str, dict[str, Any]] = {k: dict(v) for k, v in details.items()}
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)

    def observed(self) -> list[RemoteSession]:
        return [RemoteSession.from_api(item) for item in self.items.values()]

    def create(self, body: Mapping[str, Any]) -> str:
        session_id = f"codesess_new{next(self._ids)}"
        item: dict[str, Any] = {
            "sessionId": session_id,
            "status": "active",
            "label": body.get("label") or "untitled",
            "visibility": normalise_visibility(body.get("visibility") or "private"),
            "tags": list(dict.fromkeys(body.get("tags") or [])),
            "skills": [dict(s) for s in body.get("skills") or []],
            # Later than anything generated, so a new session is the newest.
            "createdAt": f"2031-01-01T00:00:00.{next(self._clock):06d}Z",
            "participantCount": 0,
        }
        if body.get("agent"):
            item["defaultAgent"] = body["agent"]
        self.items[session_id] = item
        self.details[session_id] = {
            "sessionId": session_id,
            "task": body.get("task", ""),
            "workflowMode": body.get("workflowMode", "standard"),
            **{k: body[k] for k in ("repo", "repos", "workspaceId") if k in body},
            "env": {k: "hub-value" for k in body.get("env") or {}},
            "metadata": dict(body.get("metadata") or {}),
        }
        return session_id

    def update(self, session_id: str, body: Mapping[str, Any]) -> None:
        item = self.items[session_id]
        for key, value in body.items():
            if key == "agent":
                item["defaultAgent"] = value
            elif key == "visibility":
                item["visibility"] = normalise_visibility(value)
            elif key == "tags":
                item["tags"] = list(dict.fromkeys(value))
            else:
                item[key] = value

    def archive(self, session_id: str) -> None:
        self.items[session_id]["status"] = "archived"

    def delete(self, session_id: str) -> None:
        del self.items[session_id]
        self.details.pop(session_id, None)

    def resume(self, session_id: str) -> None:
        self.items[session_id]["status"] = "active"

    def apply(self, plan: Plan) -> None:
        """The applier's phase order: creates, updates and resumes, archives, deletes."""
        bodies = {id(a): resolve(a.body, ENVIRON) for a in plan.actions if a.body is not None}
        for action in plan.actions:
            if action.kind in ("create", "replace"):
                self.create(bodies[id(action)])
        for action in plan.actions:
            assert action.session_id is not None or action.kind == "create"
            if action.kind == "update":
                self.update(str(action.session_id), bodies[id(action)])
            elif action.kind == "resume":
                self.resume(str(action.session_id))
        for action in plan.actions:
            if action.kind == "archive" or (
                action.kind == "replace" and action.replace_with == "archive"
            ):
                self.archive(str(action.session_id))
        for action in plan.actions:
            if action.kind == "delete" or (
                action.kind == "replace" and action.replace_with == "delete"
            ):
                self.delete(str(action.session_id))


# -- strategies -----------------------------------------------------------------------

TAGS = st.sampled_from(["triage", "docs", "nightly", "team:a", "x"])
SKILLS = st.fixed_dictionaries(
    {"skillId": st.sampled_from(["gh", "lint"]), "repo": st.sampled_from(["acme/s", "acme/t"])},
    optional={"name": st.sampled_from(["GH", "Lint"])},
)
VISIBILITY = st.sampled_from(["private", "organization", "collaborate"])


@st.composite
def specs(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A spec as written and its resolved form (project defaults already applied)."""
    spec: dict[str, Any] = {"task": draw(st.sampled_from(["Triage", "Fix tests", "Write docs"]))}
    resolved: dict[str, Any] = {}
    if draw(st.booleans()):
        if draw(st.booleans()):
            spec["label"] = "Bot ${env:LABEL_SUFFIX}"
            resolved["label"] = f"Bot {ENVIRON['LABEL_SUFFIX']}"
        else:
            spec["label"] = draw(st.sampled_from(["Bot", "Nightly bot"]))
    if draw(st.booleans()):
        spec["agent"] = draw(st.sampled_from(["claude-code", "codex"]))
    if draw(st.booleans()):
        spec["visibility"] = draw(VISIBILITY)
    if draw(st.booleans()):
        spec["tags"] = draw(st.lists(TAGS, unique=True, max_size=3))
    if draw(st.booleans()):
        spec["skills"] = draw(st.lists(SKILLS, max_size=2))
    if draw(st.booleans()):
        spec["workflowMode"] = draw(st.sampled_from(["standard", "loop"]))
    if draw(st.booleans()):
        spec["env"] = {"GITHUB_TOKEN": "${env:TOKEN}"}
    if draw(st.booleans()):
        spec["metadata"] = {"team": draw(st.sampled_from(["a", "b"]))}
    if draw(st.booleans()):
        spec["repo"] = {"fullName": "acme/api", "branch": draw(st.sampled_from(["main", "dev"]))}
    return spec, {**spec, **resolved}


@st.composite
def desired_sessions(draw: st.DrawFn) -> list[DesiredSession]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=len(NAMES)))
    out = []
    for name in names:
        spec, resolved = draw(specs())
        ignore = draw(
            st.lists(
                st.sampled_from(["label", "tags", "skills", "task", "env", "metadata"]),
                unique=True,
                max_size=2,
            )
            if draw(st.integers(0, 4)) == 0
            else st.just([])
        )
        out.append(
            DesiredSession(
                name=name,
                spec=spec,
                resolved=resolved,
                state=draw(st.sampled_from(["active", "active", "active", "archived"])),
                lifecycle=Lifecycle(
                    prevent_destroy=draw(st.booleans()), ignore_changes=tuple(ignore)
                ),
            )
        )
    return out


@st.composite
def observed_items(
    draw: st.DrawFn, desired: Sequence[DesiredSession]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """List items: this project's (current, stale or odd hashes), other projects', none."""
    hashes = list(HASHES) + [d.spec_hash for d in desired]
    count = draw(st.integers(0, 9))
    items: list[dict[str, Any]] = []
    details: dict[str, Any] = {}
    for index in range(count):
        session_id = f"codesess_{index}"
        kind = draw(st.sampled_from(["ours", "ours", "ours", "two", "other", "plain"]))
        tags = draw(st.lists(TAGS, unique=True, max_size=3))
        name = draw(st.sampled_from(NAMES))
        if kind in ("ours", "two"):
            tags.append(Marker(PROJECT, name, draw(st.sampled_from(hashes))).tag)
        if kind == "two":
            other = draw(st.sampled_from(NAMES))
            tags.append(Marker(PROJECT, other, draw(st.sampled_from(hashes))).tag)
        if kind == "other":
            tags.append(Marker("other-team", name, draw(st.sampled_from(hashes))).tag)
        item: dict[str, Any] = {
            "sessionId": session_id,
            "status": draw(
                st.sampled_from(
                    ["active", "active", "paused", "archived", "shutdown", "stopped", "creating"]
                )
            ),
            "label": draw(st.sampled_from(["Bot", "Nightly bot", "Other"])),
            "visibility": draw(st.sampled_from(["private", "organization", "org", "collab"])),
            "tags": tags,
            "skills": draw(st.lists(SKILLS, max_size=2)),
            "createdAt": draw(st.sampled_from(["2025-01-01T00:00:00Z", "2025-06-01T00:00:00Z"])),
            "participantCount": draw(st.integers(0, 1)),
        }
        if draw(st.booleans()):
            item["defaultAgent"] = draw(st.sampled_from(["claude-code", "codex"]))
        if draw(st.booleans()):
            item["loopStatus"] = draw(st.sampled_from(["running", "idle", "completed"]))
        items.append(item)
        if draw(st.booleans()):
            details[session_id] = {
                "sessionId": session_id,
                "task": draw(st.sampled_from(["Triage", "Fix tests"])),
                "workflowMode": "standard",
                "env": {},
                "metadata": {},
            }
    return items, details


@st.composite
def worlds(
    draw: st.DrawFn,
) -> tuple[Project, list[DesiredSession], list[dict[str, Any]], dict[str, Any]]:
    desired = draw(desired_sessions())
    items, details = draw(observed_items(desired))
    prune = draw(st.sampled_from(["archive", "delete", "keep"]))
    project = Project(name=PROJECT, org_id="org_test", policy=Policy(prune=prune))
    return project, desired, items, details


# -- helpers --------------------------------------------------------------------------


def _plan(
    project: Project,
    desired: Sequence[DesiredSession],
    hub: SimulatedHub,
    targets: Sequence[str] = (),
) -> Plan:
    """needs_detail, plan, safety and every renderer: only ReconcilerError may escape."""
    observed = hub.observed()
    try:
        wanted = planner.needs_detail(project, desired, observed)
        details = {i: hub.details[i] for i in wanted if i in hub.details}
        result = planner.plan(
            project, desired, observed, details=details, scope=Scope(tuple(targets))
        )
        render_plan_text(result, color=False)
        render_plan_markdown(result)
        plan_to_dict(result)
        with contextlib.suppress(ReconcilerError):
            planner.check_safety(result, desired, force=False)
        for action in result.actions:
            if action.session_id in hub.items:
                planner.fingerprint(RemoteSession.from_api(hub.items[action.session_id]))
    except ReconcilerError:
        raise
    except Exception as exc:  # pragma: no cover - the property's failure message
        raise AssertionError(f"planner raised {type(exc).__name__}: {exc}") from exc
    return result


def _assert_only_managed(plan: Plan, hub: SimulatedHub) -> None:
    for action in plan.actions:
        if action.session_id is None:
            assert action.kind == "create"
            continue
        remote = RemoteSession.from_api(hub.items[action.session_id])
        assert own_marker(PROJECT, remote) is not None, (action, remote.tags)


def _describe(actions: Sequence[Action]) -> list[tuple[str, str, str | None, str]]:
    return [(a.kind, a.name, a.session_id, a.reason) for a in actions]


# -- properties -----------------------------------------------------------------------


@settings(settings.get_profile("convergence"))
@given(world=worlds())
def test_apply_then_plan_again_is_empty(
    world: tuple[Project, list[DesiredSession], list[dict[str, Any]], dict[str, Any]],
) -> None:
    project, desired, items, details = world
    hub = SimulatedHub(items, details)
    untouched = {
        i: dict(item)
        for i, item in hub.items.items()
        if own_marker(PROJECT, RemoteSession.from_api(item)) is None
    }
    first = _plan(project, desired, hub)
    _assert_only_managed(first, hub)
    hub.apply(first)
    second = _plan(project, desired, hub)
    assert _describe(second.actions) == []
    # Sessions that were never ours are exactly as they were.
    assert {i: hub.items.get(i) for i in untouched} == untouched


@settings(settings.get_profile("convergence"))
@given(world=worlds(), data=st.data())
def test_targeted_apply_converges_within_its_targets(
    world: tuple[Project, list[DesiredSession], list[dict[str, Any]], dict[str, Any]],
    data: st.DataObject,
) -> None:
    project, desired, items, details = world
    targets = data.draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=2))
    hub = SimulatedHub(items, details)
    if not _targets_known(project, desired, hub, targets):
        return
    first = _plan(project, desired, hub, targets)
    assert {a.name for a in first.actions} <= set(targets)
    # What the target leaves out is counted: together, the whole plan.
    assert len(first.actions) + first.left_out == len(_plan(project, desired, hub).actions)
    _assert_only_managed(first, hub)
    hub.apply(first)
    # A session deleted by prune leaves no trace: its name is then unknown.
    if _targets_known(project, desired, hub, targets):
        assert _describe(_plan(project, desired, hub, targets).actions) == []


def _targets_known(
    project: Project, desired: Sequence[DesiredSession], hub: SimulatedHub, targets: Sequence[str]
) -> bool:
    """Whether every target is declared or managed; if not, planning must refuse it."""
    known = {d.name for d in desired}
    owned = (own_marker(PROJECT, r) for r in hub.observed())
    known |= {m.name for m in owned if m is not None}
    if set(targets) <= known:
        return True
    # A name neither declared nor managed is a typo: refused, never an empty plan.
    with pytest.raises(UsageError, match="no session of that name"):
        _plan(project, desired, hub, targets)
    return False


@settings(settings.get_profile("convergence"))
@given(world=worlds())
def test_plan_is_deterministic(
    world: tuple[Project, list[DesiredSession], list[dict[str, Any]], dict[str, Any]],
) -> None:
    project, desired, items, details = world
    first = _plan(project, desired, SimulatedHub(items, details))
    again = _plan(project, list(reversed(desired)), SimulatedHub(list(reversed(items)), details))
    assert plan_to_dict(first) == plan_to_dict(again)


def test_a_declared_tag_with_the_reserved_prefix_is_refused_or_converges(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.yaml").write_text(
        "apiVersion: reconciler/v1\nkind: Session\nname: alpha\n"
        "spec: {task: t, tags: ['reconciler:mine']}\n"
    )
    try:
        loaded = load_manifests([str(tmp_path)], environ={}, project_name=PROJECT)
    except ReconcilerError:
        return
    hub = SimulatedHub([], {})
    hub.apply(_plan(loaded.project, loaded.sessions, hub))
    assert _describe(_plan(loaded.project, loaded.sessions, hub).actions) == []


def test_a_session_with_two_of_our_markers_converges() -> None:
    spec = {"task": "t", "tags": []}
    d = DesiredSession(name="alpha", spec=spec, resolved=spec)
    item = {
        "sessionId": "codesess_0",
        "status": "active",
        "tags": ["triage", d.marker_tag(PROJECT), Marker(PROJECT, "alpha", HASHES[0]).tag],
        "createdAt": "2025-01-01T00:00:00Z",
    }
    project = Project(name=PROJECT)
    hub = SimulatedHub([item], {})
    hub.apply(_plan(project, [d], hub))
    assert _describe(_plan(project, [d], hub).actions) == []
