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


class InvalidInputError(DomainError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
