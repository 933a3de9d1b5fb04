"""The AI-core governor: at most LLM_MAX_CONCURRENCY answers at once per LLM endpoint, across every
worker process and host, shared fairly between conversations; slots-in-use and wait-time metrics.

State lives in Redis under `{prefix}llm:<endpoint digest>:…`:

- `holders` (zset token → lease expiry) and `owners` (hash token → conversation): the slots in use.
  A holder's lease is renewed by its process every LEASE_SECONDS / 3; a process killed mid-answer
  stops renewing, and its slots come back LEASE_SECONDS later. The token is the msgId, so the
  redelivered copy of a killed task takes over its own slot instead of needing a second one.
- `waiters` (zset token → arrival), `waitexp` (zset token → expiry), `waitconv` (hash token →
  conversation): the messages polling for a slot. A free slot goes first to the earliest waiter
  whose conversation holds less than its fair share (limit / conversations holding or waiting),
  then to the rest in arrival order: one chatty group gets the slots nobody else wants, never all.
- `pending` (zset msgId → arrival): messages routed to the endpoint that have no slot yet, from
  preprocess on; what the busy notice counts as "ahead of you".
- `hold`: the mean time a slot is held (exponentially weighted), for predicted waits.

Every step is one Lua script, so concurrent workers never see a half-made decision.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import Gauge, Histogram
from redis import Redis

from workers.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)

# A dead process's slots come back after this long; a live one renews every third of it.
LEASE_SECONDS = 15.0
# A waiter that stopped polling (killed) is forgotten after this long.
WAITER_TTL_SECONDS = 5.0
# A message registered as pending that never asked for its slot (switched off, dead-lettered) stops
# counting as "ahead" after this long.
PENDING_TTL_SECONDS = 600.0
# Until an answer has been timed, a slot is assumed to be held this long.
DEFAULT_HOLD_SECONDS = 2.0
HOLD_WEIGHT = 0.2  # weight of the newest answer in the mean hold time

SLOTS_IN_USE = Gauge(
    "dtbot_llm_slots_in_use", "LLM answer slots held across every worker (as this process last saw it)",
    ["endpoint"], multiprocess_mode="mostrecent",
)
SLOT_WAIT = Histogram(
    "dtbot_llm_slot_wait_seconds", "Time a message waited for an LLM answer slot", ["endpoint"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)

# KEYS: holders, owners, waiters, waitexp, waitconv, pending.
# ARGV: token, conversation, now, limit, lease, waiter ttl.
# Returns {granted 0/1, rank among the waiters (0 = next), slots in use after}.
_ACQUIRE = """
local token, conv = ARGV[1], ARGV[2]
local now, limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local lease, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, t in ipairs(dead) do redis.call('HDEL', KEYS[2], t) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
for _, t in ipairs(gone) do redis.call('ZREM', KEYS[3], t); redis.call('HDEL', KEYS[5], t) end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local function grant()
  redis.call('ZADD', KEYS[1], now + lease, token)
  redis.call('HSET', KEYS[2], token, conv)
  redis.call('ZREM', KEYS[3], token); redis.call('ZREM', KEYS[4], token); redis.call('HDEL', KEYS[5], token)
  redis.call('ZREM', KEYS[6], token)
  return {1, 0, redis.call('ZCARD', KEYS[1])}
end
if redis.call('ZSCORE', KEYS[1], token) then return grant() end
redis.call('ZADD', KEYS[3], 'NX', now, token)
redis.call('ZADD', KEYS[4], now + ttl, token)
redis.call('HSET', KEYS[5], token, conv)
local used = redis.call('ZCARD', KEYS[1])
local held, seen, n = {}, {}, 0
for _, c in ipairs(redis.call('HVALS', KEYS[2])) do
  held[c] = (held[c] or 0) + 1
  if not seen[c] then seen[c] = true; n = n + 1 end
end
local waiting = redis.call('ZRANGE', KEYS[3], 0, -1)
local wconv, mine = {}, 0
for i, t in ipairs(waiting) do
  local c = redis.call('HGET', KEYS[5], t) or ''
  wconv[i] = c
  if not seen[c] then seen[c] = true; n = n + 1 end
  if t == token then mine = i end
end
local share = math.max(1, math.floor(limit / math.max(1, n)))
local mine_under = (held[conv] or 0) < share
local rank = 0
for i, t in ipairs(waiting) do
  if i ~= mine then
    local under = (held[wconv[i]] or 0) < share
    if mine_under then
      if under and i < mine then rank = rank + 1 end
    elseif under or i < mine then
      rank = rank + 1
    end
  end
