"""`python -m skills.serve NAME --port P`: serve one built-in skill over the remote-skill HTTP contract.

POST /  body = a Turn dict → 200 Reply dict | 400 bad turn | 401 bad token | 422 SkillError
(`{"error", "user_message"}`) | 500 crash | 504 the skill's own timeout passed.
GET /health → {"skill", "intents", "ok"}. Streams of chunks are joined into one reply.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import importlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from conf.settings import get_settings
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


def _call_setup(dotted: str) -> None:
    """Run e.g. `workers.resources:setup_django` first, for skills whose stores need Django."""
    module, _, attr = dotted.partition(":")
    getattr(importlib.import_module(module), attr)()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m skills.serve", description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=registry.skill_names(), help="the built-in skill to serve")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--config", default="{}", help="JSON object of Config overrides")
    parser.add_argument("--threads", type=int, default=8, help="turns answered at once")
    parser.add_argument("--setup", default="", help="dotted callable to run first, e.g. workers.resources:setup_django")
    args = parser.parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.setup:
        _call_setup(args.setup)
    skill = registry.build(args.name, json.loads(args.config))
    if not settings.skill_serve_token:
        log.warning("SKILL_SERVE_TOKEN is empty: serving %s without authentication", args.name)
    app = make_app(skill, settings.skill_serve_token, args.threads)
    print(f"serving skill {args.name} on http://{args.host}:{args.port}/", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, handle_signals=True,
                shutdown_timeout=5.0)


if __name__ == "__main__":
    main()
