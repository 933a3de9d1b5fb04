"""Per-process clients: Lua scripts run by SHA and load themselves where Redis does not know them."""

from __future__ import annotations

import uuid

from workers.resources import LuaScript


def test_a_script_redis_has_never_seen_is_loaded_then_run_by_its_sha(redis_conn, resources):
    # A source no server can know yet (unique comment): the first call meets NOSCRIPT.
    script = LuaScript(f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
    counter = resources.current.key("lua-test")
    assert redis_conn.script_exists(script.sha) == [False]
    assert script([counter], [2]) == 2
    assert redis_conn.script_exists(script.sha) == [True]
    assert script([counter], [3]) == 5
