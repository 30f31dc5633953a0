"""Manifests from existing sessions, and their adoption: the library behind `export`.

- ``spec``: session details -> ``ExportedSession`` (pure; as declared when recorded);
- ``render``: ``ExportedSession`` -> manifest YAML (deterministic);
- ``files``: writing into a folder, all files or none, never outside it;
- ``workflow``: ``export_sessions`` (read, check, write, and the adoption: a plan of
  tag updates that ``export --adopt`` runs through the apply workflow).
"""

from __future__ import annotations

from reconciler.export.render import (
    may_rewrite,
    render_file,
    render_project,
    render_project_file,
    render_session,
    render_stream,
)
from reconciler.export.spec import (
    ENV_KEY_RE,
    ExportedSession,
    adopt_tags,
    build_exports,
    export_spec,
    slugify,
)
from reconciler.export.workflow import (
    ExportFolder,
    ExportOutcome,
    export_notes,
    export_sessions,
    folder_project,
    read_export_folder,
    spend_adopt_lines,
)

__all__ = [
    "ENV_KEY_RE",
    "ExportFolder",
    "ExportOutcome",
    "ExportedSession",
    "adopt_tags",
    "build_exports",
    "export_notes",
    "export_sessions",
    "export_spec",
    "folder_project",
    "may_rewrite",
    "read_export_folder",
    "render_file",
    "render_project",
    "render_project_file",
    "render_session",
    "render_stream",
    "slugify",
    "spend_adopt_lines",
]