end
if limit - used > rank then return grant() end
return {0, rank, used}
"""

# KEYS: holders, owners, hold. ARGV: token, held seconds (-1: not timed), weight, default.
_RELEASE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local held = tonumber(ARGV[2])
if removed == 1 and held >= 0 then
  local mean = tonumber(redis.call('GET', KEYS[3]) or ARGV[4])
  local w = tonumber(ARGV[3])
  redis.call('SET', KEYS[3], tostring(mean * (1 - w) + held * w), 'EX', 86400)
end
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: pending, holders, hold. ARGV: msgId, now, pending ttl, default hold.
# Returns {messages pending ahead of this one, slots in use, mean hold seconds as a string}.
_ENQUEUE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
local ahead = redis.call('ZRANK', KEYS[1], ARGV[1]) or 0
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
return {ahead, redis.call('ZCARD', KEYS[2]), redis.call('GET', KEYS[3]) or ARGV[4]}
"""

# KEYS: holders. ARGV: now + lease, tokens... Renews the leases of the tokens still held.
_RENEW = """
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i]) end
return redis.call('ZCARD', KEYS[1])
"""


class SlotTimeout(Exception):
    """No answer slot came free within the wait allowed."""


@dataclass(frozen=True)
class Queueing:
    """Where a newly routed message stands: messages ahead of it and its predicted wait."""

    ahead: int
    in_use: int
    wait_seconds: float


