"""Atomic JSON files: the state records the daemon, the monitors and a restarted daemon share."""

from __future__ import annotations

import json
import os
from typing import Any


def write_json(path: str, doc: dict[str, Any]) -> None:
    """Write-then-rename: a reader (maybe another process) sees the old file or the new one, whole."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            doc: dict[str, Any] = json.load(f)
            return doc
    except (FileNotFoundError, ValueError):
        return None
