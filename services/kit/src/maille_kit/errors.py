"""What a service's domain code raises when it refuses: an error in the domain's words, with no HTTP in it. The
kit's app answers each kind with its status as a problem document, in one place (`problems.py`); a router never
builds one for them."""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal of the domain: `detail` says what is wrong; `extensions` add named facts (`field`, `refused`…)."""

    status: ClassVar[int] = 400

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


class Invalid(DomainError):
    """What was asked cannot be: a value out of its rules."""

    status = 422


class Forbidden(DomainError):
    """The caller may not do this."""

    status = 403


class NotFound(DomainError):
    """No such thing for this caller (or one they may not know of)."""

    status = 404


class Conflict(DomainError):
    """The thing is not in a state that allows it."""

    status = 409


class TooLarge(DomainError):
    """Beyond a size the service keeps."""

    status = 413


class Unavailable(DomainError):
    """A part the domain needs does not answer now; try again."""

    status = 503


class Unsupported(DomainError):
    """Content of a kind the service does not take."""

    status = 415


class PreconditionFailed(DomainError):
    """The thing changed since the caller read it (their If-Match names an older version)."""

    status = 412
