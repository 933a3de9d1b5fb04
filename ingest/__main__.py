"""`python -m ingest`: load settings, configure logging, run the Stream listener until SIGTERM.

Exit status: 0 after SIGTERM/SIGINT, 1 when the hand-off thread died (nothing could be ACKed any
more: the supervisor starts a fresh process), 2 when the journal is held by another listener.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from conf.settings import get_settings
from ingest.config import IngestConfig
from ingest.journal import JournalLocked
from ingest.listener import Listener

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"


def main() -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT, stream=sys.stderr)
    # Library chatter (httpx request lines, amqp) would drown the per-message lines.
    for noisy in ("httpx", "httpcore", "amqp", "kombu", "websocket"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    config = IngestConfig.from_settings(settings)
    if not settings.has_dingtalk_credentials:
        logging.getLogger("ingest").error(
            "DINGTALK_CLIENT_ID / DINGTALK_CLIENT_SECRET are empty: the gateway will refuse the "
            "listener (run `make run` without them to use the local sandbox)"
        )
    try:
        listener = Listener(config)
    except JournalLocked as exc:
        logging.getLogger("ingest").error("%s", exc)
        return 2

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger("ingest").info("received %s, shutting down", signal.Signals(signum).name)
        listener.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    listener.run()
    return listener.exit_code


if __name__ == "__main__":
    sys.exit(main())
