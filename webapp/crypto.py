"""Field encryption for secrets stored in the database (Fernet, keyed by FIELD_ENCRYPTION_KEY)."""

from __future__ import annotations

import base64
import hashlib
import logging
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken

from conf.settings import get_settings

log = logging.getLogger(__name__)


class DecryptionError(ValueError):
    """A stored secret cannot be decrypted (wrong or rotated FIELD_ENCRYPTION_KEY, or tampering)."""


def derive_dev_key(secret: str) -> bytes:
    """A Fernet key derived from DJANGO_SECRET_KEY: stable per deployment, good enough for development."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"dtbot-field-key:{secret}".encode()).digest())


@lru_cache(maxsize=4)
def _fernet(configured: str, secret: str) -> Fernet:
    if configured:
        try:
            return Fernet(configured.encode())
        except ValueError as exc:
            raise ValueError("FIELD_ENCRYPTION_KEY must be a Fernet key (urlsafe base64 of 32 bytes)") from exc
    log.warning("FIELD_ENCRYPTION_KEY is not set: deriving the field key from DJANGO_SECRET_KEY "
                "(set FIELD_ENCRYPTION_KEY in production)")
    return Fernet(derive_dev_key(secret))


def fernet() -> Fernet:
    settings = get_settings()
    return _fernet(settings.field_encryption_key, settings.django_secret_key)


def encrypt_text(plain: str) -> str:
    """The ciphertext of `plain` ("" stays "": no secret set)."""
    return fernet().encrypt(plain.encode("utf-8")).decode("ascii") if plain else ""


def decrypt_text(token: str) -> str:
    if not token:
        return ""
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise DecryptionError("cannot decrypt a stored secret: was FIELD_ENCRYPTION_KEY changed?") from exc
