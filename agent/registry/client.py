"""The registry client: one `aiohttp.ClientSession`, one method per endpoint, no retries.

Retries belong to the call sites, which know their budget. Every failure leaves as a
`RegistryError` (with `retryable` set for outages, 5xx and 429). The bearer token goes only
to the registry, never to presigned blob URLs, and no message carries a token or a URL's
query string (where presigned signatures live).
"""

from __future__ import annotations

import contextvars
import errno
import json
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import Any, Protocol, Self, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
from pydantic import BaseModel, ValidationError

from agent import __version__, jsontext
from agent.protocol import compat
from agent.protocol.content import file_slice
from agent.protocol.states import AgentStatus, JobStatus
from agent.registry import download
from agent.registry.errors import (
    Conflict,
    PartNotAcknowledged,
    RegistryError,
    RegistryRejected,
    RegistryUnavailable,
    URLExpired,
    rejected,
)
from agent.registry.errors import redact_url as _redact_url
from agent.registry.models import (
    Agent,
    AgentCredential,
    AgentPool,
    Job,
    ModuleVersionRef,
    MultipartUpload,
    NewAgent,
    NewAgentKey,
    NewRevision,
    Page,
    Resource,
    TemporaryURL,
)
from agent.registry.parts import etag_of

M = TypeVar("M", bound=BaseModel)

_API_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=60)
_BLOB_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=300)


def _seg(value: str) -> str:
    """A path segment, percent-encoded with no safe characters (spec §6)."""
    return quote(value, safe="")


def _detail(text: str) -> str:
    try:
        body = jsontext.loads(text)
    except ValueError:
        return text[:500]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return detail if isinstance(detail, str) else json.dumps(detail)[:500]


def _tls_refused(base_url: str, e: aiohttp.ClientSSLError) -> RegistryError:
    """A TLS failure is a configuration to fix, not an outage to wait out: what to set."""
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        why = f"its certificate is not trusted ({e.certificate_error})"
        fix = "set registry_ca_file to the CA that signed it"
    else:
        why = f"the TLS handshake failed ({e})"
        fix = "if it asks for a client certificate, set registry_cert_file and registry_key_file"
    return RegistryError(f"{base_url}: {why}; {fix}")


class BearerSource(Protocol):
    """Where the bearer token comes from when it changes (identity-service access tokens)."""

    async def bearer(self, session: aiohttp.ClientSession) -> str:
        """The token to send now (fetched or renewed when due); raises RegistryError."""
        ...

    def invalidate(self) -> None:
        """The registry refused the token: fetch a new one next time."""
        ...


