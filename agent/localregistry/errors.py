"""The local registry's HTTP errors: each becomes `{"detail": ...}` with its status code."""

from __future__ import annotations

from typing import Any


class HTTPProblem(Exception):
    """A request the registry refuses; the docstring of each subclass is its default detail."""

    status = 500

    def __init__(self, detail: Any = None, *, headers: dict[str, str] | None = None) -> None:
        self.detail = detail if detail is not None else (self.__doc__ or "").strip()
        self.headers = headers or {}
        super().__init__(str(self.detail))


class BadRequest(HTTPProblem):
    """The request is malformed."""

    status = 400


class Unauthorized(HTTPProblem):
    """Missing or invalid bearer token."""

    status = 401

    def __init__(self, detail: Any = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(HTTPProblem):
    """The signature of this URL is invalid or it has expired."""

    status = 403


class NotFound(HTTPProblem):
    """Not found."""

    status = 404


class MethodNotAllowed(HTTPProblem):
    """This method is not allowed here."""

    status = 405


class Conflict(HTTPProblem):
    """The request conflicts with the current state."""

    status = 409


class PayloadTooLarge(HTTPProblem):
    """The request body is larger than this registry accepts."""

    status = 413


class Unprocessable(HTTPProblem):
    """The request body or parameters are invalid."""

    status = 422


def validation_error(loc: list[str | int], msg: str, kind: str = "value_error") -> Unprocessable:
    """A 422 in FastAPI's `HTTPValidationError` shape, as the SDK expects."""
    return Unprocessable([{"loc": loc, "msg": msg, "type": kind}])


class LengthRequired(HTTPProblem):
    """The upload must say its length (Content-Length)."""

    status = 411
