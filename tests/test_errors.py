from __future__ import annotations

import inspect

import pytest

from reconciler import errors
from reconciler.errors import (
    ApiError,
    ManifestError,
    ManifestErrors,
    ReconcilerError,
    SafetyError,
    SafetyViolation,
    UnsetEnvError,
)


def test_every_error_is_a_reconciler_error_and_listed() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__ == errors.__name__
    ]
    assert classes
    for cls in classes:
        assert issubclass(cls, ReconcilerError), cls
        assert cls.__name__ in errors.__all__


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.UsageError, 64),
        (errors.ManifestError, 65),
        (errors.UnsetEnvError, 65),
        (errors.SafetyError, 3),
        (errors.StalePlanError, 4),
        (errors.ApiError, 1),
        (errors.NotFoundError, 1),
        (errors.Interrupted, 130),
    ],
)
def test_exit_codes_follow_design(cls: type[ReconcilerError], code: int) -> None:
    assert cls.exit_code == code


def test_manifest_error_names_file_line_column() -> None:
    err = ManifestError("unknown field 'tsk'", file="a.yaml", line=3, column=5)
    assert str(err) == "a.yaml:3:5: unknown field 'tsk'"
    many = ManifestErrors([err, ManifestError("bad", file="b.yaml", line=1)])
    assert str(many).splitlines() == ["a.yaml:3:5: unknown field 'tsk'", "b.yaml:1: bad"]


def test_unset_env_error_names_only_names() -> None:
    err = UnsetEnvError(["B", "A", "A"], where=["nightly"])
    assert str(err) == "environment variable(s) not set: A, B (used by nightly)"


def test_safety_error_names_rule_and_sessions() -> None:
    err = SafetyError(
        [SafetyViolation("preventDestroy", "would destroy", ("db-migrate",), overridable=False)]
    )
    assert "preventDestroy" in str(err) and "db-migrate" in str(err)
    assert "cannot" in str(err)


def test_api_error_message_carries_request_and_status() -> None:
    err = ApiError("not found", method="GET", path="/hub/session/x", status=404, code="C")
    assert str(err) == "GET /hub/session/x HTTP 404 C: not found"
