"""Outbound URL checks: public addresses only unless allow-listed, names resolved first, the checked address pinned."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from skills.api import SkillError
from skills.remote.skill import RemoteSkill, RemoteSkillConfig, reset_breakers
from skills.remote.urlguard import Allowlist, UrlRefused, check_url
from testkit.personas import alice

NONE = Allowlist()


def resolver(table: dict[str, list[str]]):
    return lambda host, port: table[host]


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/", "http://localhost/", "http://[::1]/", "http://169.254.169.254/latest/meta-data/",
    "http://10.1.2.3/", "http://172.16.0.9/", "http://192.168.1.1/", "http://100.64.0.1/", "http://0.0.0.0/",
    "http://[::ffff:127.0.0.1]/", "http://[fe80::1]/", "http://224.0.0.1/", "http://metadata.internal/",
    "http://2130706433/",  # 127.0.0.1 as one number: resolved by the system resolver to loopback
])
def test_non_public_addresses_are_refused(url):
    table = {"localhost": ["127.0.0.1", "::1"], "metadata.internal": ["169.254.169.254"], "2130706433": ["127.0.0.1"]}
    with pytest.raises(UrlRefused, match="loopback, link-local, private or reserved"):
        check_url(url, NONE, resolve=resolver(table))


@pytest.mark.parametrize(("url", "why"), [
    ("file:///etc/passwd", "only http"), ("gopher://x/", "only http"), ("http:///x", "only http"),
    ("https://user:pw@api.example/", "credentials"),
])
def test_other_schemes_and_credentials_are_refused(url, why):
    with pytest.raises(UrlRefused, match=why):
        check_url(url, NONE, resolve=resolver({"api.example": ["93.184.216.34"]}))


def test_a_name_is_refused_when_any_of_its_addresses_is_private():
    with pytest.raises(UrlRefused, match=r"10\.0\.0\.7"):
        check_url("https://crm.example/", NONE, resolve=resolver({"crm.example": ["93.184.216.34", "10.0.0.7"]}))


def test_the_allowlist_admits_named_hosts_and_networks_only():
    allow = Allowlist.parse(["127.0.0.1", "10.20.0.0/16", "CRM.corp"])
    table = {"crm.corp": ["10.9.9.9"], "hr.corp": ["10.9.9.9"]}
    assert check_url("http://127.0.0.1:9/x", allow).addresses == ("127.0.0.1",)
    assert check_url("http://10.20.3.4/", allow).addresses == ("10.20.3.4",)
    assert check_url("http://crm.corp/", allow, resolve=resolver(table)).addresses == ("10.9.9.9",)
    for url in ("http://10.21.0.1/", "http://hr.corp/", "http://169.254.169.254/"):
        with pytest.raises(UrlRefused):
            check_url(url, allow, resolve=resolver(table))


def test_public_urls_pass_and_are_pinned_to_the_checked_address():
    checked = check_url("https://api.example:8443/v1?q=1", NONE, resolve=resolver({"api.example": ["93.184.216.34"]}))
    url, headers, extensions = checked.pinned()
    assert url == "https://93.184.216.34:8443/v1?q=1"
    assert headers == {"Host": "api.example:8443"} and extensions == {"sni_hostname": "api.example"}


def test_a_bearer_token_needs_https_in_production():
    r = resolver({"api.example": ["93.184.216.34"]})
    with pytest.raises(UrlRefused, match="https"):
        check_url("http://api.example/", NONE, with_token=True, require_https_for_token=True, resolve=r)
    check_url("https://api.example/", NONE, with_token=True, require_https_for_token=True, resolve=r)
    check_url("http://api.example/", NONE, with_token=True, resolve=r)  # development: allowed


class _Echo(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        _Echo.seen.append(self.headers.get("host") or "")
        body = json.dumps({"text": "pong"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def echo_port():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    reset_breakers()
    _Echo.seen.clear()
    yield server.server_address[1]
    server.shutdown()


@pytest.mark.integration  # a real HTTP server on loopback
def test_a_remote_skill_is_refused_politely_unless_allowlisted_and_a_rebinding_name_is_caught(echo_port):
    url = f"http://crm.test:{echo_port}/"
    answers = iter([["93.184.216.34"], ["127.0.0.1"]])  # public at the first look, loopback at the second
    rebinding = RemoteSkill(RemoteSkillConfig(name="crm", url=url, retries=0),
                            resolve=lambda host, port: next(answers))
    with pytest.raises(SkillError) as err:
        rebinding.execute(alice.turn("hi"))
    assert "crm" in err.value.user_message and not _Echo.seen  # never reached the loopback server

    refused = RemoteSkill(RemoteSkillConfig(name="crm", url=f"http://127.0.0.1:{echo_port}/", retries=0))
    with pytest.raises(SkillError, match="URL refused"):
        refused.execute(alice.turn("hi"))
    assert not _Echo.seen

    allowed = RemoteSkill(RemoteSkillConfig(name="crm", url=url, allowlist=("127.0.0.1",), retries=0),
                          resolve=lambda host, port: ["127.0.0.1"])
    assert allowed.execute(alice.turn("hi")).text == "pong"
    assert _Echo.seen == [f"crm.test:{echo_port}"]  # sent to the checked address, under its name
