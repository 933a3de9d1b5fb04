"""A small OpenAI-compatible chat server with deterministic answers and injectable faults."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web

from sandbox.aiothread import ThreadedAppServer
from sandbox.llm.answers import answer_text, answer_tokens, last_user_message, tokenize
from sandbox.llm.state import Behaviour, StubState

STATE = web.AppKey("stub_state", StubState)
STOPPING = web.AppKey("stub_stopping", asyncio.Event)

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    408: ("timeout", None),
    429: ("requests", "rate_limit_exceeded"),
}


def error_response(status: int, message: str) -> web.Response:
    """An error in OpenAI's shape, so the official client maps it to its exception classes."""
    kind, code = _ERROR_TYPES.get(status, ("server_error", None))
    headers = {"retry-after": "1"} if status in (429, 503) else None
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _authorized(request: web.Request, state: StubState) -> bool:
    if not state.api_key:
        return True
    return request.headers.get("Authorization", "") == f"Bearer {state.api_key}"


async def _wait_forever(app: web.Application) -> None:
    """Block until the server stops (a client timeout cancels the handler first)."""
    await app[STOPPING].wait()


def _chunk(completion_id: str, model: str, created: int, delta: dict[str, Any], finish: str | None) -> bytes:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": "stub",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    messages = body.get("messages") if isinstance(body, dict) else None
    entry = state.record(
        {
            "path": request.path,
            "authorized": _authorized(request, state),
            "model": body.get("model") if isinstance(body, dict) else None,
            "messages": messages,
            "temperature": body.get("temperature") if isinstance(body, dict) else None,
            "max_tokens": _max_tokens(body) if isinstance(body, dict) else None,
            "stream": bool(body.get("stream")) if isinstance(body, dict) else False,
            "tokens_sent": 0,
        }
    )
    if not entry["authorized"]:
        entry["outcome"] = "unauthorized"
        return error_response(401, "Incorrect API key provided to the stub LLM.")
    if not isinstance(messages, list) or not messages or not all(
        isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages
    ):
        entry["outcome"] = "bad_request"
        return error_response(400, "'messages' must be a non-empty list of {role, content} objects.")
    behaviour = state.behaviour_for(last_user_message(messages))
    entry["behaviour"] = behaviour.public()
    state.started()
    try:
        return await _answer(request, state, entry, behaviour, messages, body)
    finally:
        state.ended()


async def _answer(request: web.Request, state: StubState, entry: dict[str, Any], behaviour: Behaviour,
                  messages: list[dict[str, Any]], body: dict[str, Any]) -> web.StreamResponse:
    if behaviour.hang:
        entry["outcome"] = "hang"
        await _wait_forever(request.app)
        raise web.HTTPServiceUnavailable()
    if behaviour.error_status:
        entry["outcome"] = f"error:{behaviour.error_status}"
        return error_response(behaviour.error_status, f"stub LLM: injected HTTP {behaviour.error_status}")
    tokens = answer_tokens(answer_text(messages, behaviour.answer), behaviour.tokens)
    finish = "stop"
    limit = entry["max_tokens"]
    if isinstance(limit, int) and 0 < limit < len(tokens):
        tokens, finish = tokens[:limit], "length"
    if entry["stream"]:
        return await _stream(request, entry, behaviour, tokens, finish, body)
    return await _complete(request, entry, behaviour, tokens, finish, messages)


def _max_tokens(body: dict[str, Any]) -> Any:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(messages: list[dict[str, Any]], completion: int) -> dict[str, int]:
    prompt = sum(len(tokenize(str(m.get("content", "")))) + 4 for m in messages)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


async def _stream(
    request: web.Request,
    entry: dict[str, Any],
    behaviour: Behaviour,
    tokens: list[str],
    finish: str,
    body: dict[str, Any],
) -> web.StreamResponse:
    state = request.app[STATE]
    completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)  # headers go out at once, like real servers; tokens follow
    try:
        await asyncio.sleep(behaviour.first_token_delay)
        await resp.write(_chunk(completion_id, state.model, created, {"role": "assistant", "content": ""}, None))
        for i, token in enumerate(tokens):
            if behaviour.cut_after is not None and i >= behaviour.cut_after:
                return _cut(request, entry, resp)
            if behaviour.stall_after is not None and i >= behaviour.stall_after:
                entry["outcome"] = "stalled"
                await _wait_forever(request.app)
                return resp
            if i:
                await asyncio.sleep(behaviour.inter_token_delay)
            await resp.write(_chunk(completion_id, state.model, created, {"content": token}, None))
            entry["tokens_sent"] = i + 1
        if behaviour.cut_after is not None:
            return _cut(request, entry, resp)
        await resp.write(_chunk(completion_id, state.model, created, {}, finish))
        options = body.get("stream_options") or {}
        if isinstance(options, dict) and options.get("include_usage"):
            usage = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                     "model": state.model, "choices": [], "usage": _usage(body["messages"], len(tokens))}
            await resp.write(f"data: {json.dumps(usage)}\n\n".encode())
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        entry["outcome"] = "ok" if finish == "stop" else finish
    except (ConnectionError, asyncio.CancelledError):
        # The client went away (timeout or cancel); nothing more to send.
        entry["outcome"] = "client_gone"
        raise
    return resp


