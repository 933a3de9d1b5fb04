"""Hostile media: download URLs to non-public addresses, path traversal in file names, archives and octet-stream."""

from __future__ import annotations

import pytest

from conf.settings import DEFAULT_MEDIA_TYPES
from skills.remote.urlguard import Allowlist
from workers.dingtalk.inbound import MediaItem
from workers.dingtalk.media import MediaLimits, effective_type, fetch
from workers.errors import MediaRejected
from workers.state.media_store import MediaStore, safe_name


class _API:
    """Only what fetch asks before any download: where the file is."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = None  # never reached: the URL is refused first

    def download_url(self, robot_code: str, download_code: str) -> str:
        return self.url


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/iam", "http://127.0.0.1:6379/",
                                 "http://10.0.0.8/internal.pdf", "file:///etc/passwd"])
def test_a_download_url_to_a_non_public_address_is_refused_politely(tmp_path, url):
    limits = MediaLimits(1 << 20, DEFAULT_MEDIA_TYPES, Allowlist())
    with pytest.raises(MediaRejected) as err:
        fetch(_API(url), MediaStore(tmp_path), limits, MediaItem("file", "code-1", "a.pdf"),  # type: ignore[arg-type]
              robot_code="rc", tenant_id="t", user_id="u", msg_id="m", index=0)
    assert err.value.reason == "unavailable" and "refused" in str(err.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(("content_type", "name", "allowed"), [
    ("application/octet-stream", "report.docx", True),  # DingTalk storage says octet-stream: judged by name
    ("application/octet-stream", "slides.pdf", True),
    ("application/octet-stream", "backup.zip", False),
    ("application/octet-stream", "tools.tar.gz", False),
    ("application/octet-stream", "setup.exe", False),
    ("application/octet-stream", "noextension", False),
    ("application/zip", "x.zip", False), ("application/x-7z-compressed", "a.7z", False),
    ("application/x-rar-compressed", "a.rar", False), ("text/html", "page.html", False),
    ("image/png", "cat.png", True), ("text/plain; charset=utf-8", "notes.txt", True),
])
def test_archives_and_octet_stream_are_out_of_the_default_allow_list(content_type, name, allowed):
    assert MediaLimits(1, DEFAULT_MEDIA_TYPES).allows(effective_type(content_type, name)) is allowed


@pytest.mark.parametrize("name", ["../../../etc/passwd", "..\\..\\windows\\win.ini", "/abs/path/evil.png",
                                  "evil.json", "photo\u202egnp.exe", ".bashrc", "a/../../b.pdf", "\x00\n.pdf"])
def test_a_file_name_cannot_leave_the_users_folder_or_clobber_a_sidecar(tmp_path, name):
    store = MediaStore(tmp_path / "media")
    ref = store.save([b"data"], tenant_id="t", user_id="u", msg_id="m1", index=0, kind="file", name=name,
                     content_type="application/pdf")
    folder = store.user_dir("t", "u")
    path = (tmp_path / "media" / ref["ref"]).resolve()
    assert path.parent == folder.resolve() and path.read_bytes() == b"data"
    assert "/" not in ref["name"] and "\\" not in ref["name"] and "\u202e" not in ref["name"]
    assert not ref["name"].startswith(".")
    assert [s["sha256"] for s in store.list_user("t", "u")] == [ref["sha256"]]  # the sidecar is intact
    assert {p.name for p in tmp_path.rglob("*") if p.is_file()} <= {path.name, path.with_suffix(".json").name}


def test_safe_name_keeps_ordinary_names():
    assert safe_name("年度报告 2026.pdf") == "年度报告 2026.pdf" and safe_name("C:\\Users\\a\\x.docx") == "x.docx"
