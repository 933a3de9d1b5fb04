"""An echo bot on the official DingTalk Stream SDK (PyPI dingtalk-stream), pointed at the sandbox by
DINGTALK_OPENAPI_ENDPOINT; run as a subprocess by test_official_sdk.py."""

from __future__ import annotations

import sys

import dingtalk_stream
from dingtalk_stream import AckMessage


class Echo(dingtalk_stream.ChatbotHandler):
    async def process(self, callback):
        message = dingtalk_stream.ChatbotMessage.from_dict(callback.data)
        self.reply_text("echo: " + message.text.content.strip(), message)
        return AckMessage.STATUS_OK, "OK"


def main() -> None:
    credential = dingtalk_stream.Credential(sys.argv[1], sys.argv[2])
    client = dingtalk_stream.DingTalkStreamClient(credential)
    client.register_callback_handler(dingtalk_stream.ChatbotMessage.TOPIC, Echo())
    client.start_forever()


if __name__ == "__main__":
    main()
