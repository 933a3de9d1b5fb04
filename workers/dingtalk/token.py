"""The app access token, cached in Redis for every worker and refreshed well before it expires."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import redis

from workers.errors import PoisonMessage

log = logging.getLogger(__name__)

# Refresh this long before expiry, so no call goes out with a token about to lapse.
REFRESH_MARGIN_SECONDS = 300
# How long a worker waits for another worker that is fetching the token right now.
LOCK_WAIT_SECONDS = 3.0
LOCK_TTL_SECONDS = 15


class TokenCache:
    """get() returns a valid token: from Redis when fresh, else fetched once (under a lock)."""

    def __init__(
        self,
        client: redis.Redis,
        cache_key: str,
        fetch: Callable[[], tuple[str, int]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = client
        self._key = cache_key
        self._lock_key = cache_key + ":lock"
        self._fetch = fetch  # → (token, lifetime in seconds)
        self._clock = clock

    def _cached(self) -> str | None:
        raw = self._redis.get(self._key)
        if not raw:
            return None
        try:
            entry = json.loads(raw)
            token, expires_at = str(entry["token"]), float(entry["expires_at"])
        except (ValueError, KeyError, TypeError):
            return None
        if expires_at - self._clock() <= REFRESH_MARGIN_SECONDS:
            return None
        return token

    def get(self) -> str:
        token = self._cached()
        if token:
            return token
        # One worker fetches; the others wait briefly for its result instead of stampeding
        # the token endpoint (DingTalk throttles frequent token calls).
        if not self._redis.set(self._lock_key, "1", nx=True, ex=LOCK_TTL_SECONDS):
            deadline = self._clock() + LOCK_WAIT_SECONDS
            while self._clock() < deadline:
                time.sleep(0.05)
                token = self._cached()
                if token:
                    return token
        try:
            return self._refresh()
        finally:
            self._redis.delete(self._lock_key)

    def _refresh(self) -> str:
        token, lifetime = self._fetch()
        if not token or lifetime <= 0:
            raise PoisonMessage("the access token endpoint returned no usable token")
        expires_at = self._clock() + lifetime
        ttl = max(1, int(lifetime))
        self._redis.set(self._key, json.dumps({"token": token, "expires_at": expires_at}), ex=ttl)
        log.info("access token refreshed, valid %d s", lifetime)
        return token

    def invalidate(self, token: str) -> None:
        """Drop the cached token if it is still `token` (DingTalk rejected it)."""
        raw = self._redis.get(self._key)
        if raw and token in raw:
            self._redis.delete(self._key)
