"""Errors the domain raises; each has a dotted code clients can switch on."""

from __future__ import annotations


class DomainError(Exception):
    """A refused request. ``code`` is stable and documented in docs/protocol.md."""

    status = 400

    def __init__(self, code: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class Forbidden(DomainError):
    status = 403
