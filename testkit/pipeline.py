"""`run_pipeline(text, user=...) -> replies` through the real chain: sandbox, listener, Celery workers, DB, Redis."""

from __future__ import annotations

import time
from typing import Any

from sandbox.client import SandboxClient
from sandbox.dingtalk.messages import corp_id, sender_id
from testkit.personas import ALICE, Persona
from testkit.stack import SANDBOX_CLIENT_ID, Stack

# The tenant id the pipeline sees for sandbox messages (the sandbox's corp id).
SANDBOX_TENANT = corp_id(SANDBOX_CLIENT_ID)


class Bot:
    """A whole bot started on a Stack; talk to it as a persona and get its replies back."""

    def __init__(self, stack: Stack, **env: str) -> None:
        self.stack = stack
        self.env = env  # extra environment of the workers (e.g. SETTINGS_CHECK_SECONDS)
        self.client: SandboxClient | None = None
        self._prepared: set[str] = set()

    def start(self, *, skills_pool: str = "threads", skills_concurrency: int = 4) -> Bot:
        """Sandbox, pipeline worker, skills worker and listener; returns once the listener is connected."""
        env = self.env
        self.stack.start_sandbox(redeliver_after=60)
        self.stack.start_pipeline_worker(concurrency=4, **env)
        self.stack.start_skills_worker(concurrency=skills_concurrency, pool=skills_pool, **env)
        self.stack.start_listener()
        self.client = SandboxClient(self.stack.sandbox_url)
        self.client.wait_for_state(connections=1, timeout=30)
        return self

    def prepare(self, persona: Persona) -> None:
        """Create the persona's profile as an administrator would have (department, roles, locale)."""
        if persona.key in self._prepared:
            return
        from webapp.models import UserProfile  # the test process's Django (pytest-django)

        lookup: dict[str, Any] = {"tenant_id": SANDBOX_TENANT, "staff_id": persona.staff_id}
        if not persona.in_org:
            lookup["sender_id"] = sender_id(persona.key)
        UserProfile.objects.update_or_create(**lookup, defaults={"nick": persona.nick, **persona.profile_fields()})
        self._prepared.add(persona.key)

    def send(self, text: str, user: Persona = ALICE, **fields: Any) -> dict[str, str]:
        assert self.client is not None, "start() the bot first"
        self.prepare(user)
        return self.client.send_message(text, **user.sandbox_fields(), **fields)

    def replies_to(self, msg_id: str, n: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """The bot's replies to one message (waits for `n`, then briefly for strays)."""
        assert self.client is not None
        found = self.client.wait_for_replies(n, timeout=timeout, msg_id=msg_id)
        time.sleep(0.3)
        return self.client.replies(msg_id=msg_id) or found

    def run_pipeline(self, text: str, user: Persona = ALICE, *, timeout: float = 30.0, n: int = 1,
                     **fields: Any) -> list[dict[str, Any]]:
        """Send `text` as `user` and return the replies ({"text", "msgtype", "via", ...})."""
        sent = self.send(text, user, **fields)
        return self.replies_to(sent["msgId"], n=n, timeout=timeout)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
