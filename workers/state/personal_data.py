"""The workers' per-user stores (Redis sessions, card owners, tap-to-send buttons, media files), as
`webapp.actions.personal_data` stores for export, erasure and retention; `register_stores()` adds them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webapp.actions.personal_data import BUTTONS, CARD_OWNERS, MEDIA, SESSIONS, Registry, registry
from workers.resources import current
from workers.state import buttons, cards, session
from workers.state.media_store import MediaStore


@dataclass(frozen=True)
class RedisKeyspace:
    """A Redis keyspace of this package, by its module's export_user / erase_user."""

    name: str
    export: Callable[[str, str], list[dict[str, Any]]]
    erase: Callable[[str, str], int]

    def export_user(self, tenant_id: str, user_id: str) -> list[dict[str, Any]]:
        return self.export(tenant_id, user_id)

    def erase_user(self, tenant_id: str, user_id: str) -> int:
        return self.erase(tenant_id, user_id)


class MediaFiles:
    """The files users sent (this process's media store, looked up when called: tests and processes may
    point MEDIA_ROOT elsewhere)."""

    name = MEDIA

    @staticmethod
    def _store() -> MediaStore:
        return current().media_store

    def export_user(self, tenant_id: str, user_id: str) -> list[dict[str, Any]]:
        return self._store().list_user(tenant_id, user_id)

    def erase_user(self, tenant_id: str, user_id: str) -> int:
        return self._store().erase_user(tenant_id, user_id)

    def purge_older_than(self, cutoff: float) -> int:
        return self._store().purge_older_than(cutoff)


STORES = (
    RedisKeyspace(SESSIONS, session.export_user, session.erase_user),
    RedisKeyspace(CARD_OWNERS, cards.export_user, cards.erase_user),
    RedisKeyspace(BUTTONS, buttons.export_user, buttons.erase_user),
    MediaFiles(),
)


def register_stores(into: Registry = registry) -> None:
    """Make export, erasure and retention in this process cover the workers' stores (idempotent)."""
    for store in STORES:
        into.register(store)
