"""Fixtures of the knowledge tests: an embedded PostgreSQL + pgvector, the e5 embedder, an LLM stub."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from testkit.services import free_port


@pytest.fixture(scope="session")
def embedder() -> Any:
    from skills.docsearch.embedding import E5Embedder

    return E5Embedder(threads=2)


class LLMStub:
    """An OpenAI-compatible /v1/chat/completions server on 127.0.0.1: fixed answer or HTTP 500."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer = "年假为十五天 [1]。"
        self.status = 200
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                if stub.status != 200:
                    payload: dict[str, Any] = {"error": {"message": "model crashed", "type": "server_error"}}
                else:
                    payload = {
                        "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": body["model"],
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": stub.answer}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                data = json.dumps(payload).encode()
                self.send_response(stub.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm_stub() -> Iterator[LLMStub]:
    stub = LLMStub()
    try:
        yield stub
    finally:
        stub.close()
