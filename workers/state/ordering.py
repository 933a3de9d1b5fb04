"""Per-conversation ordering across worker replicas: a Redis turnstile in front of run_skill and deliver.

How it works
------------
* preprocess registers every message in its conversation's sorted set, as its first step
  `{prefix}order:{tenant}:{conversation}`; the score is DingTalk's `createAt` (epoch ms, the order
  the users see in their client; card callbacks use the listener's receive time), ties broken by
  msgId. A companion hash holds when each message last made progress (Redis clock).
* run_skill and deliver first ask the turnstile: "is any *registered, unfinished* message of my
  conversation ahead of me?" (one Lua call). If not, the stage runs. If so, the task waits briefly
  in place (ORDER_SPIN_SECONDS, polling), then hands its slot back to the broker: it is re-queued
  with a short countdown (Celery retry that does not count against TASK_MAX_RETRIES), so a waiting
  message never holds a worker thread for long.
* deliver finishes the message (removes it) once every part of its reply is sent or known to be
  in flight elsewhere; dead-lettering finishes it too. run_skill re-reads the session after
  passing the turnstile, so the skill sees the turns of the messages before it.

The guarantee
-------------
Let A and B be messages of one conversation with key(A) < key(B), key = (createAt, msgId).

1. Replies: if A is registered before B's deliver stage passes the turnstile, no part of B's reply
   is sent before A is finished (all of A's parts sent, or A dead-lettered).
2. Context: if A is registered before B's run_skill passes the turnstile, B's skill runs after A
   is finished and its session history contains A's turn.
3. Liveness: every stage start of a message (preprocess, run_skill, postprocess, deliver) and
   every look at the turnstile while it waits records progress ("running"); every hand-off to a
   queue (the next stage, a retry, a re-queue) marks it "queued". A running message ahead that
   made no progress for ORDER_MAX_WAIT_SECONDS counts as stuck and no longer holds anyone back
   (logged); a queued one keeps its place, however long the backlog before it (issue 11: a
   message that merely waited in a long queue is not stuck). Any entry without progress for
   ORDER_ENTRY_TTL_SECONDS is dropped (one without a progress time starts its clock when first
   seen). So a stuck message (a worker died mid-stage and the message never came back) delays its
   conversation by at most ORDER_MAX_WAIT_SECONDS after its last progress, and a message lost
   in a queue by at most ORDER_ENTRY_TTL_SECONDS, never for good. Dead letters finish their slot
   (workers.tasks.dead_letter; preprocess's envelope names its line too).
4. Conversations are independent: a message only ever waits for messages of its own
   (tenant, conversation); different conversations run fully in parallel.

Not guaranteed: a message registered *after* a later-keyed message already passed a turnstile.
Registration is the first thing preprocess does (before the msgId claim; a duplicate that added
itself removes itself again), and run_skill waits until its own registration is at least
ORDER_SETTLE_SECONDS old, so for (2) A's preprocess must start more than that, plus B's whole
preprocess, after B's; for (1) later than B's whole skill run. Replayed dead letters are not
registered and never wait.
"""

from __future__ import annotations

import logging

from workers.errors import WaitForTurn
from workers.payload import Order
from workers.resources import LuaScript, current

log = logging.getLogger(__name__)

# KEYS: zset, hash. ARGV: member, score, entry ttl (s). Registers once (a redelivered message
# keeps its place); the hash holds when each message last made progress.
_REGISTER = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1])
redis.call('HSETNX', KEYS[2], ARGV[1], tostring(now))
local ttl = math.ceil(tonumber(ARGV[3]) * 2000)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return added
""")

# KEYS: zset, hash. ARGV: member, score, stuck after (s), entry ttl (s), scan limit, touch (0|1).
# Returns {live, stuck}: messages ahead of member that made progress within `stuck after` seconds,
# and those that did not. Entries without progress for `entry ttl` are dropped on the way. With
# touch, the member's own progress is recorded in the same call (a stage looking at the turnstile
# is alive, whether it goes ahead or waits).
_AHEAD = LuaScript("""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local score, stuck_after, ttl, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local rows = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0, limit)
local live, stuck, seen = 0, 0, 0
for i = 1, #rows, 2 do
  local member, s = rows[i], tonumber(rows[i + 1])
  seen = seen + 1
  if member ~= ARGV[1] and (s < score or member < ARGV[1]) then
    local raw = redis.call('HGET', KEYS[2], member) or ''
    local queued = string.sub(raw, 1, 1) == 'q'
    local at = tonumber(queued and string.sub(raw, 2) or raw) or 0
    if at == 0 then
      -- No progress time (lost, or written by an older version): its clock starts now, so it
      -- expires like any other entry instead of holding the line until the key's TTL.
      redis.call('HSET', KEYS[2], member, tostring(now))
      live = live + 1
    elseif now - at > ttl then
      redis.call('ZREM', KEYS[1], member)
      redis.call('HDEL', KEYS[2], member)
    elseif not queued and now - at > stuck_after then
      stuck = stuck + 1
    else
      live = live + 1
    end
  end