def endpoint_digest(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()[:16]


def predicted_wait(ahead: int, in_use: int, limit: int, hold_seconds: float) -> float:
    """Seconds until a slot is ours: the answers that must end first (those ahead that do not fit in
    the free slots, plus us), `limit` at a time, each holding its slot `hold_seconds`."""
    if limit <= 0:
        return 0.0
    must_end = ahead + in_use - limit + 1
    if must_end <= 0:
        return 0.0
    return math.ceil(must_end / limit) * hold_seconds


class Governor:
    """Answer slots per endpoint in one Redis; one instance per process (it renews its leases)."""

    def __init__(self, redis: Redis, prefix: str, limit: int, *, clock: Clock = SYSTEM_CLOCK,
                 lease_seconds: float = LEASE_SECONDS, poll_seconds: float = 0.02) -> None:
        self.redis = redis
        self.prefix = prefix
        self.limit = limit
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)
        self._enqueue = redis.register_script(_ENQUEUE)
        self._renew = redis.register_script(_RENEW)
        self._held: dict[str, set[str]] = {}  # endpoint → tokens this process holds
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._stop = threading.Event()

    # -- keys and time ---------------------------------------------------------------------
    def keys(self, endpoint: str) -> dict[str, str]:
        base = f"{self.prefix}llm:{endpoint_digest(endpoint)}:"
        return {n: base + n for n in ("holders", "owners", "waiters", "waitexp", "waitconv", "pending", "hold")}

    def _now(self) -> float:
        return self.clock.time()

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    # -- the busy notice's view ---------------------------------------------------------------
    def enqueue(self, endpoint: str, msg_id: str) -> Queueing:
        """Register a routed message as waiting for `endpoint` (idempotent); where it stands."""
        k = self.keys(endpoint)
        ahead, in_use, hold = self._enqueue(
            [k["pending"], k["holders"], k["hold"]],
            [msg_id, repr(self._now()), PENDING_TTL_SECONDS, DEFAULT_HOLD_SECONDS],
        )
        ahead, in_use = int(ahead), int(in_use)
        return Queueing(ahead, in_use, predicted_wait(ahead, in_use, self.limit, float(hold)))

    # -- slots -------------------------------------------------------------------------------
    def try_acquire(self, endpoint: str, token: str, conversation: str) -> tuple[bool, int, int]:
        """One attempt: (granted, rank among the waiters, slots in use)."""
        k = self.keys(endpoint)
        granted, rank, used = self._acquire(
            [k["holders"], k["owners"], k["waiters"], k["waitexp"], k["waitconv"], k["pending"]],
            [token, conversation, repr(self._now()), self.limit, self.lease_seconds, WAITER_TTL_SECONDS],
        )
        if granted:
            with self._lock:
                self._held.setdefault(endpoint, set()).add(token)
            self._ensure_renewer()
        SLOTS_IN_USE.labels(endpoint).set(int(used))
        return bool(granted), int(rank), int(used)

    def acquire(self, endpoint: str, token: str, conversation: str, timeout: float,
                on_wait: Callable[[int], None] | None = None) -> float:
        """Block until a slot is ours; seconds waited. `on_wait(rank)` runs about once a second while
        waiting (the caller keeps its place in its conversation's line). Raises SlotTimeout."""
        started = self.clock.monotonic()
        last_note = started
        while True:
            granted, rank, _ = self.try_acquire(endpoint, token, conversation)
            waited = self.clock.monotonic() - started
            if granted:
                SLOT_WAIT.labels(endpoint).observe(waited)
                return waited
            if waited >= timeout:
                self.forget_waiter(endpoint, token)
                SLOT_WAIT.labels(endpoint).observe(waited)
                raise SlotTimeout(f"no slot of {endpoint} within {timeout:.0f} s")
            if on_wait is not None and self.clock.monotonic() - last_note >= 1.0:
                last_note = self.clock.monotonic()
                on_wait(rank)
            # Further back, look less often: each look costs a script run over the waiters.
            self.clock.sleep(min(0.5, self.poll_seconds * (1 + rank)))

    def release(self, endpoint: str, token: str, held_seconds: float | None = None) -> None:
        k = self.keys(endpoint)
        with self._lock:
            self._held.get(endpoint, set()).discard(token)
        used = self._release([k["holders"], k["owners"], k["hold"]],
                             [token, -1 if held_seconds is None else held_seconds, HOLD_WEIGHT,
                              DEFAULT_HOLD_SECONDS])
        SLOTS_IN_USE.labels(endpoint).set(int(used))

    def forget_waiter(self, endpoint: str, token: str) -> None:
        k = self.keys(endpoint)
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(k["waiters"], token)
        pipe.zrem(k["waitexp"], token)
        pipe.hdel(k["waitconv"], token)
        pipe.zrem(k["pending"], token)  # it gave up: no longer ahead of anyone
        pipe.execute()

    @contextlib.contextmanager
    def slot(self, endpoint: str, token: str, conversation: str, timeout: float,
             on_wait: Callable[[int], None] | None = None) -> Iterator[float]:
        """Hold a slot of `endpoint` for the block (no limit: a no-op); yields the seconds waited."""
        if not self.enabled or not endpoint:
            yield 0.0
            return
        waited = self.acquire(endpoint, token, conversation, timeout, on_wait)
        started = self.clock.monotonic()
        try:
            yield waited
        finally:
            try:
                self.release(endpoint, token, self.clock.monotonic() - started)
            except Exception:  # Redis away: the lease runs out on its own
                log.warning("could not release the LLM slot of %s; its lease will expire", token, exc_info=True)

    def in_use(self, endpoint: str) -> int:
        k = self.keys(endpoint)
        self.redis.zremrangebyscore(k["holders"], "-inf", self._now())
        return int(self.redis.zcard(k["holders"]))

    # -- leases ------------------------------------------------------------------------------
    def renew(self) -> None:
        """Extend the lease of every slot this process holds (the renewer thread calls it)."""
        with self._lock:
            held = {e: sorted(t) for e, t in self._held.items() if t}
        for endpoint, tokens in held.items():
            self._renew([self.keys(endpoint)["holders"]], [repr(self._now() + self.lease_seconds), *tokens])

    def _ensure_renewer(self) -> None:
        with self._lock:
            if self._renewer is not None and self._renewer.is_alive():
                return
            self._renewer = threading.Thread(target=self._renew_loop, name="llm-slot-leases", daemon=True)
            self._renewer.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.renew()
            except Exception:  # Redis away for a moment: try again next round
                log.warning("could not renew LLM slot leases", exc_info=True)

    def close(self) -> None:
        self._stop.set()


_process: dict[int, Governor] = {}
_process_lock = threading.Lock()


def current() -> Governor:
    """This process's governor, over its resources' Redis, prefix, limit and clock."""
    from workers import resources

    res = resources.current()
    with _process_lock:
        gov = _process.get(id(res))
        if gov is None or gov.redis is not res.redis:
            gov = Governor(res.redis, res.settings.redis_key_prefix, res.settings.llm_max_concurrency,
                           clock=res.clock)
            _process.clear()  # one per process: an old container's is dropped
            _process[id(res)] = gov
        return gov
