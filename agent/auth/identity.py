"""Identity-service mode, the agent's side: an ES384 key instead of a PAT, exchanged for
short-lived access tokens that are refreshed before they expire.

As the official SDK does (`istari_digital_client/identity/auth/identity_service.py`): the
credential JSON `{clientId, keyId, key}` (inline base64, or a file), an RFC 7523 client
assertion posted to `<identity>/api/v2/oauth2/token` (falling back to the v1
`<identity>/oauth2/token` once, when the v2 path is not served), and the answer's
`access_token` as the registry's bearer. The token is renewed when less than a quarter of its
life (at most 60 s, the SDK's margin) is left; a renewal that fails for an outage keeps the
current token while it is valid. A refusal (an expired, revoked or unknown key) is final:
`IdentityRefused`, one line naming the setting and what to do.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from agent import jsontext
from agent.protocol import identity as rules
from agent.registry.errors import RegistryError, RegistryUnavailable
from agent.secretfiles import InsecureSecretFile, read_secret

if TYPE_CHECKING:
    from agent.config import Settings

log = structlog.get_logger(__name__)

REFRESH_MARGIN = 60.0  # seconds before expiry, at most (the SDK's margin)
TOKEN_ATTEMPTS = 3  # a token fetch that meets an outage, as the SDK bounds it
_TIMEOUT = aiohttp.ClientTimeout(total=10)


class IdentityCredentialsError(RegistryError):
    """The identity-service credentials cannot be used (so neither can the registry)."""


class IdentityRefused(RegistryError):
    """The identity service refused the agent's key."""


class _Transient(Exception):
    """A token fetch that may succeed when tried again (unreachable, 5xx)."""


def load_credentials(inline: str | None, file: Path | None) -> rules.Credentials:
    """The credentials from `registry_api_credentials_file` (owner-only) or the inline base64
    `registry_api_credentials`; IdentityCredentialsError names the setting and the problem."""
    if file is not None:
        setting = "registry_api_credentials_file"
        try:
            raw = read_secret(file)
        except OSError as e:
            msg = f"{setting}: cannot read {file}: {e.strerror}"
            raise IdentityCredentialsError(msg) from None
        except InsecureSecretFile as e:
            msg = f"{setting}: {e}"
            raise IdentityCredentialsError(msg) from None
    else:
        setting = "registry_api_credentials"
        try:
            raw = base64.b64decode(inline or "", validate=True)
        except (binascii.Error, ValueError):
            msg = f"{setting}: not base64 (give base64 of the credential JSON, or use a file)"
            raise IdentityCredentialsError(msg) from None
    try:
        return rules.parse_credentials(raw)
    except rules.BadCredentials as e:
        msg = f"{setting}: not identity credentials {{clientId, keyId, key}}: {e}"
        raise IdentityCredentialsError(msg) from None


@dataclass
class _Token:
    value: str
    expires: float  # monotonic
    refresh_at: float  # monotonic


