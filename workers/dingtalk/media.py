"""Fetch the files a user sent: downloadCode → temporary URL → bytes within size and type limits → store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.inbound import MediaItem
from workers.errors import MediaRejected, PoisonMessage, TransientError
from workers.state.media_store import MediaStore

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int
    allowed_types: tuple[str, ...]  # content-type prefixes

    def allows(self, content_type: str) -> bool:
        base = content_type.split(";")[0].strip().lower() or "application/octet-stream"
        return any(base.startswith(prefix) for prefix in self.allowed_types)


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
    try:
        with api.http.stream("GET", url, headers={"Accept": "*/*"}) as response:
            if response.status_code in (404, 410, 403):
                raise MediaRejected("unavailable", f"download answered HTTP {response.status_code}")
            if response.status_code >= 400:
                raise TransientError(f"media download answered HTTP {response.status_code}")
            content_type = response.headers.get("content-type", "application/octet-stream")
            if not limits.allows(content_type):
                raise MediaRejected("bad_type", content_type, content_type=content_type.split(";")[0])
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
