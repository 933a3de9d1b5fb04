"""The per-user stores outside the webapp's models that export, erasure and retention must cover.

The process that owns a store registers it here (the workers register their Redis keyspaces and
media files: workers/state/personal_data.py; manage.py and the worker set-up are where that
happens), so the webapp never imports worker code. Export and erasure refuse to run while an
expected store is missing: skipping it silently would report a person erased who is not.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

SESSIONS = "redis.sessions"
CARD_OWNERS = "redis.card_owners"
BUTTONS = "redis.buttons"
MEDIA = "media"

# A store's name is where its items appear in an export (`redis.sessions` → data["redis"]["sessions"])
# and the key of its count in the erasure's counts.
EXPECTED: tuple[str, ...] = (SESSIONS, CARD_OWNERS, BUTTONS, MEDIA)
_RESERVED = ("user_id", "tenants", "postgresql")


@runtime_checkable
class PersonalDataStore(Protocol):
    """One store of per-user data, per tenant."""

    @property
    def name(self) -> str:
        """Where its items go in an export (`redis.sessions` → data["redis"]["sessions"])."""
        ...

    def export_user(self, tenant_id: str, user_id: str) -> list[dict[str, Any]]:
        """Everything the store holds about the person in this tenant, as JSON primitives."""
        ...

    def erase_user(self, tenant_id: str, user_id: str) -> int:
        """Delete it (idempotent); returns how many items went."""
        ...


@runtime_checkable
class AgedPersonalDataStore(PersonalDataStore, Protocol):
    """A store whose items also expire by age (retention)."""

    def purge_older_than(self, cutoff: float) -> int:
        """Delete items stored before `cutoff` (epoch seconds); returns how many."""
        ...


class MissingStore(RuntimeError):
    """An expected per-user store is not registered in this process."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"per-user store(s) {', '.join(names)} not registered in this process: run this "
                         "through manage.py or a worker (they register the workers' stores), not bare Django")
        self.names = names


class Registry:
    """The stores registered in this process, by name."""

    def __init__(self, expected: tuple[str, ...] = EXPECTED) -> None:
        self.expected = expected
        self._stores: dict[str, PersonalDataStore] = {}

    def register(self, store: PersonalDataStore) -> None:
        """Add `store` (again: replaces the one of the same name)."""
        if not isinstance(store, PersonalDataStore):
            raise TypeError(f"{store!r} is not a PersonalDataStore (name, export_user, erase_user)")
        name = store.name
        if name.split(".")[0] in _RESERVED or not all(name.split(".")):
            raise ValueError(f"unusable store name {name!r}")
        if any(other.startswith(name + ".") or name.startswith(other + ".") for other in self._stores):
            raise ValueError(f"store name {name!r} would nest with another store's items in an export")
        self._stores[name] = store

    def unregister(self, name: str) -> PersonalDataStore | None:
        return self._stores.pop(name, None)

    def missing(self) -> list[str]:
        return [name for name in self.expected if name not in self._stores]

    def stores(self) -> list[PersonalDataStore]:
        """Every registered store, the expected ones first; raises MissingStore if one is absent."""
        if missing := self.missing():
            raise MissingStore(missing)
        extra = sorted(set(self._stores) - set(self.expected))
        return [self._stores[name] for name in (*self.expected, *extra)]

    def aged(self, name: str) -> AgedPersonalDataStore:
        """The store `name`, which must expire by age; raises MissingStore if absent."""
        store = self._stores.get(name)
        if store is None:
            raise MissingStore([name])
        if not isinstance(store, AgedPersonalDataStore):
            raise TypeError(f"store {name!r} has no purge_older_than")
        return store


registry = Registry()
