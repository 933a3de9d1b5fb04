"""Password complexity for operator accounts: characters from at least three of four classes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


class ComplexityValidator:
    """At least `classes` of: lower-case letters, upper-case letters, digits, other characters
    (等保2.0 身份鉴别: passwords of a required complexity; length is MinimumLengthValidator's job)."""

    def __init__(self, classes: int = 3) -> None:
        self.classes = classes

    def validate(self, password: str, user: Any = None) -> None:
        found = sum((
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        ))
        if found < self.classes:
            raise ValidationError(
                "This password needs characters of at least %(classes)d kinds: lower-case, upper-case, "
                "digits, symbols.", code="password_too_simple", params={"classes": self.classes})

    def get_help_text(self) -> str:
        return (f"Your password must mix at least {self.classes} of: lower-case letters, upper-case "
                "letters, digits and symbols.")
