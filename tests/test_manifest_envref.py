"""${env:NAME} references: syntax, resolution, unset names (never values)."""

from __future__ import annotations

import pytest

from reconciler.errors import EnvNotTextError, UnsetEnvError
from reconciler.manifest.envref import REF_RE, find_malformed, find_refs, resolve, unset_names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("${env:A}", {"A"}),
        ("x ${env:_b1} y ${env:C:-d}", {"_b1", "C"}),
        ("${env:A:-}", {"A"}),
        ("${HOME} $env:X ${ env:Y}", set()),
    ],
)
def test_find_refs(text: str, names: set[str]) -> None:
    assert find_refs({"k": [text]}) == names


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("${env:}", ["${env:}"]),
        ("${env:1BAD}", ["${env:1BAD}"]),
        ("a ${env:OK} ${env:NO", ["${env:NO"]),
        ("${env:A:default}", ["${env:A:default}"]),
        ("${env:A-B}", ["${env:A-B}"]),
        ("${env:OK} ${env:A:-x} ${HOME}", []),
        # A default holding a reference is not A's default `${env:B` and a stray `}`.
        ("R ${env:A:-${env:B}}", ["${env:A:-${env:B}"]),
        ("${env:A:-$HOME/x}", []),
    ],
)
def test_find_malformed(text: str, bad: list[str]) -> None:
    assert find_malformed(text) == bad


def test_resolve_substitutes_and_defaults() -> None:
    value = {"a": "${env:A}-${env:B:-two}", "b": ["${env:C:-}"], "c": 3}
    assert resolve(value, {"A": "one"}) == {"a": "one-two", "b": [""], "c": 3}
    assert resolve(value, {"A": "1", "B": "2", "C": "3"}) == {"a": "1-2", "b": ["3"], "c": 3}


def test_resolve_raises_with_names_only() -> None:
    with pytest.raises(UnsetEnvError) as excinfo:
        resolve({"t": "${env:TOKEN} ${env:OTHER}"}, {"TOKEN": "hunter2"})
    assert excinfo.value.names == ("OTHER",)
    assert "hunter2" not in str(excinfo.value)


def test_unset_names() -> None:
    assert unset_names(["${env:A}", "${env:B:-x}", "${env:C}"], {"C": ""}) == {"A"}


def test_ref_re_groups() -> None:
    m = REF_RE.fullmatch("${env:NAME:-a b}")
    assert m is not None and m["name"] == "NAME" and m["default"] == "a b"


def test_a_variable_that_is_not_utf8_is_named_never_shown() -> None:
    # Bytes that are not UTF-8 reach Python as lone surrogates: no request can carry
    # them. The error names the variable, not its value.
    with pytest.raises(EnvNotTextError) as caught:
        resolve({"env": {"TOKEN": "${env:TOKEN}"}}, {"TOKEN": "canary\udcffsecret"})
    assert caught.value.names == ("TOKEN",)
    assert str(caught.value) == (
        "environment variable(s) not valid UTF-8 text: TOKEN; values are not shown"
    )
    # Text that is UTF-8 passes, non-ASCII included.
    assert resolve("${env:A}", {"A": "Zoë ✓"}) == "Zoë ✓"


def test_hundreds_of_unset_variables_are_listed_twenty_then_counted() -> None:
    names = [f"V{i:03}" for i in range(400)]
    message = str(UnsetEnvError(names))
    assert message.startswith("environment variable(s) not set: V000, V001,")
    assert "V019 and 380 more" in message and "V020" not in message
    assert UnsetEnvError(names).names == tuple(names)  # all kept, for callers
    assert str(UnsetEnvError(["B", "A"])) == "environment variable(s) not set: A, B"
    # The places that need them too.
    places = [f"create s{i:03}" for i in range(30)]
    message = str(UnsetEnvError(["A"], where=places))
    assert message.endswith("(used by create s000, " + message.split("create s000, ")[1])
    assert "create s019 and 10 more)" in message and "create s020" not in message
