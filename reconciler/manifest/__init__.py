"""Manifests: YAML files -> a Project and DesiredSessions, with located errors.

``load_manifests`` is the entry point; ``envref`` handles ``${env:NAME}`` references.
"""

from __future__ import annotations

from reconciler.manifest import envref
from reconciler.manifest.build import ManifestWarning
from reconciler.manifest.loader import Inspection, LoadResult, inspect_manifests, load_manifests

__all__ = [
    "Inspection",
    "LoadResult",
    "ManifestWarning",
    "envref",
    "inspect_manifests",
    "load_manifests",
]
