"""The stub's knobs (per server, per request rule, next-request overrides) and what it recorded."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

ERROR_STATUSES = (400, 401, 403, 404, 408, 429, 500, 502, 503, 504)


@dataclass(frozen=True)
class Behaviour:
    """How the stub answers one request."""

    first_token_delay: float = 0.0  # seconds from request to the first content token
    inter_token_delay: float = 0.0  # seconds between tokens
    tokens: int | None = None  # exact number of content tokens (None: the natural answer)
    error_status: int = 0  # answer with this HTTP error instead (0: no error)
    cut_after: int | None = None  # close the connection abruptly after N tokens
    stall_after: int | None = None  # stop sending after N tokens, keep the connection open
    hang: bool = False  # never answer at all (not even headers)
    answer: str | None = None  # fixed answer text (still marked as the stub)

    def merged(self, changes: dict[str, Any]) -> Behaviour:
        return replace(self, **validate_behaviour(changes))

    def public(self) -> dict[str, Any]:
        return asdict(self)


_FIELDS = {f.name: f for f in fields(Behaviour)}


def validate_behaviour(changes: dict[str, Any]) -> dict[str, Any]:
    """Check a partial Behaviour; raises ValueError naming the bad key."""
    if not isinstance(changes, dict):
        raise ValueError("behaviour must be an object")
    clean: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in _FIELDS:
            raise ValueError(f"unknown behaviour key {key!r}; known: {sorted(_FIELDS)}")
        if key in ("first_token_delay", "inter_token_delay"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a non-negative number of seconds")
            clean[key] = float(value)
        elif key in ("tokens", "cut_after", "stall_after"):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"{key} must be a non-negative integer or null")
            clean[key] = value
        elif key == "error_status":
            if value not in (0, *ERROR_STATUSES):
                raise ValueError(f"error_status must be 0 or one of {ERROR_STATUSES}")
            clean[key] = value
        elif key == "hang":
            if not isinstance(value, bool):
                raise ValueError("hang must be a boolean")
            clean[key] = value
        elif key == "answer":
            if value is not None and not isinstance(value, str):
                raise ValueError("answer must be a string or null")
            clean[key] = value
    return clean


@dataclass
class Rule:
    """Overrides applied when the last user message contains `match` (lets concurrent tests differ)."""

    match: str
    overrides: dict[str, Any]


@dataclass
class StubState:
    """Everything the stub knows; mutated only on the server's event loop."""

    api_key: str = ""
    model: str = "stub-llm"
    defaults: Behaviour = field(default_factory=Behaviour)
    rules: list[Rule] = field(default_factory=list)
    once: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Completions being answered right now, and the most at once since the last reset: what a
    # concurrency limit in front of the model server is checked against.
    in_flight: int = 0
    peak_in_flight: int = 0

    def started(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def ended(self) -> None:
        self.in_flight -= 1

    def configure(self, body: dict[str, Any]) -> None:
        """Apply a POST /stub/config body; flat behaviour keys change the defaults.

        Keys: `defaults` {behaviour}, `rules` [{match, ...behaviour}] (replaces the list),
        `once` [{behaviour}] (appended; each is used by one request, in order), `api_key`,
        `model`, `reset` (true: back to a fresh stub and cleared history first).
        """
        if not isinstance(body, dict):
            raise ValueError("config must be a JSON object")
        unknown = set(body) - set(_FIELDS) - {"defaults", "rules", "once", "api_key", "model", "reset"}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        if body.get("reset"):
            self.reset()
        flat = {k: v for k, v in body.items() if k in _FIELDS}
        defaults = self.defaults.merged({**flat, **body.get("defaults", {})})
        rules = self.rules
        if "rules" in body:
            rules = []
            for raw in body["rules"] or []:
                if not isinstance(raw, dict) or not isinstance(raw.get("match"), str) or not raw["match"]:
                    raise ValueError("each rule needs a non-empty string 'match'")
                overrides = {k: v for k, v in raw.items() if k != "match"}
                rules.append(Rule(raw["match"], validate_behaviour(overrides)))
        once = [validate_behaviour(o) for o in body.get("once", [])]
        for key in ("api_key", "model"):
            if key in body and not isinstance(body[key], str):
                raise ValueError(f"{key} must be a string")
        # Validated everything first, so a bad body changes nothing.
        self.defaults, self.rules = defaults, rules
        self.once.extend(once)
        self.api_key = body.get("api_key", self.api_key)
        self.model = body.get("model", self.model) or "stub-llm"

    def reset(self) -> None:
        self.defaults = Behaviour()
        self.rules = []
        self.once = []
        self.requests = []
        self.peak_in_flight = self.in_flight

    def behaviour_for(self, question: str) -> Behaviour:
        behaviour = self.defaults
        for rule in self.rules:
            if rule.match in question:
                behaviour = behaviour.merged(rule.overrides)
                break
        if self.once:
            behaviour = behaviour.merged(self.once.pop(0))
        return behaviour

    def record(self, entry: dict[str, Any]) -> dict[str, Any]:
        entry = {"id": len(self.requests) + 1, "at": time.time(), "outcome": "pending", **entry}
        self.requests.append(entry)
        return entry

    def public(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "auth_required": bool(self.api_key),
            "defaults": self.defaults.public(),
            "rules": [{"match": r.match, **r.overrides} for r in self.rules],
            "once": list(self.once),
            "in_flight": self.in_flight,
            "peak_in_flight": self.peak_in_flight,
        }
