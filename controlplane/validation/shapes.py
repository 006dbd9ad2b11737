"""Reading client JSON defensively: a field may hold any JSON type, and policy code must answer with a
field error (or ignore it) rather than crash into a 500."""

from __future__ import annotations

from typing import Any

__all__ = ["as_dict", "as_list", "dict_items"]


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is an object, else an empty (throwaway) one."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dict_items(value: Any) -> list[dict[str, Any]]:
    """The object elements of a list field (others are validation's business)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
