"""`python -m ingest`: load settings, configure logging, run the Stream listener until SIGTERM.

Exit status: 0 after SIGTERM/SIGINT, 1 when the hand-off thread died (nothing could be ACKed any
more: the supervisor starts a fresh process), 2 when the journal is held by another listener.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from conf.logs import configure_logging
from conf.settings import get_settings
from ingest.config import IngestConfig
from ingest.journal import JournalLocked
from ingest.listener import Listener

# Library chatter (httpx request lines, amqp) would drown the per-message lines.
NOISY_LOGGERS = ("httpx", "httpcore", "amqp", "kombu", "websocket")


def main() -> int:
    settings = get_settings()
    # The format every role shares (conf/logs.py: text or JSON lines with the msgId).
    configure_logging(settings.log_level, quiet={
        noisy: max(logging.WARNING, settings.log_level) for noisy in NOISY_LOGGERS})
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
