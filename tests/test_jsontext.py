"""The JSON text made by ``reconciler.jsontext``'s encoders: the standard library's,
set up once, gives the text and the errors ``json.JSONEncoder`` gives."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import jsontext
from reconciler.apifacts import encoded_size
from reconciler.model import canonical_json


def _as_dict(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # inf and nan included: refused where allow_nan is off
    st.text(),  # lone surrogates, control characters and non-ASCII included
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
        st.dictionaries(st.text(max_size=3), inner, max_size=2).map(MappingProxyType),
    ),
    max_leaves=12,
)


def _outcome(encode: Any, value: Any) -> tuple[str, str]:
    try:
        return "text", encode(value)
    except (ValueError, TypeError) as exc:
        return type(exc).__name__, str(exc)


@settings(max_examples=500, deadline=None)
@given(
    value=_VALUES,
    sort_keys=st.booleans(),
    allow_nan=st.booleans(),
    with_default=st.booleans(),
)
def test_the_text_and_errors_are_json_s_own(
    value: Any, sort_keys: bool, allow_nan: bool, with_default: bool
) -> None:
    default = _as_dict if with_default else None
    ours = jsontext.encoder(sort_keys=sort_keys, allow_nan=allow_nan, default=default)
    theirs = json.JSONEncoder(
        separators=(",", ":"),
        ensure_ascii=False,
        sort_keys=sort_keys,
        allow_nan=allow_nan,
        default=default,
    ).encode
    assert _outcome(ours, value) == _outcome(theirs, value)


def test_the_plan_s_two_encodings_keep_their_rules() -> None:
    """The hash's form takes any Mapping and sorts keys; a body's size refuses what
    JSON cannot carry and counts UTF-8 bytes."""
    assert canonical_json(MappingProxyType({"b": 1, "a": (1, 2)})) == '{"a":[1,2],"b":1}'
    assert encoded_size({"task": "é"}) == len('{"task":"é"}'.encode())
    with pytest.raises(ValueError):
        encoded_size({"loop": {"maxIterations": math.inf}})
    with pytest.raises(UnicodeEncodeError):
        encoded_size({"task": "\ud800"})


def test_without_the_c_encoder_json_s_own_encode_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    encode = jsontext.encoder(sort_keys=True)
    assert encode({"b": [1.5, None], "a": "x"}) == '{"a":"x","b":[1.5,null]}'
    assert getattr(encode, "__self__", None).__class__ is json.JSONEncoder
