"""The generated CRI stubs (`make proto` → cri/api/gen/), re-exported as `Any` for type checking:
grpc's generated service module is untyped and would drown mypy strict in errors.

Use `from cri.api import api_pb2, api_pb2_grpc` in typed code.
"""

from __future__ import annotations

import importlib
from typing import Any

api_pb2: Any = importlib.import_module("cri.api.gen.api_pb2")
api_pb2_grpc: Any = importlib.import_module("cri.api.gen.api_pb2_grpc")

__all__ = ["api_pb2", "api_pb2_grpc"]
