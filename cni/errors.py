"""CNI errors: one root, one subclass per well-known spec code.

Hierarchy (spec 1.1 "Error" section, well-known codes):

    CniError                      code set per instance (plugin-specific codes are >= 100)
    ├── IncompatibleVersion       1
    ├── UnsupportedField          2
    ├── ContainerUnknown          3
    ├── InvalidEnvironment        4
    ├── IOFailure                 5
    ├── DecodeFailure             6
    ├── InvalidConfig             7
    │   └── PluginNotFound        7  (runtime side: no executable for `type` in the bin dirs)
    ├── TryAgainLater             11
    ├── PluginNotAvailable        50 (STATUS)
    └── PluginLimited             51 (STATUS: existing containers may be affected)

The exception is turned into spec error JSON only at the edge (the plugin executable or the agent),
and back into the typed exception by the invoker, so callers catch by type.
This module is stdlib-only: the per-call executable imports it.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CniError(Exception):
    """A CNI failure carrying the spec `code`, a short `msg` and optional `details`."""

    default_code: ClassVar[int] = 999

    def __init__(self, msg: str, details: str = "", *, code: int | None = None) -> None:
        super().__init__(f"{msg}: {details}" if details else msg)
        self.code = self.default_code if code is None else code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> dict[str, Any]:
        """The spec error object printed on stdout with a non-zero exit status."""
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


class IncompatibleVersion(CniError):
    default_code = 1


class UnsupportedField(CniError):
    default_code = 2


class ContainerUnknown(CniError):
    default_code = 3


class InvalidEnvironment(CniError):
    default_code = 4


class IOFailure(CniError):
    default_code = 5


class DecodeFailure(CniError):
    default_code = 6


class InvalidConfig(CniError):
    default_code = 7


class PluginNotFound(InvalidConfig):
    pass


class TryAgainLater(CniError):
    default_code = 11


class PluginNotAvailable(CniError):
    default_code = 50


class PluginLimited(CniError):
    default_code = 51


_BY_CODE: dict[int, type[CniError]] = {
    cls.default_code: cls
    for cls in (
        IncompatibleVersion,
        UnsupportedField,
        ContainerUnknown,
        InvalidEnvironment,
        IOFailure,
        DecodeFailure,
        InvalidConfig,
        TryAgainLater,
        PluginNotAvailable,
        PluginLimited,
    )
}


def error_from_json(obj: Any) -> CniError:
    """Rebuild the typed exception from a plugin's error JSON (unknown codes stay plain CniError)."""
    if not isinstance(obj, dict) or not isinstance(obj.get("code"), int):
        return DecodeFailure("plugin printed an error object without an integer code", repr(obj)[:500])
    code: int = obj["code"]
    msg = str(obj.get("msg", ""))
    details = str(obj.get("details", "") or "")
    cls = _BY_CODE.get(code, CniError)
    return cls(msg, details, code=code)