class RegistryClient:
    """A typed client for an Istari-compatible registry."""

    def __init__(
        self,
        base_url: str,
        token: str | BearerSource,
        *,
        ssl: Any = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # A fixed token (a PAT), or a source of short-lived ones (agent/auth/identity.py).
        self._token = token
        self._ssl = ssl
        self._session = session
        self._owns_session = session is None
        self._contact: float | None = None  # monotonic time of the last answer (not a 5xx)
        self.api_hashes = compat.agent_header()  # X-Istari-Client-Api-Hashes, as the SDK sends
        self.compatibility: compat.Verdict | None = None  # the registry's latest verdict on them
        # Told of every API request's end: (method, path, status or None for no answer).
        self.on_request: Callable[[str, str, int | None], None] | None = None

    async def __aenter__(self) -> Self:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": f"istari-agent/{__version__}"},
                timeout=_API_TIMEOUT,
                trace_configs=[_count_sends()],
            )
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            msg = "use RegistryClient as an async context manager"
            raise RuntimeError(msg)
        return self._session

    def contact_age(self) -> float:
        """Seconds since the registry last answered (not with a 5xx); infinite if never."""
        return math.inf if self._contact is None else time.monotonic() - self._contact

    # -- plumbing -------------------------------------------------------------------------

    def _reset_hint(self, e: BaseException) -> str:
        """Over TLS 1.3 a server that wants a client certificate just resets the connection."""
        reset = isinstance(e, aiohttp.ClientOSError) and e.errno == errno.ECONNRESET
        if reset and self.base_url.startswith("https:"):
            return (
                " (if the registry requires a client certificate, set registry_cert_file and "
                "registry_key_file)"
            )
        return ""

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        data = None if json_body is None else json.dumps(json_body, separators=(",", ":"))
        headers = {
            "Authorization": f"Bearer {await self._bearer()}",
            "Accept": "application/json",
            "Content-Type": "application/json",
            compat.CLIENT_HASHES: self.api_hashes,  # the API versions we speak (docs/agent.md)
        }
        sends = [0] if self._owns_session else [2]  # a foreign session: unknown, assume resent
        _SENDS.set(sends)
        try:
            async with self.session.request(
                method,
                self.base_url + path,
                params=query,
                data=data,
                headers=headers,
                ssl=self._ssl,
            ) as resp:
                text = await resp.text()
                if self.on_request is not None:
                    self.on_request(method, path, resp.status)
                if resp.status < 500:
                    self._contact = time.monotonic()
                self.compatibility = compat.read(resp.headers) or self.compatibility
                if resp.status == 401 and not isinstance(self._token, str):
                    self._token.invalidate()  # expired or revoked early: a new one next call
                if resp.status >= 400:
                    detail = _detail(text)
                    raise rejected(method, path, resp.status, detail, resent=sends[0] > 1)
                return jsontext.loads(text) if text else None
        except aiohttp.ClientSSLError as e:
            if self.on_request is not None:
                self.on_request(method, path, None)
            raise _tls_refused(self.base_url, e) from None
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            if self.on_request is not None and not isinstance(e, ValueError):
                self.on_request(method, path, None)
            msg = f"{method} {path} failed: {type(e).__name__}: {e}{self._reset_hint(e)}"
            raise RegistryUnavailable(msg) from None

    async def _bearer(self) -> str:
        if isinstance(self._token, str):
            return self._token
        return await self._token.bearer(self.session)

    async def _model(self, model: type[M], method: str, path: str, **kw: Any) -> M:
        raw = await self._call(method, path, **kw)
        try:
            return model.model_validate(raw)
        except ValidationError as e:
            msg = f"{method} {path}: unexpected response: {e}"
            raise RegistryError(msg) from None

    # -- health ---------------------------------------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        """`GET /api/v2/health/readiness`."""
        result: dict[str, Any] = await self._call("GET", "/api/v2/health/readiness")
        return result

    # -- agents ---------------------------------------------------------------------------

    async def register_agent(self, info: NewAgent) -> Agent:
        """`POST /api/v2/agents`."""
        return await self._model(Agent, "POST", "/api/v2/agents", json_body=info.model_dump())

    async def register_agent_key(self, key: NewAgentKey) -> AgentCredential:
        """`POST /api/v2/key/agent` (identity-service mode; with a user's or admin token)."""
        body = key.model_dump()
        return await self._model(AgentCredential, "POST", "/api/v2/key/agent", json_body=body)

    async def update_agent(self, agent_id: str, info: NewAgent) -> Agent:
        """`PUT /api/v2/agents/{id}` (information)."""
        path = f"/api/v2/agents/{_seg(agent_id)}"
        return await self._model(Agent, "PUT", path, json_body=info.model_dump())

    async def get_agent(self, agent_id: str) -> Agent:
        """`GET /api/v2/agents/{id}`."""
        return await self._model(Agent, "GET", f"/api/v2/agents/{_seg(agent_id)}")

    async def set_agent_modules(self, agent_id: str, modules: list[ModuleVersionRef]) -> Agent:
        """`PUT /api/v2/agents/{id}/modules` (replaces the whole set)."""
        body = [m.model_dump() for m in modules]
        path = f"/api/v2/agents/{_seg(agent_id)}/modules"
        return await self._model(Agent, "PUT", path, json_body=body)

    async def set_agent_public_key(self, agent_id: str, public_key: str) -> None:
        """`PUT /api/v2/agents/{id}/public_key` with a PKCS#1 PEM public key."""
        await self._call(
            "PUT",
            f"/api/v2/agents/{_seg(agent_id)}/public_key",
            json_body={"public_key": public_key},
        )

    async def set_agent_display_name(self, agent_id: str, name: str) -> Agent:
        """`PUT /api/v2/agents/{id}/display_name`."""
        path = f"/api/v2/agents/{_seg(agent_id)}/display_name"
        return await self._model(Agent, "PUT", path, json_body={"display_name": name})

    async def set_agent_status(self, agent_id: str, status: AgentStatus) -> Agent:
        """`PUT /api/v2/agents/{id}/status`."""
        path = f"/api/v2/agents/{_seg(agent_id)}/status"
        return await self._model(Agent, "PUT", path, json_body={"name": status.value})

    async def available_jobs(self, agent_id: str, page: int = 1, size: int = 10) -> Page[Job]:
        """`GET /api/v2/agents/{id}/available_jobs`."""
        path = f"/api/v2/agents/{_seg(agent_id)}/available_jobs"
        return await self._model(Page[Job], "GET", path, params={"page": page, "size": size})

    # -- agent pools ----------------------------------------------------------------------

    async def create_pool(self, name: str, description: str | None = None) -> AgentPool:
        """`POST /api/v2/agent_pools`."""
        body = {"name": name, "description": description}
        return await self._model(AgentPool, "POST", "/api/v2/agent_pools", json_body=body)

    async def list_pools(self, page: int = 1, size: int = 100) -> Page[AgentPool]:
        """`GET /api/v2/agent_pools` (archived ones too)."""
        params = {"page": page, "size": size, "archive_status": "all"}
        return await self._model(Page[AgentPool], "GET", "/api/v2/agent_pools", params=params)

    async def add_pool_agent(self, pool_id: str, agent_id: str) -> AgentPool:
        """`PUT /api/v2/agent_pools/{id}/agents`."""
        path = f"/api/v2/agent_pools/{_seg(pool_id)}/agents"
        return await self._model(AgentPool, "PUT", path, json_body={"agent_id": agent_id})

    async def remove_pool_agent(self, pool_id: str, agent_id: str) -> AgentPool:
        """`DELETE /api/v2/agent_pools/{id}/agents/{agent_id}` (NotFound: not a member)."""
        path = f"/api/v2/agent_pools/{_seg(pool_id)}/agents/{_seg(agent_id)}"
        return await self._model(AgentPool, "DELETE", path)

    # -- jobs -----------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> Job:
        """`GET /api/v2/jobs/{id}`."""
        return await self._model(Job, "GET", f"/api/v2/jobs/{_seg(job_id)}")

    async def update_job_status(
        self, job_id: str, status: JobStatus, agent_id: str | None, message: str | None = None
    ) -> Job:
        """`PUT /api/v2/jobs/{id}/status` (a claim is `status=Claimed`; 409 = not allowed)."""
        path = f"/api/v2/jobs/{_seg(job_id)}/status"
        params = {"status_name": status.value, "agent_id": agent_id}
        body = None if message is None else {"message": message}
        return await self._model(Job, "PUT", path, params=params, json_body=body)

    async def submit_job(
        self,
        model_id: str,
        function_name: str,
        parameters: NewRevision,
        auth_bindings: Mapping[str, str] | None = None,
        **query: str | None,
    ) -> Job:
        """`POST /api/v2/models/{id}/jobs` with the parameters file's revision.

        `auth_bindings` binds auth_info inputs to stored credentials: {input name: credential id}.
        """
        path = f"/api/v2/models/{_seg(model_id)}/jobs"
        params = {"function_name": function_name, **query}
        body: dict[str, Any] = {"revision": parameters.model_dump()}
        if auth_bindings:
            body["auth_bindings"] = [
                {"input_name": name, "credential_id": cred} for name, cred in auth_bindings.items()
            ]
        return await self._model(Job, "POST", path, params=params, json_body=body)

    async def list_jobs(self, **filters: Any) -> Page[Job]:
        """`GET /api/v2/jobs` with filters (`status_name`, `model_id`, `page`, `size`, ...)."""
        return await self._model(Page[Job], "GET", "/api/v2/jobs", params=filters)

    # -- models, artifacts, modules -------------------------------------------------------

    async def create_model(
        self, revision: NewRevision, source_job_id: str | None = None
    ) -> Resource:
        """`POST /api/v2/models?source_job_id=` (409 = the job was canceled)."""
        return await self._model(
            Resource,
            "POST",
            "/api/v2/models",
            params={"source_job_id": source_job_id},
            json_body=revision.model_dump(),
        )

    async def list_models(
        self, *, source_job_id: str | None = None, page: int = 1, size: int = 100
    ) -> Page[Resource]:
        """`GET /api/v2/models`; `source_job_id` (inferred, docs/local-registry.md): only the
        models that job uploaded. A registry that ignores the filter lists every model."""
        params = {"source_job_id": source_job_id, "page": page, "size": size}
        return await self._model(Page[Resource], "GET", "/api/v2/models", params=params)

    async def update_model(
        self, model_id: str, revision: NewRevision, source_job_id: str | None
    ) -> Resource:
        """`PUT /api/v2/models/{id}?source_job_id=`: a new revision (409 = job canceled)."""
        return await self._new_revision("models", model_id, revision, source_job_id)

    async def update_artifact(
        self, artifact_id: str, revision: NewRevision, source_job_id: str | None
    ) -> Resource:
        """`PUT /api/v2/artifacts/{id}?source_job_id=`: a new revision (409 = job canceled)."""
        return await self._new_revision("artifacts", artifact_id, revision, source_job_id)

    async def _new_revision(
        self, kind: str, rid: str, revision: NewRevision, source_job_id: str | None
    ) -> Resource:
        return await self._model(
            Resource,
            "PUT",
            f"/api/v2/{kind}/{_seg(rid)}",
            params={"source_job_id": source_job_id},
            json_body=revision.model_dump(),
        )

    async def get_model(self, model_id: str) -> Resource:
        """`GET /api/v2/models/{id}`."""
        return await self._model(Resource, "GET", f"/api/v2/models/{_seg(model_id)}")

    async def get_artifact(self, artifact_id: str) -> Resource:
        """`GET /api/v2/artifacts/{id}`."""
        return await self._model(Resource, "GET", f"/api/v2/artifacts/{_seg(artifact_id)}")

    async def create_artifact(
        self, model_id: str, revision: NewRevision, source_job_id: str | None
    ) -> Resource:
        """`POST /api/v2/models/{id}/artifacts?source_job_id=` (409 = the job was canceled)."""
        path = f"/api/v2/models/{_seg(model_id)}/artifacts"
        return await self._model(
            Resource,
            "POST",
            path,
            params={"source_job_id": source_job_id},
            json_body=revision.model_dump(),
        )

    async def list_artifacts(self, model_id: str, page: int = 1, size: int = 100) -> Page[Resource]:
        """`GET /api/v2/models/{id}/artifacts`."""
        path = f"/api/v2/models/{_seg(model_id)}/artifacts"
        return await self._model(Page[Resource], "GET", path, params={"page": page, "size": size})

    async def publish_module(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """`POST /api/v2/modules` with a module manifest."""
        result: dict[str, Any] = await self._call("POST", "/api/v2/modules", json_body=manifest)
        return result

    # -- blobs ----------------------------------------------------------------------------

    async def upload_url(self, sha: str) -> TemporaryURL | None:
        """`GET /api/v2/tokens/{sha}/upload-url`; None when the sha is already stored."""
        try:
            return await self._model(TemporaryURL, "GET", f"/api/v2/tokens/{_seg(sha)}/upload-url")
        except Conflict:
            return None

    async def download_url(self, sha: str) -> TemporaryURL:
        """`GET /api/v2/tokens/{sha}/download-url`."""
        return await self._model(TemporaryURL, "GET", f"/api/v2/tokens/{_seg(sha)}/download-url")

    async def begin_multipart(
        self, sha: str, num_parts: int, model_id: str | None = None
    ) -> MultipartUpload | None:
        """`POST /api/v2/tokens/multipart-upload`; None when the sha is already stored (the
        registry's error says "Sha already exists", which is what the SDK looks for)."""
        body = {"sha": sha, "num_parts": num_parts, "model_id": model_id}
        try:
            return await self._model(
                MultipartUpload, "POST", "/api/v2/tokens/multipart-upload", json_body=body
            )
        except RegistryRejected as e:
            if "sha already exists" in e.detail.lower():
                return None
            raise

    async def complete_multipart(
        self, sha: str, upload_id: str, parts: list[tuple[int, str]]
    ) -> None:
        """`PUT /api/v2/tokens/multipart-upload` `{action: complete}` with (number, ETag)s."""
        completed = [{"ETag": etag, "PartNumber": n} for n, etag in parts]
        body = {"action": "complete", "sha": sha, "upload_id": upload_id}
        await self._call(
            "PUT",
            "/api/v2/tokens/multipart-upload",
            json_body={**body, "completed_parts": completed},
        )

    async def cancel_multipart(self, sha: str, upload_id: str) -> None:
        """`PUT /api/v2/tokens/multipart-upload` `{action: cancel}`."""
        body = {"action": "cancel", "sha": sha, "upload_id": upload_id, "completed_parts": None}
        await self._call("PUT", "/api/v2/tokens/multipart-upload", json_body=body)

    async def put_part(self, url: str, path: Path, offset: int, size: int) -> str:
        """Stream `size` bytes of `path` from `offset` to a presigned part URL; returns the
        ETag recorded for it (parts.py). A 403 is URLExpired; an answer that does not
        acknowledge the part is PartNotAcknowledged (retryable)."""
        shown = _redact_url(url)
        azure = _is_azure(url)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if azure:
            headers["x-ms-blob-type"] = "BlockBlob"
        try:
            async with self.session.put(
                url,
                data=file_slice(path, offset, size),
                headers=headers,
                timeout=_BLOB_TIMEOUT,
                ssl=self._ssl,
            ) as resp:
                if resp.status == 403:
                    method, detail = "PUT", _detail(await resp.text())
                    raise URLExpired(method, shown, 403, detail)
                if resp.status >= 300:
                    error = rejected("PUT", shown, resp.status, _detail(await resp.text()))
                    raise error
                etag = etag_of(resp.status, resp.headers.get("ETag"), azure=azure)
                if etag is None:
                    msg = f"PUT {shown} -> {resp.status} without an ETag: part not acknowledged"
                    raise PartNotAcknowledged(msg)
                return etag
        except (aiohttp.ClientError, TimeoutError) as e:
            msg = f"PUT {shown} failed: {type(e).__name__}"
            raise RegistryUnavailable(msg) from None

    async def put_blob(
        self, url: str, content: Path | bytes, progress: Callable[[int], None] | None = None
    ) -> None:
        """Stream a file (or send a few bytes) to a presigned URL (no Authorization; 409 =
        already stored). `progress` hears of a file's bytes as they are handed to the
        connection (with a Content-Length: object stores refuse a chunked PUT)."""
        shown = _redact_url(url)
        headers = {"Content-Type": "application/octet-stream"}
        if _is_azure(url):
            headers["x-ms-blob-type"] = "BlockBlob"
        data: bytes | AsyncIterator[bytes] = content if isinstance(content, bytes) else b""
        if isinstance(content, Path):
            size = content.stat().st_size
            headers["Content-Length"] = str(size)
            data = _counted(file_slice(content, 0, size), progress)
        try:
            async with self.session.put(
                url, data=data, headers=headers, timeout=_BLOB_TIMEOUT, ssl=self._ssl
            ) as resp:
                if resp.status == 409 or resp.status < 300:
                    return
                error = rejected("PUT", shown, resp.status, _detail(await resp.text()))
                raise error
        except (aiohttp.ClientError, TimeoutError) as e:
            msg = f"PUT {shown} failed: {type(e).__name__}"
            raise RegistryUnavailable(msg) from None

    async def get_blob(self, url: str, dest: Path, sha: str, salt: str) -> int:
        """Stream a presigned URL into `dest`, checking sha384(bytes ‖ salt); returns size.

        One request, resumed with Range only while a cut connection made progress; see
        agent/registry/download.py for downloads with retries, progress and fresh URLs."""

        async def fixed() -> str:
            return url

        return await download.fetch(self.blob_source(fixed), dest, sha, salt)

    def blob_source(self, url_for: download.UrlSource) -> download.Source:
        """Where a download reads from: this client's session and TLS, URLs from `url_for`
        (presigned: no Authorization header goes with them)."""
        return download.Source(self.session, url_for, ssl=self._ssl)


# How many times aiohttp sent the request of the current `_call` (it resends an idempotent
# request once when a kept-alive connection turns out closed).
_SENDS: contextvars.ContextVar[list[int]] = contextvars.ContextVar("registry_sends")


def _count_sends() -> aiohttp.TraceConfig:
    async def sent(
        session: aiohttp.ClientSession,
        ctx: SimpleNamespace,
        params: aiohttp.TraceRequestHeadersSentParams,
    ) -> None:
        sends = _SENDS.get(None)
        if sends is not None:
            sends[0] += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(sent)
    return trace


async def _counted(
    chunks: AsyncIterator[bytes], progress: Callable[[int], None] | None
) -> AsyncIterator[bytes]:
    """`chunks`, each told to `progress` as it is taken."""
    async for chunk in chunks:
        if progress is not None:
            progress(len(chunk))
        yield chunk


def _is_azure(url: str) -> bool:
    parts = urlsplit(url)
    return parts.netloc.endswith("blob.core.windows.net") or all(
        f"{k}=" in parts.query for k in ("se", "sp", "sv")
    )


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
