"""docs/internals.md names the seams by signature (`plan_forget(project, index, name)`);
those are written by hand, so this holds each one to the code.

Every backticked call in the page is looked up among the package's functions, classes
and methods (and the test helpers the page names), by its dotted name's tail. A name
found nowhere fails: the page names something that is gone. Where the span lists
parameters (not a call with argument expressions), they must be the parameters of some
object of that name, in order, ``*`` before the keyword-only ones; without ``...`` in the
span, all of them.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from docs_pages import page

import reconciler

TESTS = Path(__file__).resolve().parent
PAGE = "internals.md"
SPAN = re.compile(r"`([A-Za-z_][\w.]*)\(([^`]*?)\)(?:\s*->[^`]*)?`")
PARAM = re.compile(r"^(\*{0,2})([A-Za-z_]\w*)\s*(?::[^=]*)?(?:=.*)?$")
# Calls the page shows that are not this package's: SQL, Python's builtins and gc.
FOREIGN = {"COUNT", "str", "gc.collect"}


@dataclass(frozen=True)
class Documented:
    name: str  # the dotted name as written
    params: tuple[str, ...] | None  # None: a call with argument expressions, not a signature
    elided: bool  # `...` among them: the page lists some, not all
    keyword_only: frozenset[str]
    starred: bool  # a bare `*` among them
    text: str


def _split(args: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in args:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _documented(text: str) -> Iterator[Documented]:
    for match in SPAN.finditer(text):
        name, args = match.group(1), match.group(2)
        params: list[str] = []
        keyword_only: set[str] = set()
        elided, star, call = False, False, False
        for part in _split(args):
            if part == "...":
                elided = True
            elif part == "*":
                star = True
            elif found := PARAM.match(part):
                params.append(found.group(2))
                if star and not found.group(1):
                    keyword_only.add(found.group(2))
            else:
                call = True  # an argument expression: `renames(desired)`, `**overrides`
        yield Documented(
            name,
            None if call else tuple(params),
            elided,
            frozenset(keyword_only),
            star,
            match.group(0),
        )


def _modules() -> Iterator[object]:
    for info in pkgutil.walk_packages(reconciler.__path__, "reconciler."):
        yield importlib.import_module(info.name)
    for path in sorted(TESTS.glob("*.py")):
        if not path.stem.startswith(("test_", "conftest")):
            yield importlib.import_module(path.stem)


def _index() -> dict[str, list[Callable[..., object]]]:
    """Every dotted path (module.attr, module.Class.method) each object is reachable by."""
    index: dict[str, list[Callable[..., object]]] = {}

    def add(path: str, obj: Callable[..., object]) -> None:
        found = index.setdefault(path, [])
        if all(o is not obj for o in found):
            found.append(obj)

    for module in _modules():
        prefix = getattr(module, "__name__", "")
        for attr, obj in vars(module).items():
            if inspect.isfunction(obj):
                add(f"{prefix}.{attr}", obj)
            elif inspect.isclass(obj) and obj.__module__.startswith(("reconciler", prefix)):
                add(f"{prefix}.{attr}", obj)
                for method, member in vars(obj).items():
                    inner = (
                        member.__func__
                        if isinstance(member, classmethod | staticmethod)
                        else member
                    )
                    if inspect.isfunction(inner):
                        add(
                            f"{prefix}.{attr}.{method}",
                            member if inspect.isfunction(member) else getattr(obj, method),
                        )
    return index


INDEX = _index()


def _candidates(name: str) -> list[Callable[..., object]]:
    found: list[Callable[..., object]] = []
    for path, objects in INDEX.items():
        if path == name or path.endswith("." + name):
            found.extend(o for o in objects if all(o is not f for f in found))
    return found


def _parameters(obj: Callable[..., object]) -> list[inspect.Parameter]:
    params = list(inspect.signature(obj).parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    return params


def _mismatch(doc: Documented, obj: Callable[..., object]) -> str | None:
    """Why ``doc`` is not ``obj``'s signature, or None when it is."""
    assert doc.params is not None
    actual = _parameters(obj)
    names = [p.name for p in actual]
    missing = [p for p in doc.params if p not in names]
    if missing:
        return f"no parameter {', '.join(missing)} (has {', '.join(names) or 'none'})"
    positions = [names.index(p) for p in doc.params]
    if positions != sorted(positions):
        return f"parameters out of order (has {', '.join(names)})"
    kinds = {p.name: p.kind for p in actual}
    # `f(..., endpoint=)` says "it takes endpoint="; only a `*` written says where
    # the keyword-only parameters start.
    for p in doc.params if doc.starred else ():
        keyword = kinds[p] is inspect.Parameter.KEYWORD_ONLY
        if keyword != (p in doc.keyword_only):
            return f"{p} is {'' if keyword else 'not '}keyword-only"
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    left = [p.name for p in actual if p.name not in doc.params and p.kind not in variadic]
    if left and not doc.elided:
        return f"the page leaves out {', '.join(left)} and says no `...`"
    return None


DOCUMENTED = [d for d in _documented(page(PAGE)) if d.name not in FOREIGN]


def test_the_page_names_signatures() -> None:
    # The check below runs over something: the page does name its seams by signature.
    assert len(DOCUMENTED) > 50
    assert sum(d.params is not None for d in DOCUMENTED) > 40


@pytest.mark.parametrize("doc", DOCUMENTED, ids=lambda d: d.text)
def test_each_documented_signature_is_the_code_s(doc: Documented) -> None:
    candidates = _candidates(doc.name)
    assert candidates, f"docs/{PAGE}: {doc.text} names nothing in the package"
    if doc.params is None:
        return
    why = [_mismatch(doc, c) for c in candidates]
    assert None in why, f"docs/{PAGE}: {doc.text}: " + "; ".join(w for w in why if w)