def _cut(request: web.Request, entry: dict[str, Any], resp: web.StreamResponse) -> web.StreamResponse:
    """Drop the TCP connection mid-body: the client sees an incomplete chunked response."""
    entry["outcome"] = "cut"
    if request.transport is not None:
        request.transport.abort()
    return resp


async def _complete(
    request: web.Request,
    entry: dict[str, Any],
    behaviour: Behaviour,
    tokens: list[str],
    finish: str,
    messages: list[dict[str, Any]],
) -> web.Response:
    state = request.app[STATE]
    sent = len(tokens)
    if behaviour.stall_after is not None:
        entry["outcome"] = "stalled"
        await _wait_forever(request.app)
    delay = behaviour.first_token_delay + behaviour.inter_token_delay * max(0, sent - 1)
    await asyncio.sleep(delay)
    if behaviour.cut_after is not None:
        entry["outcome"] = "cut"
        if request.transport is not None:
            request.transport.abort()
        raise web.HTTPServiceUnavailable()  # never reaches the client: the socket is gone
    entry["tokens_sent"], entry["outcome"] = sent, "ok" if finish == "stop" else finish
    return web.json_response(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": state.model,
            "system_fingerprint": "stub",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens)},
                    "logprobs": None,
                    "finish_reason": finish,
                }
            ],
            "usage": _usage(messages, sent),
        },
        dumps=lambda o: json.dumps(o, ensure_ascii=False),
    )


async def list_models(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not _authorized(request, state):
        return error_response(401, "Incorrect API key provided to the stub LLM.")
    model = {"id": state.model, "object": "model", "created": 0, "owned_by": "dtbot-stub"}
    return web.json_response({"object": "list", "data": [model]})


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].public())


async def post_config(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        state.configure(await request.json())
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response(state.public())


async def get_requests(request: web.Request) -> web.Response:
    return web.json_response({"requests": request.app[STATE].requests})


async def delete_requests(request: web.Request) -> web.Response:
    request.app[STATE].requests.clear()
    return web.json_response({"ok": True})


def build_app(state: StubState | None = None) -> web.Application:
    app = web.Application()
    app[STATE] = state or StubState()

    async def make_event(app: web.Application) -> None:
        app[STOPPING] = asyncio.Event()

    async def release(app: web.Application) -> None:
        app[STOPPING].set()

    app.on_startup.append(make_event)
    app.on_shutdown.append(release)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/stub/config", get_config)
    app.router.add_post("/stub/config", post_config)
    app.router.add_get("/stub/requests", get_requests)
    app.router.add_delete("/stub/requests", delete_requests)
    return app


class StubLLMServer:
    """The stub in a background thread: `StubLLMServer(port=0).start()`, `.base_url`, `.stop()`."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", api_key: str = "", model: str = "stub-llm",
                 **behaviour: Any) -> None:
        self.state = StubState(api_key=api_key, model=model)
        if behaviour:
            self.state.configure(behaviour)
        self.app = build_app(self.state)
        self._server = ThreadedAppServer(self.app, host=host, port=port)

        async def release() -> None:
            self.app[STOPPING].set()

        self._server.on_stop.append(release)

    @property
    def url(self) -> str:
        """Root URL (control endpoints live under /stub)."""
        return self._server.url

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as base_url (and LLM_BASE_URL): the root plus /v1."""
        return f"{self._server.url}/v1"

    @property
    def port(self) -> int:
        return self._server.port

    def start(self) -> StubLLMServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> StubLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def configure(self, **body: Any) -> dict[str, Any]:
        """Same as POST /stub/config, e.g. `configure(first_token_delay=2)` or `configure(once=[{...}])`."""
        def apply() -> dict[str, Any]:
            self.state.configure(body)
            return self.state.public()

        return self._server.call(apply)

    def requests(self) -> list[dict[str, Any]]:
        """Copies of the recorded requests, oldest first."""
        return self._server.call(lambda: [dict(r) for r in self.state.requests])

    def reset(self) -> None:
        self._server.call(self.state.reset)
