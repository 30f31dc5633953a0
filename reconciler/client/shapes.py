"""What the client demands of each response, and what it tolerates.

Unknown fields are always kept. Missing optional fields are fine. A response without a
field the tool cannot work without (``sessionId`` of a create, ``sessions`` of a list)
raises ``ShapeError``, which the client turns into a ``ProtocolError``. Shapes the real
service is known to send (docs/reference/service-notes.md) are normalised: a bare users array
becomes ``{"users": [...]}``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ShapeError",
    "check_discover",
    "check_list_field",
    "check_object",
    "check_sessions_page",
    "check_users",
    "page_total",
    "require_str",
    "session_items",
]


class ShapeError(ValueError):
    """A response lacks something required; the message names it."""


def check_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ShapeError(f"expected a JSON object, got {_kind(data)}")
    return data


def require_str(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ShapeError(f"required field {key!r} is missing or not a string")
    return data


def check_list_field(data: Any, key: str) -> dict[str, Any]:
    """An object whose ``key`` (when present) is an array of objects; missing or null
    means []."""
    obj = check_object(data)
    value = obj[key] = _array_or_empty(obj.get(key))
    if not isinstance(value, list):
        raise ShapeError(f"field {key!r} is {_kind(value)}, expected an array")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ShapeError(f"{key}[{i}] is {_kind(item)}, expected an object")
    return obj


def check_sessions_page(data: Any) -> dict[str, Any]:
    """``{"sessions": {"websocket": [...], "sandbox": [...]}, "total": n}``.

    ``sessions`` is required; either group may be missing or null (taken as empty);
    every item needs a ``sessionId``, since paging de-duplicates by it.
    """
    obj = check_object(data)
    if "sessions" not in obj:
        raise ShapeError("required field 'sessions' is missing")
    groups = obj["sessions"]
    if not isinstance(groups, dict):
        raise ShapeError(f"field 'sessions' is {_kind(groups)}, expected an object")
    for group in ("websocket", "sandbox"):
        items = groups[group] = _array_or_empty(groups.get(group))
        if not isinstance(items, list):
            raise ShapeError(f"field 'sessions.{group}' is {_kind(items)}, expected an array")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("sessionId"), str):
                raise ShapeError(f"sessions.{group}[{i}] has no string 'sessionId'")
    total = obj.get("total")
    if total is not None and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        raise ShapeError(f"field 'total' is {total!r}, expected a non-negative integer")
    return obj


def session_items(page: dict[str, Any]) -> list[dict[str, Any]]:
    """The websocket sessions of a checked page: the ones the API creates and tags.

    Sandbox entries carry no tags or labels, so nothing can be managed through them.
    """
    items: list[dict[str, Any]] = page["sessions"]["websocket"]
    return items


def page_total(page: dict[str, Any]) -> int | None:
    total = page.get("total")
    return total if isinstance(total, int) else None


def check_users(data: Any) -> dict[str, Any]:
    """``{"users": [...], "total", "limit", "offset"}``; a bare array is accepted too."""
    if isinstance(data, list):
        data = {"users": data, "total": len(data)}
    return check_list_field(data, "users")


def check_discover(data: Any) -> dict[str, Any]:
    """``{"url": "https://..."}``; a trailing ``/`` is stripped, as the SDK does."""
    obj = require_str(check_object(data), "url")
    obj["url"] = obj["url"].rstrip("/")
    return obj


def _array_or_empty(value: Any) -> Any:
    # The service sends null for an optional value it has none of (docs/reference/service-notes.md).
    return [] if value is None else value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )
