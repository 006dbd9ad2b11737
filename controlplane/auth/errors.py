"""Errors of the auth package.

AuthError
└── InvalidToken  a bearer token that is malformed, forged or expired (→ 401)
"""

from __future__ import annotations

__all__ = ["AuthError", "InvalidToken"]


class AuthError(Exception):
    pass


class InvalidToken(AuthError):
    pass
