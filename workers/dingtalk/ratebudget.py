"""The shared DingTalk rate budget: one Redis token bucket per API family, for every worker process."""

from __future__ import annotations

from collections.abc import Mapping

import redis as redis_lib

from conf.settings import Settings
from workers import metrics
from workers.clock import SYSTEM_CLOCK, Clock

FAMILIES = ("webhook", "robot_send", "card")
TTL_MS = 60_000  # long enough to remember a penalty or a queue of reservations; idle buckets vanish

# KEYS[1] bucket hash. ARGV: rate/s, burst, max wait (s), ttl (ms).
# Returns {granted 0|1, wait in microseconds}. A grant with a wait is a reservation: the caller
# owns the slot at now+wait (tokens go negative), so waiting callers queue in order instead of
# polling in a herd. Time comes from Redis so every host shares one clock.
_ACQUIRE = """
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local s = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'blocked_until')
local tokens, ts, blocked = tonumber(s[1]) or burst, tonumber(s[2]) or now, tonumber(s[3]) or 0
if now < blocked then
  return {0, math.ceil((blocked - now) * 1000000)}
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local granted, wait = 1, 0
if tokens < 1 then
  wait = (1 - tokens) / rate
  if wait > max_wait then granted = 0 end
end
if granted == 1 then tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {granted, math.ceil(wait * 1000000)}
"""

# KEYS[1] bucket hash. ARGV: seconds, ttl (ms). Nobody gets a token until now+seconds, and the
# tokens saved up so far are forfeited: DingTalk just said we were too fast.
_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[1])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'blocked_until')
local tokens, blocked = tonumber(s[1]) or 0, tonumber(s[2]) or 0
if until_ > blocked then redis.call('HSET', KEYS[1], 'blocked_until', tostring(until_)) end
redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(tokens, 0)), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""


class RateBudget:
    """Requests per second per API family, shared by all workers through Redis.

    `rates` maps a family to DingTalk's limit in requests/second (≤ 0: unlimited). Calls are
    spaced at `rate × headroom`: the headroom absorbs scheduling and network jitter, which can
    bunch two evenly spaced calls into the same second on DingTalk's side. `burst` is how many
    calls may go back to back after a quiet spell; 1 spaces them evenly, so any one-second window
    holds at most `rate` calls whatever window DingTalk counts in. The buckets keep Redis's time;
    `clock` is this process's, for its own waits.
    """

    def __init__(
        self,
        client: redis_lib.Redis,
        prefix: str,
        rates: Mapping[str, float],
        burst: float = 1.0,
        headroom: float = 0.85,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.client = client
        self.prefix = prefix
        self.rates = dict(rates)
        self.headroom = headroom
        self.burst = max(1.0, float(burst))
        self.clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._penalize = client.register_script(_PENALIZE)

    @classmethod
    def from_settings(cls, client: redis_lib.Redis, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> RateBudget:
        """DINGTALK_QPS_<FAMILY> per family, under this deployment's key prefix."""
        rates = {family: float(getattr(settings, f"dingtalk_qps_{family}")) for family in FAMILIES}
        return cls(client, settings.redis_key_prefix, rates, clock=clock)

    def key(self, family: str) -> str:
        return f"{self.prefix}ratebudget:{family}"

    def _rate(self, family: str) -> float:
        if family not in self.rates:
            raise KeyError(f"unknown rate family {family!r}; known: {sorted(self.rates)}")
        return self.rates[family]

    def reserve(self, family: str, max_wait: float = 0.0) -> tuple[bool, float]:
        """Take a token now or reserve one within `max_wait` s: (granted, seconds until the slot)."""
        rate = self._rate(family)
        if rate <= 0:
            return True, 0.0
        granted, wait_us = self._acquire(
            keys=[self.key(family)], args=[rate * self.headroom, self.burst, max_wait, TTL_MS]
        )
        return bool(granted), int(wait_us) / 1_000_000

    def try_acquire(self, family: str) -> float:
        """0.0 when a token was taken now; otherwise the seconds until one may be free (nothing taken)."""
        granted, wait = self.reserve(family, 0.0)
        return 0.0 if granted and wait == 0 else max(wait, 1e-3)

    def acquire(self, family: str, timeout: float = 5.0) -> bool:
        """Block until a token is ours (True) or `timeout` s pass (False)."""
        clock = self.clock
        deadline = clock.monotonic() + timeout
        while True:
            left = deadline - clock.monotonic()
            granted, wait = self.reserve(family, max(0.0, left))
            if granted:
                if wait > 0:
                    clock.sleep(wait)
                metrics.budget_waited(family, timeout - left + wait)
                return True
            if wait >= left:
                return False
            clock.sleep(wait)  # blocked by a penalty: try again when it ends

    def penalize(self, family: str, seconds: float) -> None:
        """Hold every worker's calls of this family for `seconds` (after a 403 QpsLimitForApi)."""
        if self._rate(family) <= 0:
            return
        self._penalize(keys=[self.key(family)], args=[seconds, TTL_MS])
