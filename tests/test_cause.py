"""Who changed it: the last-applied record (reconciler.planner.applied) and each change's
cause, in plans (text, Markdown, JSON), status and watch's metrics."""

from __future__ import annotations

import dataclasses
import json

from clihub import CliHub
from cliproject import (  # noqa: F401 - fixtures
    Folder,
    apply_all,
    cli_hub_fixture,
    folder_fixture,
)
from planner_fixtures import PROJECT, desired, project, remote_for
from prometheus_client import generate_latest

from reconciler.planner import plan
from reconciler.planner.applied import applied_tag, read_applied
from reconciler.render.markdown import render_plan_markdown
from reconciler.status import status_rows
from reconciler.watch.cycle import Reconcile
from reconciler.watch.metrics import WatchMetrics


def _edit_label(folder: Folder, name: str, label: str) -> None:
    path = folder.root / f"{name}.yaml"
    text = path.read_text()
    old = next(line for line in text.splitlines() if line.strip().startswith("label:"))
    path.write_text(text.replace(old, f"  label: {label}"))


def _causes(hub: CliHub, folder: Folder) -> dict[str, dict[str, str | None]]:
    doc = hub.json("plan", folder.path)
    return {
        a["name"]: {c["field"]: c["cause"] for c in a["changes"]}
        for a in doc["actions"]
        if a["kind"] == "update"
    }


def _sync(hub: CliHub, folder: Folder) -> dict[str, str]:
    return {r["name"]: r["sync"] for r in hub.json("status", folder.path)["sessions"]}


def test_manifest_changes_and_hub_changes_are_told_apart(cli_hub: CliHub, folder: Folder) -> None:
    ids = apply_all(cli_hub, folder)
    _edit_label(folder, "alpha", "Alpha service")  # in the manifests
    cli_hub.ok("sessions", "update", ids["beta"], "--label", "Hand-edited")  # on the hub
    # both at once on gamma: a manifest label, a hand-edited tag set
    _edit_label(folder, "gamma", "Gamma bot")
    cli_hub.ok("sessions", "update", ids["gamma"], "--tags", "team-a,extra")

    code, out, err = cli_hub.run("plan", folder.path)
    assert code == 0, err
    assert f"  ~ alpha [{ids['alpha']}]: update (manifest: label)" in out
    assert f"  ~ beta [{ids['beta']}]: update (drift: label)" in out
    assert f"  ~ gamma [{ids['gamma']}]: update (manifest: label; drift: tags)" in out
    assert _causes(cli_hub, folder) == {
        "alpha": {"label": "manifest"},
        "beta": {"label": "drift"},
        "gamma": {"label": "manifest", "tags": "drift"},
    }
    assert _sync(cli_hub, folder) == {"alpha": "pending", "beta": "drifted", "gamma": "drifted"}

    # Applying records the new values: the same hand edit afterwards is drift.
    cli_hub.ok("apply", folder.path, "--yes")
    assert _sync(cli_hub, folder) == dict.fromkeys(("alpha", "beta", "gamma"), "in-sync")
    cli_hub.ok("sessions", "update", ids["alpha"], "--label", "Hand-edited")
    assert _causes(cli_hub, folder) == {"alpha": {"label": "drift"}}


def test_an_imported_session_records_what_the_hub_holds_as_declared(
    cli_hub: CliHub, folder: Folder
) -> None:
    folder.remove("beta")
    folder.remove("gamma")
    session_id = cli_hub.create(
        "--task", "Keep the alpha service green", "--label", "Old", "--visibility", "org"
    )
    cli_hub.ok("import", "alpha", session_id, folder.path, "--yes")
    # What the manifest declares otherwise than the session holds was never applied: the
    # plan that applies it is the manifest's doing (pending), not drift.
    code, out, _ = cli_hub.run("plan", folder.path)
    assert f"  ~ alpha [{session_id}]: update (manifest: label, tags)" in out
    assert _causes(cli_hub, folder) == {"alpha": {"label": "manifest", "tags": "manifest"}}
    assert _sync(cli_hub, folder) == {"alpha": "pending"}
    # Visibility was held as declared: the import recorded it, so a hand edit is drift.
    cli_hub.ok("sessions", "update", session_id, "--visibility", "private")
    causes = _causes(cli_hub, folder)["alpha"]
    assert causes["visibility"] == "drift" and causes["label"] == "manifest"
    cli_hub.ok("apply", folder.path, "--yes")
    cli_hub.ok("sessions", "update", session_id, "--label", "Hand-edited")
    assert _causes(cli_hub, folder) == {"alpha": {"label": "drift"}}


def test_a_session_without_a_record_says_the_cause_is_unknown() -> None:
    # Tagged by hand, or by a version before records: nobody knows who changed what.
    d = desired("alpha", label="New label")
    bare = remote_for(d, "s1", label="Old label", tags=[d.marker_tag(PROJECT)])
    (action,) = plan(project(), [d], [bare]).actions
    causes = {c.field: c.cause for c in action.changes}
    assert causes["label"] is None and set(causes.values()) == {None}


def test_the_record_holds_digests_never_values() -> None:
    d = desired("alpha", label="Top secret label")
    tag = applied_tag(PROJECT, d)
    assert tag is not None and "secret" not in tag
    assert set(read_applied([tag], PROJECT)) == {"label", "agent", "visibility", "tags"}
    assert read_applied([tag], "another-project") is None


def test_markdown_and_json_carry_the_cause() -> None:
    old = desired("alpha", label="Old label")
    new = desired("alpha", label="New label")
    drifted = remote_for(old, "s1", label="Hand-edited")  # applied: Old label
    result = plan(project(), [new], [drifted])
    [action] = result.actions
    assert [(c.field, c.cause) for c in action.changes] == [("label", "manifest")]
    assert "update (manifest: label)" in render_plan_markdown(result)
    [row] = status_rows(PROJECT, result, [new], [drifted])
    assert row.sync == "pending"
    same = plan(project(), [old], [drifted])
    assert [(c.field, c.cause) for c in same.actions[0].changes] == [("label", "drift")]
    assert json.dumps(dataclasses.asdict(same.actions[0].changes[0]))  # plain values


def test_watch_metrics_count_pending_and_drifted() -> None:
    metrics = WatchMetrics()
    reconcile = Reconcile("drift", 0.1, project="p", sync={"pending": 2, "drifted": 1})
    metrics.record(reconcile, now=1.0)
    text = generate_latest(metrics.registry).decode()
    assert 'reconciler_sessions{project="p",sync="pending"} 2.0' in text
    assert 'reconciler_sessions{project="p",sync="drifted"} 1.0' in text
    assert 'reconciler_sessions{project="p",sync="differs"} 0.0' in text