class IdentityAuth:
    """The registry bearer in identity-service mode: a cached access token, renewed early."""

    def __init__(
        self,
        creds: rules.Credentials,
        identity_url: str,
        setting: str,
        *,
        ssl: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.creds = creds
        self.identity_url = identity_url.rstrip("/")
        self._setting = setting
        self._ssl = ssl
        self._clock = clock
        self._paths = [rules.TOKEN_PATH_V2, rules.TOKEN_PATH_V1]  # until one answers
        self._token: _Token | None = None
        self._lock = asyncio.Lock()  # concurrent callers share one exchange

    async def bearer(self, session: aiohttp.ClientSession) -> str:
        """A valid access token, fetched or renewed first when due."""
        async with self._lock:
            token = self._token
            if token is None or self._clock() >= token.refresh_at:
                token = await self._renew(session, token)
            return token.value

    def invalidate(self) -> None:
        """Forget the token (the registry refused it): the next call fetches a new one."""
        self._token = None

    async def _renew(self, session: aiohttp.ClientSession, current: _Token | None) -> _Token:
        try:
            self._token = await self._fetch_with_retries(session)
        except RegistryUnavailable as e:
            if current is None or self._clock() >= current.expires:
                raise
            # An outage while the token still works: keep it and try again at the next call.
            log.warning("identity.refresh_failed", error=str(e), client_id=self.creds.client_id)
            return current
        return self._token

    async def _fetch_with_retries(self, session: aiohttp.ClientSession) -> _Token:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(TOKEN_ATTEMPTS),
            wait=wait_exponential(multiplier=0.2, max=10.0),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._fetch(session)
        except _Transient as e:
            msg = f"identity service {self.identity_url}: {e}"
            raise RegistryUnavailable(msg) from None
        raise AssertionError  # pragma: no cover - AsyncRetrying either returns or raises

    async def _fetch(self, session: aiohttp.ClientSession) -> _Token:
        """One exchange (two when the v2 path turns out not to be served)."""
        status, body = await self._post(session, self._paths[0])
        if status == 404 and len(self._paths) > 1 and "error" not in body:
            self._paths = self._paths[1:]  # the v1 API only, from now on
            status, body = await self._post(session, self._paths[0])
        if status >= 500:
            msg = f"token endpoint answered {status}"
            raise _Transient(msg)
        if status != 200:
            raise self._refused(status, body)
        if len(self._paths) > 1:
            self._paths = self._paths[:1]  # settled on v2
        return self._token_from(body)

    async def _post(self, session: aiohttp.ClientSession, path: str) -> tuple[int, dict[str, Any]]:
        url = self.identity_url + path
        form = {
            "grant_type": rules.GRANT_TYPE,
            "client_assertion_type": rules.ASSERTION_TYPE,
            "client_assertion": rules.client_assertion(self.creds, url, time.time()),
        }
        try:
            async with session.post(url, data=form, ssl=self._ssl, timeout=_TIMEOUT) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as e:
            msg = f"{type(e).__name__}: {e}"
            raise _Transient(msg) from None
        try:
            body = jsontext.loads(text) if text else {}
        except ValueError:
            body = {}
        return status, body if isinstance(body, dict) else {}

    def _token_from(self, body: dict[str, Any]) -> _Token:
        value = body.get("access_token")
        lifetime = body.get("expires_in", rules.DEFAULT_EXPIRES_IN)
        if not isinstance(value, str) or not value or not isinstance(lifetime, int | float):
            msg = "the token endpoint's answer has no usable access_token/expires_in"
            raise _Transient(msg)
        now = self._clock()
        margin = min(REFRESH_MARGIN, lifetime / 4)
        log.info(
            "identity.token",
            client_id=self.creds.client_id,
            expires_in=lifetime,
            endpoint=self._paths[0],
        )
        return _Token(value, now + lifetime, now + lifetime - margin)

    def _refused(self, status: int, body: dict[str, Any]) -> IdentityRefused:
        why = ": ".join(str(body[k]) for k in ("error", "error_description") if body.get(k))
        return IdentityRefused(
            f"{self._setting}: the identity service at {self.identity_url} refused key "
            f"{self.creds.key_id} of client {self.creds.client_id} (HTTP {status}"
            f"{', ' + why if why else ''}); the key is expired, revoked or not registered: "
            f"register a new key (POST /api/v2/key/agent, see docs/agent.md) and set "
            f"{self._setting} to its credentials"
        )


def identity_base(settings: Settings) -> str:
    """The identity service's base URL: `registry_identity_url`, else the registry's
    `/identity` prefix (where the platform's gateway and the local registry serve it)."""
    if settings.registry_identity_url is not None:
        return str(settings.registry_identity_url).rstrip("/")
    return settings.registry_url + "/identity"


def registry_bearer(settings: Settings) -> str | IdentityAuth:
    """What the registry client authenticates with: the PAT, or the identity key's tokens.

    Raises IdentityCredentialsError when the credentials cannot be used.
    """
    if settings.registry_api_token is not None:
        return settings.registry_api_token.get_secret_value()
    inline = settings.registry_api_credentials
    file = settings.registry_api_credentials_file
    creds = load_credentials(inline.get_secret_value() if inline else None, file)
    setting = "registry_api_credentials_file" if file else "registry_api_credentials"
    return IdentityAuth(creds, identity_base(settings), setting, ssl=settings.registry_ssl)
