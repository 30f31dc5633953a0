"""Drift of the mutable fields against what the real service sends beyond the reference.

The service adds fields, keys inside ``skills[]`` items, enum values the reference does
not list, and null optional values (docs/reference/service-notes.md). A plan compares only what a
manifest can declare, so none of that may ever show as a difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from planner_fixtures import desired, item_for, marker, project, remote_for

from reconciler.fields import FIELDS, normalise, spec_field
from reconciler.model import DesiredSession, RemoteSession
from reconciler.planner import fingerprint, plan
from reconciler.planner.mutable import mutable_changes

SKILL_X = {"skillId": "x", "repo": "acme/skills"}
SKILL_Y = {"skillId": "y", "repo": "acme/skills", "name": "Y", "url": "https://y.example"}
SDK_EXTRAS = {"content": "# skill body", "origin": {"type": "github"}, "version": 3}


@dataclass
class Case:
    id: str
    desired: DesiredSession
    overrides: dict[str, Any]
    drift: tuple[str, ...]  # fields of the expected update, empty for none
    status: str = "active"


WITH_SKILLS = desired("alpha", skills=[SKILL_X, SKILL_Y])
BARE = desired("alpha", label=None, agent=None, visibility=None, tags=None)

CASES = [
    Case(
        "skills carry keys the reference does not list",
        WITH_SKILLS,
        {"skills": [{**SKILL_Y, **SDK_EXTRAS}, {**SKILL_X, **SDK_EXTRAS}]},
        (),
    ),
    Case(
        "a skill's optional name and url are null",
        desired("alpha", skills=[SKILL_X]),
        {"skills": [{**SKILL_X, "name": None, "url": None}]},
        (),
    ),
    Case(
        "the service fills in a name the manifest leaves out",
        desired("alpha", skills=[SKILL_X]),
        {"skills": [{**SKILL_X, "name": "Filled in"}]},
        (),
    ),
    Case(
        "a declared skill name that differs is drift",
        WITH_SKILLS,
        {"skills": [SKILL_X, {**SKILL_Y, "name": "Other"}]},
        ("skills",),
    ),
    Case(
        "a skill the manifest does not declare is drift",
        desired("alpha", skills=[SKILL_X]),
        {"skills": [SKILL_X, {**SKILL_Y, **SDK_EXTRAS}]},
        ("skills",),
    ),
    Case(
        "a skill listed twice is one skill",
        desired("alpha", skills=[SKILL_X]),
        {"skills": [SKILL_X, {**SKILL_X, **SDK_EXTRAS}]},
        (),
    ),
    Case("skills null: nothing to compare when undeclared", BARE, {"skills": None}, ()),
    Case("skills not an array", desired("alpha", skills=[SKILL_X]), {"skills": {}}, ("skills",)),
    Case(
        "tags repeated and reordered",
        desired("alpha", tags=["a", "b"]),
        {"tags": ["b", "a", "b", "MARKER", "a"]},
        (),
    ),
    Case("unknown top-level fields", desired("alpha"), {"workspace": {"id": "ws_1"}, "x": 1}, ()),
    Case("label null, label not declared", BARE, {"label": None}, ()),
    Case("label null, label declared", desired("alpha"), {"label": None}, ("label",)),
    Case("defaultAgent null, agent not declared", BARE, {"defaultAgent": None}, ()),
    Case("defaultAgent null, agent declared", desired("alpha"), {"defaultAgent": None}, ("agent",)),
    Case("unknown visibility, visibility not declared", BARE, {"visibility": "team"}, ()),
    Case(
        "unknown visibility, visibility declared",
        desired("alpha"),
        {"visibility": "team"},
        ("visibility",),
    ),
    Case("unknown status: neither resumed nor created", desired("alpha"), {}, (), "provisioning"),
    Case("status null", desired("alpha"), {"status": None}, ()),
    Case("unknown loopStatus", desired("alpha"), {"loopStatus": "thinking"}, ()),
    Case("null counts", desired("alpha"), {"participantCount": None, "loopIteration": None}, ()),
]


def _observed(case: Case) -> RemoteSession:
    d = case.desired
    item = item_for(d, "s1", status=case.status)
    own = marker(d.name, d.spec_hash)
    for key, value in case.overrides.items():
        if key == "tags":
            value = [own if t == "MARKER" else t for t in value]
        item[key] = value
    if not isinstance(item.get("tags"), list) or own not in item["tags"]:
        item["tags"] = [own]
    return RemoteSession.from_api(item)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_only_what_a_manifest_declares_is_compared(case: Case) -> None:
    result = plan(project(), [case.desired], [_observed(case)])
    kinds = [a.kind for a in result.actions]
    if not case.drift:
        assert kinds == []
        return
    [update] = result.actions
    assert update.kind == "update"
    assert tuple(c.field for c in update.changes) == case.drift


def test_a_skills_update_keeps_what_the_service_added_to_the_skills_it_keeps() -> None:
    d = desired("alpha", skills=[SKILL_X, SKILL_Y])
    live_x = {**SKILL_X, **SDK_EXTRAS, "name": "Filled in", "url": None}
    r = remote_for(d, "s1", skills=[live_x])
    [action] = plan(project(), [d], [r]).actions
    assert action.body == {
        # x as declared plus what the service added (nulls dropped); y as declared.
        "skills": [{**SKILL_X, **SDK_EXTRAS, "name": "Filled in"}, SKILL_Y],
    }
    [change] = action.changes
    # Shown in declared form only: no service content in the plan's diff.
    assert change.added == (SKILL_Y,)
    assert change.removed == ()
    assert change.before == [{**SKILL_X, "name": "Filled in"}]


def test_a_label_update_does_not_touch_skills() -> None:
    d = desired("alpha", skills=[SKILL_X])
    r = remote_for(d, "s1", label="Old", skills=[{**SKILL_X, **SDK_EXTRAS}])
    [action] = plan(project(), [d], [r]).actions
    assert action.body == {"label": "Triage"}


def test_the_fingerprint_ignores_what_a_manifest_cannot_declare() -> None:
    d = desired("alpha", skills=[SKILL_X])
    plain_ = remote_for(d, "s1")
    decorated = remote_for(
        d, "s1", skills=[{**SKILL_X, **SDK_EXTRAS, "name": None}], workspace={"id": "ws"}
    )
    assert fingerprint(plain_) == fingerprint(decorated)
    assert fingerprint(plain_) != fingerprint(remote_for(d, "s1", skills=[SKILL_Y]))


@pytest.mark.parametrize("tags", ["a,b", {"a": 1}, 7, None])
def test_tags_that_are_not_an_array_are_no_tags(tags: Any) -> None:
    remote = RemoteSession.from_api({"sessionId": "s1", "status": "active", "tags": tags})
    assert remote.tags == () and remote.markers() == ()


_SCALARS = [f.name for f in FIELDS if f.mutable and f.compare not in ("set", "skills")]
# What a hub or a manifest may hold in a value field: aliases and their long forms,
# blanks, numbers that are equal across types, and values of the wrong kind.
_VALUES = st.one_of(
    st.sampled_from(["org", "organization", "collab", "collaborate", "private", "", " "]),
    st.sampled_from(["claude-code", "Triage", "triage", "S 1"]),
    st.sampled_from([0, 1, 1.0, True, False, 0.0, None, [], {}, ["a"], {"a": 1}]),
    st.text(max_size=4),
)


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(_SCALARS), held=_VALUES, wanted=_VALUES.filter(lambda v: v is not None)
)
def test_a_value_field_differs_exactly_when_its_normalised_values_do(
    field: str, held: Any, wanted: Any
) -> None:
    """The planner takes a value held exactly as declared as unchanged without
    normalising either: the same answer as comparing the normalised values."""
    d = desired("alpha", **{field: wanted})
    item = item_for(d, "sess_1")
    reported_as = spec_field(field).reported_as
    assert reported_as is not None
    item[reported_as] = held
    remote = RemoteSession.from_api(item)
    changed = {c.field for c in mutable_changes(d, remote, remote.markers()[0])}
    before = remote.reported(field)
    expected = (normalise(field, before) if before else None) != normalise(field, wanted)
    assert (field in changed) is expected
