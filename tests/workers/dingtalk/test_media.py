"""Media: downloadCode → messageFiles/download → bytes within limits → a reference the skill can open."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest

from skills.remote.urlguard import Allowlist
from testkit.envelopes import envelope_from_push
from testkit.personas import alice
from workers.dingtalk.inbound import MediaItem
from workers.dingtalk.media import MediaLimits, fetch
from workers.errors import MediaRejected
from workers.phrases import phrase
from workers.stages.preprocess import preprocess
from workers.state.media_store import MediaStore

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


def preprocessed(server, client, msgtype: str, content: dict, **fields) -> dict:
    pushed = alice.send(client, "", msgtype=msgtype, content=content, **fields)
    payload = preprocess(envelope_from_push(server, pushed["messageId"]), run_id=f"run-{pushed['msgId']}")
    return json.loads(json.dumps(payload.to_dict()))  # the bytes never ride along, only the reference


def test_a_picture_is_stored_and_the_skill_gets_a_reference(dingtalk_sandbox, sandbox_client,
                                                            sandbox_settings, media_root):
    sandbox_client.add_file("pic-1", PNG, content_type="image/png", filename="cat.png")
    payload = preprocessed(dingtalk_sandbox, sandbox_client, "picture",
                           {"downloadCode": "pic-1", "pictureDownloadCode": "pic-1"})
    [ref] = payload["turn"]["attachments"]
    assert ref["kind"] == "image" and ref["content_type"] == "image/png" and ref["size"] == len(PNG)
    assert Path(ref["path"]).read_bytes() == PNG
    assert ref["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert Path(ref["path"]).is_relative_to(media_root)
    assert payload["reply"] is None and payload["turn"]["skill"]  # routed like any message


def test_a_file_keeps_its_name_and_rich_text_keeps_text_and_images(dingtalk_sandbox, sandbox_client,
                                                                    sandbox_settings, media_root):
    sandbox_client.add_file("doc-1", b"%PDF-1.4 tiny", content_type="application/pdf")
    sandbox_client.add_file("img-2", PNG, content_type="image/png")
    file_payload = preprocessed(dingtalk_sandbox, sandbox_client, "file",
                                {"downloadCode": "doc-1", "fileName": "report.pdf", "fileId": "f", "spaceId": "s"})
    assert file_payload["turn"]["attachments"][0]["name"] == "report.pdf"
    assert file_payload["turn"]["attachments"][0]["path"].endswith(".pdf")
    rich = preprocessed(dingtalk_sandbox, sandbox_client, "richText", {"richText": [
        {"text": "what is "}, {"type": "picture", "downloadCode": "img-2"}, {"text": "this?"}]})
    assert rich["turn"]["text"] == "what is this?"
    assert [a["kind"] for a in rich["turn"]["attachments"]] == ["image"]


def test_a_file_over_the_size_limit_gets_a_polite_reply(dingtalk_sandbox, sandbox_client, sandbox_settings,
                                                        media_root, resources):

    resources.set(MEDIA_MAX_BYTES="1000")
    sandbox_client.add_file("big-1", b"x" * 5000, content_type="video/mp4")
    payload = preprocessed(dingtalk_sandbox, sandbox_client, "video",
                           {"downloadCode": "big-1", "duration": "3", "videoType": "mp4"})
    assert payload["reply"]["text"] == phrase("too_large", "zh-CN", limit="1000 B")
    assert payload["turn"]["attachments"] == []
    assert not any(p.is_file() for p in media_root.rglob("*"))  # nothing half-written stays


def test_a_type_outside_the_allowed_list_gets_a_polite_reply(dingtalk_sandbox, sandbox_client,
                                                             sandbox_settings, media_root, resources):

    resources.set(MEDIA_ALLOWED_TYPES="image/,application/pdf")
    sandbox_client.add_file("exe-1", b"MZ...", content_type="application/x-msdownload")
    payload = preprocessed(dingtalk_sandbox, sandbox_client, "file", {"downloadCode": "exe-1", "fileName": "a.exe"})
    assert "application/x-msdownload" in payload["reply"]["text"]


def test_an_expired_download_code_gets_a_polite_reply(dingtalk_sandbox, sandbox_client, sandbox_settings,
                                                      media_root):
    payload = preprocessed(dingtalk_sandbox, sandbox_client, "picture", {"downloadCode": "gone"})
    assert payload["reply"]["text"] == phrase("unavailable", "zh-CN")


class _Chunked(http.server.BaseHTTPRequestHandler):
    """Answers without Content-Length (HTTP/1.0, close): only counting the bytes finds the size."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        for _ in range(50):
            self.wfile.write(b"y" * 1000)

    def log_message(self, *args: object) -> None:
        pass


class _Resolver:
    """A DingTalkAPI whose downloadCode resolves to a given URL (the download itself is real HTTP)."""

    def __init__(self, url: str, http) -> None:
        self.url, self.http = url, http

    def download_url(self, robot_code: str, code: str) -> str:
        return self.url


def test_a_stream_without_a_length_is_cut_at_the_limit(sandbox_settings, tmp_path, resources):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Chunked)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = _Resolver(f"http://127.0.0.1:{server.server_address[1]}/f", resources.current.dingtalk.http)
        store = MediaStore(tmp_path)
        with pytest.raises(MediaRejected) as refused:
            fetch(api, store, MediaLimits(10_000, ("image/",), Allowlist.parse(["127.0.0.1"])), MediaItem("image", "c"),  # type: ignore[arg-type]
                  robot_code="r", tenant_id="t", user_id="u", msg_id="m", index=0)
        assert refused.value.reason == "too_large"
        assert not any(p.is_file() for p in tmp_path.rglob("*"))
    finally:
        server.shutdown()
