"""`python -m sandbox`: run the DingTalk sandbox until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from conf.settings import get_settings
from sandbox.dingtalk.server import start_app
from sandbox.dingtalk.state import REDELIVERY_MODES, SandboxConfig

DEFAULT_CLIENT_ID = "sandbox-client-id"
DEFAULT_CLIENT_SECRET = "sandbox-client-secret"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=settings.sandbox_port)
    parser.add_argument("--client-id", default=settings.dingtalk_client_id or DEFAULT_CLIENT_ID)
    parser.add_argument(
        "--client-secret", default=settings.dingtalk_client_secret or DEFAULT_CLIENT_SECRET
    )
    parser.add_argument(
        "--redelivery", choices=REDELIVERY_MODES, default="events",
        help="which un-ACKed pushes come again: off, events (DingTalk's FAQ: robot messages are not "
        "re-pushed; the default) or all (as field reports sometimes see)",
    )
    parser.add_argument(
        "--redeliver-after", type=float, default=16.0, help="seconds before an un-ACKed push is re-pushed"
    )
    parser.add_argument(
        "--redeliver-jitter", type=float, default=44.0, help="up to this many seconds more, at random per push"
    )
    parser.add_argument("--max-redeliveries", type=int, default=3)
    parser.add_argument("--ping-interval", type=float, default=30.0, help="seconds between SYSTEM pings (0: off)")
    parser.add_argument("--webhook-ttl", type=float, default=5400.0, help="sessionWebhook lifetime in seconds")
    parser.add_argument("--log-level", default=settings.log_level)
    return parser.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    config = SandboxConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        redelivery=args.redelivery,
        redeliver_after=args.redeliver_after,
        redeliver_jitter=args.redeliver_jitter,
        max_redeliveries=args.max_redeliveries,
        ping_interval=args.ping_interval,
        webhook_ttl=args.webhook_ttl,
    )
    runner, port = await start_app(config, args.host, args.port)
    print(f"sandbox listening on http://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
