"""A worker's handle on the router artefact: picks up a newly trained version without a restart."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from .artefact import ArtefactError
from .router import Router

log = logging.getLogger(__name__)


class LiveRouter:
    """`get()` returns the current router, reloading when the file on disk changed.

    A stat() at most every `check_seconds` keeps the per-message cost negligible; embedding models
    are shared per process, so a reload only reads the artefact (tens of ms). A file that fails to
    load is logged and the previous router keeps serving.
    """

    def __init__(self, path: str | Path, check_seconds: float = 5.0) -> None:
        self.path = Path(path)
        self.check_seconds = check_seconds
        self._lock = threading.Lock()
        self._router: Router | None = None
        self._stamp: tuple[float, int] | None = None
        self._checked_at = 0.0

    def get(self) -> Router | None:
        """The router, or None while no loadable artefact exists yet."""
        now = time.monotonic()
        if self._router is not None and now - self._checked_at < self.check_seconds:
            return self._router
        with self._lock:
            self._checked_at = now
            try:
                st = self.path.stat()
            except FileNotFoundError:
                return self._router
            stamp = (st.st_mtime, st.st_size)
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    router = Router.load(self.path)
                except ArtefactError:
                    log.exception("router artefact %s does not load; keeping version %s", self.path,
                                  self._router.version if self._router else None)
                else:
                    if self._router is None or router.version != self._router.version:
                        log.info("router version %s loaded from %s", router.version, self.path)
                        self._router = router
            return self._router
