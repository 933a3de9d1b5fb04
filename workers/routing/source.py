"""Where workers find the active router: its version (Redis key, else the DB) and its artefact (DB bytes)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Protocol

import redis
from django.db import connection

from skills.routing.router import Router
from webapp.actions import versions
from webapp.actions.routing import active_router_version, router_artefact, router_version_exists
from workers.resources import current

log = logging.getLogger(__name__)

KEEP_FILES = 3  # local copies of artefacts kept per host (the current one and two before)


class ArtefactSource(Protocol):
    def latest_version(self) -> str | None:
        """The version workers should run, or None when no router was trained yet."""

    def load(self, version: str) -> Router:
        """That version, loaded and warmed up (embedding models in memory)."""

    def release(self) -> None:
        """Give back per-thread resources (the poller calls this after each check)."""


class DatabaseArtefacts:
    """Reads the version from Redis (the train/activate actions set it on commit), falling back to
    the database when the key is missing or Redis is down; artefacts come from the database, so
    any host can load them, and are cached as files under ROUTER_DIR/models."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory or current().settings.router_dir) / "models"
        self._known: set[str] = set()  # versions seen in the database (the key is not trusted blindly)
        self._unknown: set[str] = set()  # announced versions the database does not have (warned once)

    def latest_version(self) -> str | None:
        try:
            version = versions.read(versions.ROUTER)
        except redis.RedisError as exc:
            log.debug("router version key unreadable, asking the database: %r", exc)
            version = None
        if version and version not in self._known:
            if router_version_exists(version):
                self._known.add(version)
            else:  # e.g. a key left by another database on the same Redis prefix
                if version not in self._unknown:  # said once, not at every poll
                    self._unknown.add(version)
                    log.warning("announced router %s is not in the database; using the active one", version)
                version = None
        return version or active_router_version()

    def load(self, version: str) -> Router:
        path = self.directory / f"{version}.npz"
        if not path.exists():
            data = router_artefact(version)
            if data is None:
                raise LookupError(f"no router model {version!r} in the database")
            _write_atomically(path, data)
            self._prune(keep=path)
        router = Router.load(path)
        router.predict("warm up")  # loads the embedders before the swap, not on a user's message
        return router

    def release(self) -> None:
        connection.close()  # the poller thread's own connection; Django connections are per thread

    def _prune(self, keep: Path) -> None:
        files = sorted(self.directory.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[KEEP_FILES:]:
            if old != keep:
                old.unlink(missing_ok=True)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