end
if live == 0 and seen >= limit then live = 1 end
if ARGV[6] == '1' and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('HSET', KEYS[2], ARGV[1], tostring(now))
end
return {live, stuck}
""")

# KEYS: zset, hash. ARGV: member, mark ('' = a stage started: running; 'q' = handed to a queue).
# A queued message is never "stuck" (it waits its turn in the broker, however long the backlog);
# a running one is, after ORDER_MAX_WAIT_SECONDS without progress.
_TOUCH = LuaScript("""
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000))
  return 1
end
return 0
""")

SCAN_LIMIT = 100


def line_key(tenant_id: str, conversation_id: str) -> str:
    """The conversation's line: a sorted set of msgIds by (createAt, msgId)."""
    return current().key(f"order:{tenant_id}:{conversation_id}")


def _keys(order: Order) -> list[str]:
    line = line_key(order.tenant_id, order.conversation_id)
    return [line, line + ":at"]  # the line, and when each of its messages last made progress


def register(msg_id: str, tenant_id: str, conversation_id: str, seq_ms: float) -> tuple[Order, bool]:
    """Enter the message in its conversation's line: (its place, for the payload; newly added?).

    "Not newly added" means the message is already in line (a redelivered or duplicate push).
    """
    res = current()
    order = Order(tenant_id, conversation_id, float(seq_ms), registered_at=res.clock.time())
    added = _REGISTER(_keys(order), [msg_id, repr(order.seq), res.settings.order_entry_ttl_seconds])
    return order, bool(added)


def ahead_of(msg_id: str, order: Order, touch: bool = False) -> tuple[int, int]:
    """(live, stuck): unfinished messages of the conversation before this one, by recent progress;
    with `touch`, this message's progress is recorded in the same round trip."""
    settings = current().settings
    live, stuck = _AHEAD(
        _keys(order),
        [msg_id, repr(order.seq), settings.order_max_wait_seconds, settings.order_entry_ttl_seconds,
         SCAN_LIMIT, int(touch)],
    )
    return int(live), int(stuck)


def touch(msg_id: str, order: Order | None) -> None:
    """A stage of this message starts: messages behind it keep waiting for it."""
    if order is not None and msg_id:
        _TOUCH(_keys(order), [msg_id, ""])


def queued(msg_id: str, order: Order | None) -> None:
    """The message was handed to a queue (the next stage, a retry, a re-queue): it keeps its place
    until a stage of it starts again, however long it waits there (up to ORDER_ENTRY_TTL_SECONDS)."""
    if order is not None and msg_id:
        _TOUCH(_keys(order), [msg_id, "q"])


def finish(msg_id: str, order: Order | None) -> None:
    """The message is done (answered or given up): the next one of its conversation may go."""
    if order is None or not msg_id:
        return
    line, times = _keys(order)
    pipe = current().redis.pipeline(transaction=True)
    pipe.zrem(line, msg_id)
    pipe.hdel(times, msg_id)
    pipe.execute()


def admit(msg_id: str, order: Order | None, stage: str) -> None:
    """Return when it is this message's turn; raise WaitForTurn otherwise.

    Waits in place up to ORDER_SPIN_SECONDS (most predecessors finish quickly), then re-queues.
    Messages ahead that made no progress for ORDER_MAX_WAIT_SECONDS no longer hold it back.
    A message never put in line (a replayed dead letter) goes at once.
    """
    if order is None or not msg_id:
        return
    res = current()
    settings, clock = res.settings, res.clock
    # A message taken from the preprocess queue just before this one may not be registered yet
    # (its thread was descheduled): give it a moment before looking.
    settle = settings.order_settle_seconds - (clock.time() - order.registered_at)
    if settle > 0:
        clock.sleep(min(settle, settings.order_settle_seconds))
    spin_until = clock.monotonic() + settings.order_spin_seconds
    step = max(0.01, settings.order_poll_seconds / 4)
    while True:
        # Each look records progress too: waiting in line is alive, those behind keep waiting.
        live, stuck = ahead_of(msg_id, order, touch=True)
        if live == 0:
            if stuck:
                log.warning("%s: going ahead of %d earlier message(s) without progress for %.0f s",
                            stage, stuck, settings.order_max_wait_seconds)
            if order.waiting_since:
                log.info("%s: my turn after %.2f s", stage, clock.time() - order.waiting_since)
            return
        if clock.monotonic() + step > spin_until:
            break
        clock.sleep(step)
    if not order.waiting_since:
        order = order.replace(waiting_since=clock.time())
    # Further back in the line, look again less often (each message ahead needs its own time).
    countdown = min(settings.order_poll_seconds * live, 2.0)
    raise WaitForTurn(order, countdown, live)
