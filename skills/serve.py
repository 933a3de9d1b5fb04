"""`python -m skills.serve NAME --port P`: serve one built-in skill over the remote-skill HTTP contract.

POST /  body = a Turn dict → 200 Reply dict | 400 bad turn | 401 bad token | 422 SkillError
(`{"error", "user_message"}`) | 500 crash | 504 the skill's own timeout passed.
GET /health → {"skill", "intents", "ok"}. Streams of chunks are joined into one reply.

The skill gets its knobs only from the command line (`--config`, a JSON object or `@file.json`
for secrets that should not show in `ps`) and its store from `--store module:Class`; the one
thing read from the environment is SKILL_SERVE_TOKEN, the bearer token callers must send (this
server runs without the bot's settings module).
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import importlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from skills import registry
from skills.api import AISkillPlugin, Reply, SkillError, Turn

log = logging.getLogger("skills.serve")

SKILL_KEY = web.AppKey("skill", AISkillPlugin)
TOKEN_KEY = web.AppKey("token", str)
POOL_KEY = web.AppKey("pool", ThreadPoolExecutor)


def run_hooks(skill: AISkillPlugin, turn: Turn) -> Reply:
    """pre_process → execute → post_process, with a stream of chunks joined into one reply."""
    turn = skill.pre_process(turn)
    result = skill.execute(turn)
    if not isinstance(result, Reply):
        result = Reply(text="".join(str(chunk) for chunk in result))
    return skill.post_process(turn, result)


def _error(status: int, message: str, user_message: str = "") -> web.Response:
    body: dict[str, Any] = {"error": message}
    if user_message:
        body["user_message"] = user_message
    return web.json_response(body, status=status, dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def handle_turn(request: web.Request) -> web.Response:
    skill, token = request.app[SKILL_KEY], request.app[TOKEN_KEY]
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return _error(401, "missing or wrong bearer token")
    try:
        data = await request.json()
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object (a turn)")
        turn = Turn.from_dict(data)
    except (ValueError, TypeError) as exc:
        return _error(400, f"not a turn: {exc}")
    loop = asyncio.get_running_loop()
    try:
        reply = await asyncio.wait_for(
            loop.run_in_executor(request.app[POOL_KEY], run_hooks, skill, turn), skill.timeout_seconds
        )
    except TimeoutError:
        log.error("skill %s timed out after %.1f s (msg_id=%s)", skill.name, skill.timeout_seconds, turn.msg_id)
        return _error(504, "the skill timed out")
    except SkillError as exc:
        return _error(422, str(exc), exc.user_message)
    except Exception:  # the one broad except of the server: the caller sees a 500, the log the cause
        log.exception("skill %s crashed (msg_id=%s)", skill.name, turn.msg_id)
        return _error(500, "the skill failed")
    return web.json_response(reply.to_dict(), dumps=lambda o: json.dumps(o, ensure_ascii=False))


async def handle_health(request: web.Request) -> web.Response:
    skill = request.app[SKILL_KEY]
    return web.json_response({"skill": skill.name, "intents": list(skill.intents), "ok": True})


def make_app(skill: AISkillPlugin, token: str = "", threads: int = 8) -> web.Application:
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[SKILL_KEY] = skill
    app[TOKEN_KEY] = token
    app[POOL_KEY] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"skill-{skill.name}")
    app.router.add_post("/", handle_turn)
    app.router.add_get("/health", handle_health)

    async def shutdown_pool(app: web.Application) -> None:
        app[POOL_KEY].shutdown(wait=False, cancel_futures=True)

    app.on_cleanup.append(shutdown_pool)
    return app


def _named(dotted: str) -> Any:
    """The object `package.module:name` names; a clear message and exit status 1 when there is none."""
    module, _, attr = dotted.partition(":")
    if not module or not attr:
        raise SystemExit(f"expected module:name, got {dotted!r}")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise SystemExit(f"cannot load {dotted}: {exc}") from exc


def _config(text: str) -> dict[str, Any]:
    """--config: a JSON object, or @path to a file holding one."""
    raw = Path(text[1:]).read_text(encoding="utf-8") if text.startswith("@") else text
    config = json.loads(raw)
    if not isinstance(config, dict):
        raise SystemExit("--config must be a JSON object")
    return config


def build_skill(name: str, config: dict[str, Any], store: str = "") -> AISkillPlugin:
    """The skill to serve; `store` (module:Class, constructed without arguments) is handed to it as `store=`."""
    collaborators = {"store": _named(store)()} if store else {}
    return registry.build(name, config, **collaborators)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m skills.serve", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=registry.skill_names(), help="the built-in skill to serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", default="{}", help="Config overrides: a JSON object, or @file.json")
    parser.add_argument("--store", default="", help="module:Class of the skill's store (e.g. schedule's ReminderStore)")
    parser.add_argument("--threads", type=int, default=8, help="turns answered at once")
    parser.add_argument("--setup", default="", help="module:function to run first (e.g. one that sets Django up "
                                                    "for a store that needs it)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.setup:
        _named(args.setup)()
    skill = build_skill(args.name, _config(args.config), args.store)
    token = os.environ.get("SKILL_SERVE_TOKEN", "").strip()
    if not token:
        log.warning("SKILL_SERVE_TOKEN is empty: serving %s without authentication", args.name)
    app = make_app(skill, token, args.threads)
    print(f"serving skill {args.name} on http://{args.host}:{args.port}/", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, handle_signals=True,
                shutdown_timeout=5.0)


if __name__ == "__main__":
    main()
