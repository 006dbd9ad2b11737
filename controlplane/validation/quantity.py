"""Kubernetes resource quantities ("500m", "128Mi", "1e3") as exact fractions.

Shared by validation, LimitRanger and ResourceQuota (and usable by the scheduler): exact arithmetic
avoids the rounding surprises floats give for sums of millicores.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["QuantityError", "format_quantity", "parse_quantity"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
_RE = re.compile(r"^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$")


class QuantityError(ValueError):
    pass


def parse_quantity(text: str | int | float) -> Fraction:
    if isinstance(text, bool):
        raise QuantityError(f"quantities must match the regular expression {_RE.pattern!r}")
    if isinstance(text, int | float):
        return Fraction(str(text))
    match = _RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise QuantityError(
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        )
    number, exponent, suffix = match.groups()
    value = Fraction(number)
    if exponent:
        return value * Fraction(10) ** int(exponent[1:])
    suffix = suffix or ""
    return value * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])


def format_quantity(value: Fraction, *, binary: bool = False) -> str:
    """A canonical short form: integers plain (or with a binary suffix when `binary` and exact),
    fractions in millis ("250m"), finer values in nanos."""
    if value.denominator == 1:
        whole = value.numerator
        if binary and whole:
            for suffix, factor in reversed(_BINARY.items()):
                if whole % factor == 0:
                    return f"{whole // factor}{suffix}"
        return str(whole)
    millis = value * 1000
    if millis.denominator == 1:
        return f"{millis.numerator}m"
    return f"{round(value * 10**9)}n"
