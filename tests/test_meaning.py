"""Create-only fields compared by meaning (reconciler.fields): spelling is never a change.

Spelling out a default, leaving a field out, ``{}``/``[]`` for an absent map or list,
key order and the order of a set never change the marker hash and never plan a
replacement: a property test over every create-only field, through the planner, for a
session that records its declaration, one whose marker was hashed the old way (as
written) and one exported and adopted by an older version. Then the same through the
CLI against the real hub.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from clihub import CliHub
from cliproject import (  # noqa: F401 - fixtures
    Folder,
    apply_all,
    cli_hub_fixture,
    folder_fixture,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from planner_fixtures import desired, hub_report, item_for, project

from reconciler.fields import CREATE_ONLY_FIELDS, FIELDS, held_default, meaning, spec_field
from reconciler.model import (
    Marker,
    RemoteSession,
    create_only_hash,
    legacy_create_only_hash,
)
from reconciler.planfile import plan_to_dict
from reconciler.planner import plan
from reconciler.render import render_plan_markdown, render_plan_text

WORDS = st.text("abcdefgh", min_size=1, max_size=6)
REFS = WORDS.map(lambda w: f"${{env:{w.upper()}}}")
MAPS = st.dictionaries(WORDS, st.integers(0, 9) | WORDS, min_size=1, max_size=3)

# A declared value for each create-only field (never its default or empty: the
# respellings below add those).
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "task": WORDS,
    "workflowMode": st.just("loop"),
    "loop": st.fixed_dictionaries({"goal": WORDS}, optional={"maxIterations": st.integers(1, 9)}),
    "savedSkillIds": st.lists(WORDS, min_size=1, max_size=3, unique=True),
    "skillBucketIds": st.lists(WORDS, min_size=1, max_size=3, unique=True),
    "repo": st.fixed_dictionaries({"fullName": WORDS}, optional={"branch": WORDS}),
    "repos": st.lists(st.fixed_dictionaries({"fullName": WORDS}), min_size=1, max_size=2),
    "workspaceId": WORDS,
    "env": st.dictionaries(WORDS.map(str.upper), REFS, min_size=1, max_size=3),
    "metadata": MAPS,
}


def test_every_create_only_field_has_a_strategy() -> None:
    assert set(VALUES) == set(CREATE_ONLY_FIELDS)


@st.composite
def declared_forms(draw: st.DrawFn) -> dict[str, Any]:
    """A valid create-only form: task always, each other field maybe."""
    form: dict[str, Any] = {"task": draw(VALUES["task"])}
    for name in CREATE_ONLY_FIELDS:
        if name != "task" and draw(st.booleans()):
            form[name] = draw(VALUES[name])
    if "loop" in form:
        form["workflowMode"] = "loop"
    return form


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    return value


def respell(form: dict[str, Any], name: str) -> dict[str, Any] | None:
    """``form`` with field ``name`` written differently, meaning the same (None when the
    field has no other spelling in this form)."""
    out = dict(form)
    declared = spec_field(name)
    if name not in out:
        held = meaning(out)
        default = held_default(name, held)
        if default is not None and (name != "loop" or "workflowMode" in out):
            out[name] = default  # spell out what the hub fills in
        elif declared.empty is not None:
            out[name] = declared.empty  # {} / [] for absent
        else:
            return None
    elif name == "workflowMode" and "loop" in out:
        del out[name]  # loop settings alone mean loop mode
    elif declared.compare == "set":
        out[name] = [*reversed(out[name]), out[name][0]]  # order and repeats
    elif isinstance(out[name], dict) and len(out[name]) > 1:
        out[name] = _reordered(out[name])  # key order
    else:
        return None
    return out


def _spec(form: dict[str, Any]) -> dict[str, Any]:
    return {"task": form["task"], **{k: v for k, v in form.items() if k != "task"}}


def _no_replacement(old_form: dict[str, Any], new_form: dict[str, Any]) -> None:
    old = desired("alpha", **_spec(old_form))
    new = desired("alpha", **_spec(new_form))
    assert create_only_hash(old.spec) == create_only_hash(new.spec)
    # 1. Created by this version: the marker carries the meaning's hash, the session
    #    records its declaration.
    [create] = plan(project(), [old], []).actions
    assert create.body is not None
    detail = item_for(old, "s1", **hub_report(create.body))
    result = plan(project(), [new], [RemoteSession.from_api(detail)], details={"s1": detail})
    assert [a.kind for a in result.actions] == []
    # 2. Created by an older version: marker and record hashed the old way (as written).
    legacy = legacy_create_only_hash(old.spec)
    lineage = {**create.body["metadata"]["reconciler"], "hash": legacy}
    metadata = {**create.body["metadata"], "reconciler": lineage}
    detail = item_for(old, "s1", hash_=legacy, **{**hub_report(create.body), "metadata": metadata})
    result = plan(project(), [new], [RemoteSession.from_api(detail)], details={"s1": detail})
    assert [a.kind for a in result.actions] == [], result.actions


@pytest.mark.parametrize("name", CREATE_ONLY_FIELDS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=declared_forms())
def test_respelling_a_create_only_field_is_never_a_change(name: str, form: dict[str, Any]) -> None:
    other = respell(form, name)
    if other is None:
        return
    _no_replacement(form, other)
    _no_replacement(other, form)


def test_the_spellings_the_issue_named() -> None:
    base = {"task": "Triage"}
    assert create_only_hash({**base, "workflowMode": "standard"}) == create_only_hash(base)
    assert create_only_hash({**base, "metadata": {}}) == create_only_hash(base)
    assert create_only_hash({**base, "env": {}, "repos": []}) == create_only_hash(base)
    assert create_only_hash({**base, "loop": {}}) == create_only_hash(
        {**base, "workflowMode": "loop"}
    )
    # ...and a real change is one.
    assert create_only_hash({**base, "workflowMode": "loop"}) != create_only_hash(base)
    assert create_only_hash({**base, "metadata": {"a": 1}}) != create_only_hash(base)


def test_a_whole_number_written_as_a_float_is_the_same_number() -> None:
    # JSON has one number type: the hub stores maxIterations 5.0 as 5, and a running loop
    # was replaced for the spelling.
    ints = {"task": "t", "loop": {"maxIterations": 5}, "metadata": {"n": 1, "deep": [{"m": 2}]}}
    floats = {
        "task": "t",
        "loop": {"maxIterations": 5.0},
        "metadata": {"n": 1.0, "deep": [{"m": 2.0}]},
    }
    assert create_only_hash(ints) == create_only_hash(floats)
    _no_replacement(ints, floats)
    _no_replacement(floats, ints)
    # A fraction is a change, and True is no number.
    assert create_only_hash({"task": "t", "metadata": {"n": 1.5}}) != create_only_hash(
        {"task": "t", "metadata": {"n": 1}}
    )
    assert create_only_hash({"task": "t", "metadata": {"n": True}}) != create_only_hash(
        {"task": "t", "metadata": {"n": 1}}
    )


def test_a_spec_spelling_out_nothing_keeps_its_old_hash() -> None:
    # Markers on existing sessions were hashed as written: for the common spec (no
    # default spelled out, nothing empty) the hash is unchanged.
    spec = {"task": "Triage", "repo": {"fullName": "acme/api"}, "env": {"A": "${env:A}"}}
    assert create_only_hash(spec) == legacy_create_only_hash(spec)


def test_the_registry_orders_and_partitions_every_field() -> None:
    names = [f.name for f in FIELDS]
    assert len(names) == len(set(names))
    assert {f.name for f in FIELDS if f.create_only} == set(CREATE_ONLY_FIELDS)
    assert [f.name for f in FIELDS if f.secret] == ["env"]
    assert spec_field("agent").aliases == ("defaultAgent",)


# Through the CLI, against the hub.


def test_spelled_out_defaults_plan_no_change(cli_hub: CliHub, folder: Folder) -> None:
    apply_all(cli_hub, folder)
    folder.write(
        "alpha",
        """\
        task: Keep the alpha service green
        label: Alpha
        tags: [team-a, backend]
        workflowMode: standard
        metadata: {}
        savedSkillIds: []
        env: {}
        """,
    )
    code, out, err = cli_hub.run("plan", folder.path, "--detailed-exitcode")
    assert code == 0, out + err
    assert "No changes." in out


def test_a_session_adopted_with_an_old_hash_keeps_when_the_default_line_goes(
    cli_hub: CliHub, folder: Folder
) -> None:
    # An older `export --adopt` wrote `workflowMode: standard` and tagged the session
    # with the hash of that form as written; the user then removes the line.
    folder.remove("beta")
    folder.remove("gamma")
    written = {"task": "Keep the alpha service green", "workflowMode": "standard"}
    old_tag = Marker(folder.project, "alpha", legacy_create_only_hash(written)).tag
    session_id = cli_hub.create(
        "--task", written["task"], "--label", "Alpha", "--visibility", "org",
        "--tag", "team-a", "--tag", "backend", "--tag", old_tag,
    )  # fmt: skip
    code, out, err = cli_hub.run("plan", folder.path, "--detailed-exitcode")
    assert code == 0, out + err
    assert "No changes." in out and session_id not in out


def test_a_real_change_names_field_old_and_new(cli_hub: CliHub, folder: Folder) -> None:
    apply_all(cli_hub, folder)
    folder.write(
        "alpha",
        """\
        task: Keep the alpha service green
        label: Alpha
        tags: [team-a, backend]
        workflowMode: loop
        """,
    )
    code, out, err = cli_hub.run("plan", folder.path)
    assert "-/+ alpha" in out, out + err
    assert "create-only fields changed: workflowMode" in out
    assert '      workflowMode: "standard" -> "loop"\n' in out


def test_a_literal_secret_is_compared_by_rehashing_and_never_shown() -> None:
    canary_old, canary_new = "canary-old-9f3a", "canary-new-4b7c"
    old = desired("alpha", env={"TOKEN": canary_old}, workflowMode="standard")
    [create] = plan(project(), [old], []).actions
    assert create.body is not None
    detail = item_for(old, "s1", **hub_report(create.body))
    remote = RemoteSession.from_api(detail)
    # Same literal, default line removed: the record's re-hash proves it unchanged.
    same = desired("alpha", env={"TOKEN": canary_old})
    assert plan(project(), [same], [remote], details={"s1": detail}).actions == ()
    # Another literal: named by key, never by value, in every rendering.
    changed = desired("alpha", env={"TOKEN": canary_new})
    result = plan(project(), [changed], [remote], details={"s1": detail})
    [action] = result.actions
    assert action.kind == "replace" and [c.field for c in action.changes] == ["env.TOKEN"]
    shown = render_plan_text(result) + render_plan_markdown(result)
    shown += json.dumps(plan_to_dict(result))
    assert "env.TOKEN" in shown
    assert canary_old not in shown and canary_new not in shown


def test_a_value_an_older_version_recorded_as_written_is_still_compared() -> None:
    # Before text beside a reference (or a default) was a value written literally, the
    # record held it as written: a rotated password in it must still replace, and the
    # same value (the declaration respelled) must not.
    dsn = "postgres://app:canaryOLD-pw@${env:DB_HOST}/db"
    old = desired("alpha", env={"DSN": dsn}, workflowMode="standard")
    [create] = plan(project(), [old], []).actions
    assert create.body is not None
    metadata = json.loads(json.dumps(create.body["metadata"]))
    assert metadata["reconciler"]["declared"]["env"] == {"DSN": None}  # this version
    metadata["reconciler"]["declared"]["env"] = {"DSN": dsn}  # an older version's record
    detail = item_for(old, "s1", **{**hub_report(create.body), "metadata": metadata})
    remote = RemoteSession.from_api(detail)
    same = desired("alpha", env={"DSN": dsn})
    assert plan(project(), [same], [remote], details={"s1": detail}).actions == ()
    rotated = desired("alpha", env={"DSN": dsn.replace("OLD", "NEW")})
    [action] = plan(project(), [rotated], [remote], details={"s1": detail}).actions
    assert action.kind == "replace" and [c.field for c in action.changes] == ["env.DSN"]
    renamed = desired("alpha", env={"DSN": dsn.replace("DB_HOST", "DB_HOST2")})
    [action] = plan(project(), [renamed], [remote], details={"s1": detail}).actions
    assert action.kind == "replace" and [c.field for c in action.changes] == ["env.DSN"]
    bare = desired("alpha", env={"DSN": "${env:DSN}"})  # named once, not twice
    [action] = plan(project(), [bare], [remote], details={"s1": detail}).actions
    assert [c.field for c in action.changes] == ["env.DSN"]


def test_beside_an_older_record_a_changed_literal_alone_is_named() -> None:
    dsn = "postgres://app:canaryOLD-pw@${env:DB_HOST}/db"
    old = desired("alpha", env={"DSN": dsn, "LIT": "canary-lit-1"}, workflowMode="standard")
    [create] = plan(project(), [old], []).actions
    assert create.body is not None
    metadata = json.loads(json.dumps(create.body["metadata"]))
    metadata["reconciler"]["declared"]["env"] = {"DSN": dsn, "LIT": None}
    detail = item_for(old, "s1", **{**hub_report(create.body), "metadata": metadata})
    remote = RemoteSession.from_api(detail)
    changed = desired("alpha", env={"DSN": dsn, "LIT": "canary-lit-2"})
    [action] = plan(project(), [changed], [remote], details={"s1": detail}).actions
    assert [c.field for c in action.changes] == ["env.LIT"]
