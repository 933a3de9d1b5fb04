"""Fetch the files a user sent: downloadCode → temporary URL → bytes within size and type limits → store."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from skills.remote.urlguard import Allowlist, UrlRefused, check_url
from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.inbound import MediaItem
from workers.errors import MediaRejected, PoisonMessage, TransientError
from workers.state.media_store import MediaStore

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024


GENERIC = "application/octet-stream"


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int
    allowed_types: tuple[str, ...]  # content-type prefixes
    # non-public download hosts allowed (OUTBOUND_URL_ALLOWLIST)
    allowlist: Allowlist = field(default_factory=Allowlist)

    def allows(self, content_type: str) -> bool:
        base = content_type.split(";")[0].strip().lower() or GENERIC
        return any(base.startswith(prefix) for prefix in self.allowed_types)


def effective_type(content_type: str, name: str) -> str:
    """The type to judge a file by: the server's, or, when it says only octet-stream (DingTalk's
    storage often does), the one its name implies (report.docx → …wordprocessingml; x.zip → zip)."""
    base = content_type.split(";")[0].strip().lower() or GENERIC
    if base != GENERIC:
        return base
    guessed, _ = mimetypes.guess_type(name or "", strict=False)
    return guessed or GENERIC


def _chunks(response: httpx.Response, limit: int) -> Iterator[bytes]:
    received = 0
    for chunk in response.iter_bytes(CHUNK_BYTES):
        received += len(chunk)
        if received > limit:
            raise MediaRejected("too_large", f"more than {limit} bytes")
        yield chunk


def fetch(
    api: DingTalkAPI,
    store: MediaStore,
    limits: MediaLimits,
    item: MediaItem,
    *,
    robot_code: str,
    tenant_id: str,
    user_id: str,
    msg_id: str,
    index: int,
) -> dict[str, Any]:
    """The attachment reference of one file; MediaRejected when it may not or cannot be read."""
    try:
        url = api.download_url(robot_code, item.download_code)
    except PoisonMessage as exc:  # expired or unknown downloadCode: the user can send it again
        raise MediaRejected("unavailable", str(exc)) from exc
    try:  # resolved and checked, then fetched from the checked address (no second lookup)
        url, host, extensions = check_url(url, limits.allowlist).pinned()
    except UrlRefused as exc:
        log.warning("media download URL refused: %s", exc)
        raise MediaRejected("unavailable", f"download URL refused: {exc}") from exc
    try:
        with api.http.stream("GET", url, headers={"Accept": "*/*", **host}, extensions=extensions) as response:
            if response.status_code in (404, 410, 403):
                raise MediaRejected("unavailable", f"download answered HTTP {response.status_code}")
            if response.status_code >= 400:
                raise TransientError(f"media download answered HTTP {response.status_code}")
            content_type = effective_type(response.headers.get("content-type", GENERIC), item.name)
            if not limits.allows(content_type):
                raise MediaRejected("bad_type", content_type, content_type=content_type)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise MediaRejected("too_large", f"declared {declared} bytes")
            ref = store.save(
                _chunks(response, limits.max_bytes),
                tenant_id=tenant_id, user_id=user_id, msg_id=msg_id, index=index,
                kind=item.kind, name=item.name, content_type=content_type.split(";")[0].strip(),
            )
    except httpx.TimeoutException as exc:
        raise TransientError(f"timeout downloading media: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"network error downloading media: {exc!r}") from exc
    log.info("stored %s of %d bytes as %s", item.kind, ref["size"], ref["ref"])
    return {**ref, **({"meta": dict(item.meta)} if item.meta else {})}
