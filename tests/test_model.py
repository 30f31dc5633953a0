"""The shared values: what a large run holds per session stays small."""

from __future__ import annotations

import pytest

from reconciler.model import (
    DesiredSession,
    Lifecycle,
    Marker,
    RemoteSession,
    SourceLocation,
    create_only_hash,
)

_ITEM = {
    "sessionId": "codesess_1",
    "status": "active",
    "tags": ["triage", "reconciler:proj/alpha@0123456789ab"],
    "somethingNew": {"kept": True},
}


def test_per_session_values_carry_no_instance_dict() -> None:
    desired = DesiredSession("alpha", {"task": "t"}, {"task": "t"})
    values = [
        desired,
        RemoteSession.from_api(_ITEM),
        Marker("proj", "alpha", "0" * 12),
        SourceLocation("a.yaml", 3),
        Lifecycle(),
    ]
    for value in values:
        assert not hasattr(value, "__dict__"), type(value).__name__


def test_a_remote_session_holds_no_reference_to_its_item() -> None:
    # The listing frees each page's JSON once converted: only what is read is kept.
    item = {**_ITEM, "tags": list(_ITEM["tags"])}  # type: ignore[call-overload]
    remote = RemoteSession.from_api(item)
    values = _slot_values(remote)
    assert len(values) == len(RemoteSession._fields)
    assert not any(value == item or value is item["tags"] for value in values)
    assert remote.markers() == (Marker("proj", "alpha", "0123456789ab"),)
    assert remote.markers() is remote.markers()  # parsed once


def _slot_values(value: object) -> list[object]:
    if isinstance(value, tuple):  # a named tuple: its fields are its items
        return list(value)
    return [getattr(value, name) for name in type(value).__slots__]  # type: ignore[attr-defined]


def test_cached_values_stay_frozen_and_out_of_equality() -> None:
    desired = DesiredSession("alpha", {"task": "t"}, {"task": "t"})
    twin = DesiredSession("alpha", {"task": "t"}, {"task": "t"})
    assert desired.spec_hash == create_only_hash({"task": "t"})
    assert desired == twin  # one has its hash cached, the other not
    with pytest.raises(AttributeError):
        desired.name = "beta"  # type: ignore[misc]


def test_a_remote_session_keeps_string_tags_and_map_skills_of_any_list() -> None:
    """What a hub sends in ``tags`` and ``skills`` is kept only where it can be a tag (a
    string: repeats dropped, order kept) or a skill (a map), however the list mixes."""
    skill = {"skillId": "s", "repo": "o/r"}
    mixed = RemoteSession.from_api(
        {
            "sessionId": "s1",
            "tags": ["b", 3, "a", None, {"x": 1}, "b", ["c"]],
            "skills": [skill, "s", None, [skill], skill],
        }
    )
    assert mixed.tags == ("b", "a")
    assert mixed.skills == (skill, skill)
    clean = RemoteSession.from_api({"sessionId": "s2", "tags": ["b", "a", "b"], "skills": [skill]})
    assert clean.tags == ("b", "a")
    assert clean.skills == (skill,)
    assert RemoteSession.from_api({"sessionId": "s3", "tags": "a", "skills": {}}).tags == ()


def test_a_remote_session_keeps_only_text_where_it_reads_text() -> None:
    """A text field the hub sends as anything but a string reads as not sent; a status
    not sent (or empty) as unknown."""
    odd = RemoteSession.from_api(
        {
            "sessionId": "s1",
            "status": 3,
            "label": ["L"],
            "visibility": None,
            "defaultAgent": {"a": 1},
            "workflowMode": True,
            "loopStatus": "running",
            "createdAt": 1.5,
            "lastActivityAt": "2026-12-07T00:00:00Z",
        }
    )
    assert odd.status == "unknown"
    assert (odd.label, odd.visibility, odd.default_agent, odd.workflow_mode) == (None,) * 4
    assert (odd.loop_status, odd.created_at) == ("running", None)
    assert odd.last_activity_at == "2026-12-07T00:00:00Z"
    plain = RemoteSession.from_api(
        {"sessionId": "s2", "status": "paused", "label": "L", "defaultAgent": "codex"}
    )
    assert (plain.status, plain.label, plain.default_agent) == ("paused", "L", "codex")
    assert RemoteSession.from_api({"sessionId": "s3", "status": ""}).status == "unknown"
