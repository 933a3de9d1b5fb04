"""The inbound table: every DingTalk message shape of the protocol reference (§4) → text, media, params."""

from __future__ import annotations

import pytest

from testkit.envelopes import robot_message
from testkit.personas import bob
from workers.dingtalk.inbound import CONVERTERS, MediaItem, convert

BOT = "$:LWCP_v1:$bot"


def message(msgtype: str, content: dict | None = None, text: dict | None = None, **extra) -> dict:
    data = robot_message(msgtype=msgtype, extra=extra)
    data["chatbotUserId"] = BOT
    if content is not None:
        data["content"] = content
    if text is not None:
        data["text"] = text
    return data


CASES = [
    ("text", message("text", text={"content": "hello"}), "hello", ()),
    ("richText", message("richText", {"richText": [
        {"text": "look at "}, {"type": "picture", "downloadCode": "dc-1", "pictureDownloadCode": "pdc-1"},
        {"text": "this"}]}), "look at this", (MediaItem("image", "dc-1"),)),
    ("richText (older richTextList)", message("richText", {"richText": {"richTextList": [
        {"text": "old "}, {"downloadCode": "dc-2"}, {"text": "style"}]}}), "old style",
     (MediaItem("image", "dc-2"),)),
    ("picture", message("picture", {"downloadCode": "dc-3", "pictureDownloadCode": "pdc-3"}), "",
     (MediaItem("image", "dc-3"),)),
    ("audio with recognition", message("audio", {"duration": "4000", "downloadCode": "dc-4",
                                                 "recognition": "明天开会"}), "明天开会", ()),
    ("audio without recognition", message("audio", {"duration": "4000", "downloadCode": "dc-5"}), "",
     (MediaItem("audio", "dc-5", "", {"duration": "4000"}),)),
    ("video", message("video", {"duration": "9", "downloadCode": "dc-6", "videoType": "mp4"}), "",
     (MediaItem("video", "dc-6", "", {"duration": "9", "video_type": "mp4"}),)),
    ("file", message("file", {"spaceId": "s1", "fileName": "report.pdf", "downloadCode": "dc-7",
                              "fileId": "f1"}), "",
     (MediaItem("file", "dc-7", "report.pdf", {"file_id": "f1", "space_id": "s1"}),)),
]


@pytest.mark.parametrize("name,data,text,media", CASES, ids=[c[0] for c in CASES])
def test_each_message_type_becomes_text_and_media(name, data, text, media):
    inbound = convert(data)
    assert inbound.supported
    assert inbound.text == text
    assert inbound.media == media


def test_content_sent_as_a_json_string_is_read_too():
    data = message("picture")
    data["content"] = '{"downloadCode": "dc-s"}'
    assert convert(data).media == (MediaItem("image", "dc-s"),)


def test_the_table_covers_every_type_of_the_protocol_reference():
    assert {"text", "richText", "picture", "audio", "video", "file"} <= set(CONVERTERS)


@pytest.mark.parametrize("msgtype", ["location", "markdown", "", "unknownFutureType"])
def test_unknown_types_are_unsupported_not_errors(msgtype):
    assert convert(message(msgtype, {"whatever": 1})).supported is False


def test_a_shared_card_becomes_its_link():
    inbound = convert(message("interactiveCard", {"biz_custom_action_url": "https://doc.example/x"}))
    assert inbound.text == "https://doc.example/x"
    assert inbound.params["shared_link"] == "https://doc.example/x"


def test_a_quoted_reply_carries_the_quoted_message():
    data = message("text", text={"content": "what about this?", "isReplyMsg": True, "repliedMsg": {
        "msgId": "msgQ==", "msgType": "text", "senderId": "$:LWCP_v1:$x", "content": {"text": "the plan"}}})
    inbound = convert(data)
    assert inbound.text == "what about this?"
    assert inbound.params["quoted"] == {"msg_id": "msgQ==", "msgtype": "text",
                                        "sender_id": "$:LWCP_v1:$x", "text": "the plan"}


def test_in_a_group_the_bot_mention_goes_and_other_mentions_stay():
    data = message("text", text={"content": " @Helper ask @bob about it"}, conversationType="2",
                   isInAtList=True,
                   atUsers=[{"dingtalkId": BOT}, {"dingtalkId": bob.sender_id, "staffId": bob.staff_id}])
    inbound = convert(data, robot_name="Helper")
    assert inbound.text == "ask @bob about it"
    assert inbound.params["mentions"] == [bob.staff_id]
    assert inbound.params["bot_mentioned"] is True
    assert inbound.params["type"] == "message"


def test_a_private_chat_has_no_group_params():
    inbound = convert(message("text", text={"content": "hi"}, conversationType="1"))
    assert inbound.params == {}
