"""Errors at the registry boundary. `aiohttp.ClientError` never leaves this package."""

from __future__ import annotations

from urllib.parse import urlsplit

from agent.errors import AgentError


def redact_url(url: str) -> str:
    """A URL without its query (presigned signatures live there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class RegistryError(AgentError):
    """The registry could not be used."""

    retryable = False  # the same call may succeed later
    away = False  # the registry as a whole is unreachable (not one call failing): wait for it


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, or said it is unavailable (502, 503, 504)."""

    retryable = True
    away = True


class ServerError(RegistryUnavailable):
    """The registry failed this request (a 500): worth retrying, but it is up."""

    away = False


class RegistryRejected(RegistryError):
    """The registry refused a request."""

    def __init__(
        self, method: str, path: str, status: int, detail: str, *, resent: bool = True
    ) -> None:
        self.method, self.path, self.status, self.detail = method, path, status, detail
        # Whether the request may have been sent more than once (aiohttp resends an
        # idempotent request once when a kept-alive connection drops): the refusal may then
        # answer our own earlier copy. True when unknown.
        self.resent = resent
        super().__init__(f"{method} {path} -> {status}: {detail}")


class Unauthorized(RegistryRejected):
    """The registry did not accept the token."""


class NotFound(RegistryRejected):
    """The registry has no such thing."""


class Conflict(RegistryRejected):
    """The request conflicts with the registry's state (a lost claim, a canceled job)."""


class Throttled(RegistryRejected):
    """The registry asked the client to slow down."""

    retryable = True


class IntegrityError(RegistryError):
    """Downloaded bytes do not match their sha."""


class UrlExpired(RegistryError):
    """A presigned URL was refused (403): ask the registry for a fresh one and try again."""

    retryable = True


class BadRange(RegistryUnavailable):
    """The storage answered a range that was not asked for: start the download again."""

    away = False


class DiskFull(RegistryError):
    """A download did not fit on the local disk (ENOSPC); the partial file was removed."""

    def __init__(self, path: str, needed: int | None, free: int) -> None:
        self.path, self.needed, self.free = path, needed, free
        want = "" if needed is None else f"; it needs {needed} bytes"
        super().__init__(f"no space left on the disk holding {path} ({free} bytes free{want})")


def rejected(
    method: str, path: str, status: int, detail: str, *, resent: bool = True
) -> RegistryError:
    """The error for a refused request, by status code."""
    if status in (502, 503, 504):
        return RegistryUnavailable(f"{method} {path} -> {status}: {detail}")
    if status >= 500:
        return ServerError(f"{method} {path} -> {status}: {detail}")
    kind: type[RegistryRejected] = {
        401: Unauthorized,
        403: Unauthorized,
        404: NotFound,
        409: Conflict,
        429: Throttled,
    }.get(status, RegistryRejected)
    return kind(method, path, status, detail, resent=resent)


class URLExpired(Unauthorized):
    """A presigned URL was refused (403: expired, or its signature no longer holds)."""


class PartNotAcknowledged(RegistryError):
    """A store answered a part PUT without acknowledging it (a 200 without an ETag)."""

    retryable = True
