"""The SessionSet template language: Jinja2 expressions in a sandbox, nothing more."""

from __future__ import annotations

from typing import Any

import pytest

from reconciler.manifest.budget import ExpansionBudget
from reconciler.manifest.template import MAX_VALUE_CHARS, TemplateProblem, render_value, slug

ITEM = {"item": {"repo": "acme/API_v2", "n": 3, "tags": ["a", "b"]}, "index": 4}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("review-{{ item.repo | slug }}", "review-acme-api-v2"),
        ("{{ item.repo | lower | replace('/', '.') }}", "acme.api_v2"),
        ("n{{ index }}", "n4"),
        ("{% if item.n > 2 %}big{% else %}small{% endif %}", "big"),
        ("{{ item.tags | join(',') }}", "a,b"),
        ("{{ item.tags | join(d='+') }}", "a+b"),
        ("{{ '--x--' | trim(chars='-') }}", "x"),
        ("{{ 'aaa' | replace('a', 'b', count=2) }}", "bba"),
        ("{{ item.repo[5:] ~ '/' ~ item.repo[:4] }}", "API_v2/acme"),
        ("{{ item.tags + ['c'] }}", ["a", "b", "c"]),
        ("{{ '-' * 3 }}", "---"),
        ("{{ item.n * 2 }}", 6),  # one expression alone keeps its type
        ("{{ item.tags }}", ["a", "b"]),
        ("{{ item.n > 1 }}", True),
        (" {{ item.repo }} ", "acme/API_v2"),
        ("{{ item.n }} runs", "3 runs"),  # text around it: a string
        ("${env:TOKEN}", "${env:TOKEN}"),  # not template syntax: passes through
        ("no markers at all", "no markers at all"),
    ],
)
def test_renders(source: str, expected: Any) -> None:
    assert render_value(source, ITEM, ExpansionBudget()) == expected


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ item.nope }}", "UndefinedError: 'dict object' has no attribute 'nope'"),
        ("{{ other }}", "UndefinedError: 'other' is undefined"),
        ("{{ item.repo.upper() }}", "calling functions or methods is not allowed"),
        ("{{ range(10) }}", "calling functions or methods is not allowed"),
        ("{% for t in item.tags %}{{ t }}{% endfor %}", "the for statement is not allowed"),
        ("{% set x = 1 %}{{ x }}", "the assign statement is not allowed"),
        ("{% macro m() %}{% endmacro %}", "the macro statement is not allowed"),
        ("{{ 9 ** 9 }}", "the ** operator is not allowed"),
        ("{{ '%999999999d' % 1 }}", "% string formatting is not allowed"),
        ("{{ 'x' * 2000000 }}", f"a repeated value would be over {MAX_VALUE_CHARS}"),
        ("{{ item.tags * 2000000 }}", f"a repeated value would be over {MAX_VALUE_CHARS}"),
        ("{{ item.__class__ }}", "access to attribute '__class__'"),
        ("{{ item.repo | center(1000000000) }}", "No filter named 'center'"),
        ("{{ item.repo", "TemplateSyntaxError: unexpected end of template"),
    ],
)
def test_refuses(source: str, reason: str) -> None:
    with pytest.raises(TemplateProblem) as caught:
        render_value(source, ITEM, ExpansionBudget())
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("{{ item.repp }}", "has no attribute 'repp'; did you mean repo?"),
        ("{{ itme.repo }}", "UndefinedError: 'itme' is undefined; did you mean item?"),
        ("{{ item.repo | slgu }}", "No filter named 'slgu'; did you mean slug?"),
        ("{{ item.zzzzzz }}", "has no attribute 'zzzzzz'"),  # nothing close: no guess
    ],
)
def test_an_unknown_name_suggests_the_one_meant(source: str, said: str) -> None:
    """As a mistyped field or flag does: the close names of the item's keys, the
    template's variables or its filters (names only, never a value)."""
    with pytest.raises(TemplateProblem) as caught:
        render_value(source, ITEM, ExpansionBudget())
    assert str(caught.value).endswith(said), str(caught.value)


def test_slug() -> None:
    assert slug("  Acme / Web--App  ") == "acme-web-app"
    assert slug(42) == "42"
