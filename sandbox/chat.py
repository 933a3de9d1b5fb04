"""`python -m sandbox.chat`: chat with the bot from a terminal through a running sandbox."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from typing import Any

from sandbox.client import SandboxClient, SandboxError

DEMO_USER = "demo"
DEMO_NICK = "Demo User"


class TerminalChat:
    """Sends typed lines as messages from the demo user and prints the bot's replies as they come."""

    def __init__(self, client: SandboxClient, user_id: str, group: bool, out: Any = sys.stdout) -> None:
        self.client = client
        self.user_id = user_id
        self.group = group
        self.out = out
        self.conversation_id: str | None = None
        self.since_id = 0
        self.open_cards: dict[str, int] = {}  # outTrackId → reply id, printed when finished
        self.started = time.time()
        self._stop = threading.Event()

    def say(self, text: str) -> dict[str, str]:
        sent = self.client.send_message(
            text,
            user_id=self.user_id,
            nick=DEMO_NICK if self.user_id == DEMO_USER else self.user_id,
            conversation_type="2" if self.group else "1",
        )
        self.conversation_id = sent["conversationId"]
        return sent

    def _print(self, text: str) -> None:
        print(f"\rbot> {text}\nyou> ", end="", file=self.out, flush=True)

    def poll_once(self) -> None:
        if self.conversation_id is None:
            return
        for reply in self.client.replies(conversation_id=self.conversation_id, since_id=self.since_id):
            self.since_id = max(self.since_id, reply["id"])
            if reply["at"] < self.started:
                continue  # from an earlier session
            if reply["via"] == "card":
                self.open_cards[reply["body"]["outTrackId"]] = reply["id"]
            else:
                self._print(reply["text"] or f"[{reply['msgtype']}]")
        for out_track_id in list(self.open_cards):
            card = self.client.card(out_track_id)
            if card["status"] in ("finished", "failed"):
                del self.open_cards[out_track_id]
                text = "\n".join(card["streams"].values()) or card["cardData"]["cardParamMap"].get("content", "")
                self._print(text + ("" if card["status"] == "finished" else "  [card failed]"))

    def _poll_forever(self) -> None:
        while not self._stop.wait(0.3):
            try:
                self.poll_once()
            except (SandboxError, OSError) as exc:
                print(f"\r(sandbox unreachable: {exc})", file=self.out, flush=True)

    def run(self, lines: Any = sys.stdin) -> None:
        if self.client.state().get("connections", 0) == 0:
            print("(no bot is connected to the sandbox yet; messages wait until it connects)", file=self.out)
        print("Type a message and press Enter; Ctrl-D to quit.", file=self.out)
        poller = threading.Thread(target=self._poll_forever, daemon=True)
        poller.start()
        print("you> ", end="", file=self.out, flush=True)
        try:
            for line in lines:
                if line.strip():
                    self.say(line.strip())
                else:
                    print("you> ", end="", file=self.out, flush=True)
        except KeyboardInterrupt:
            pass
        finally:
            time.sleep(0.5)  # let a reply that is on its way be printed
            self._stop.set()
            poller.join(1)
            print(file=self.out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.chat", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8765", help="base URL of the sandbox")
    parser.add_argument("--user", default=DEMO_USER, help="staff id to chat as")
    parser.add_argument("--group", action="store_true", help="talk in the sandbox group instead of 1:1")
    args = parser.parse_args(argv)
    with SandboxClient(args.url) as client:
        TerminalChat(client, args.user, args.group).run()


if __name__ == "__main__":
    main()
