"""`python -m sandbox.llm --port 8080`: serve the LLM stub until interrupted."""

from __future__ import annotations

import argparse
import json
import logging

from aiohttp import web

from sandbox.llm.server import build_app
from sandbox.llm.state import StubState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="OpenAI-compatible LLM stub (deterministic answers).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--api-key", default="", help="require 'Authorization: Bearer <key>'")
    parser.add_argument("--model", default="stub-llm")
    parser.add_argument("--first-token-delay", type=float, default=0.3)
    parser.add_argument("--inter-token-delay", type=float, default=0.03)
    parser.add_argument("--config", default="", help="JSON body as for POST /stub/config")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    state = StubState(api_key=args.api_key, model=args.model)
    # A little latency by default so the sandbox chat shows the answer streaming in.
    state.configure({"first_token_delay": args.first_token_delay, "inter_token_delay": args.inter_token_delay})
    if args.config:
        state.configure(json.loads(args.config))
    print(f"stub LLM on http://{args.host}:{args.port}/v1 (set LLM_BASE_URL to this)", flush=True)
    web.run_app(build_app(state), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
