"""Domain errors raised by data-access functions; only routes translate them into HTTP responses."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    pass


class ConflictError(DomainError):
    pass


class IllegalTransitionError(ConflictError):
    pass


class ForbiddenError(DomainError):
    pass


class UnavailableError(DomainError):
    """Another system we depend on (the photo store) cannot be reached: nothing was changed, retry later."""


class InvalidInputError(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def http_status(exc: DomainError) -> int:
    """The HTTP status of a domain error; the app's one DomainError handler answers with it."""
    kinds = (
        (NotFoundError, 404),
        (ForbiddenError, 403),
        (InvalidInputError, 422),
        (ConflictError, 409),
        (UnavailableError, 503),
    )
    for kind, code in kinds:
        if isinstance(exc, kind):
            return code
    return 400
