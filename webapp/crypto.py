"""Field encryption for secrets stored in the database: MultiFernet over FIELD_ENCRYPTION_KEYS.

The first key encrypts, every listed key decrypts, so a new key is put first, `rotate_keys`
re-encrypts what is stored, and only then the old key is dropped (no downtime in between).
Secret fields of a skill Config (repr=False) are stored inside SkillSetting.config as
"fernet:<token>" strings (`seal_config` / `open_config`); remote-skill tokens are plain tokens.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from conf.settings import get_settings

log = logging.getLogger(__name__)

# Marks an encrypted value inside a JSON config (a string, so the config keeps its shape).
SEALED_PREFIX = "fernet:"
# What forms and audit rows show instead of a secret; saving it back keeps the stored value.
MASK = "***"


class DecryptionError(ValueError):
    """A stored secret cannot be decrypted (a key dropped before rotate_keys ran, or tampering)."""


def derive_dev_key(secret: str) -> bytes:
    """A Fernet key derived from DJANGO_SECRET_KEY: stable per deployment, good enough for development."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"dtbot-field-key:{secret}".encode()).digest())


@lru_cache(maxsize=4)
def _fernet(configured: tuple[str, ...], secret: str) -> MultiFernet:
    if configured:
        keys = []
        for i, key in enumerate(configured):
            try:
                keys.append(Fernet(key.encode()))
            except ValueError as exc:
                raise ValueError(f"FIELD_ENCRYPTION_KEYS[{i}] must be a Fernet key "
                                 "(urlsafe base64 of 32 bytes)") from exc
        return MultiFernet(keys)
    log.warning("FIELD_ENCRYPTION_KEYS is not set: deriving the field key from DJANGO_SECRET_KEY "
                "(set FIELD_ENCRYPTION_KEYS in production)")
    return MultiFernet([Fernet(derive_dev_key(secret))])


def fernet() -> MultiFernet:
    settings = get_settings()
    return _fernet(tuple(settings.field_encryption_keys), settings.django_secret_key)


def encrypt_text(plain: str) -> str:
    """The ciphertext of `plain` under the newest key ("" stays "": no secret set)."""
    return fernet().encrypt(plain.encode("utf-8")).decode("ascii") if plain else ""


def _under_keys(token: str, use: Callable[[MultiFernet, bytes], bytes], failure: str) -> str:
    """`use` applied to a stored token ("" stays ""); DecryptionError(`failure`) if no listed key opens it."""
    if not token:
        return ""
    try:
        return use(fernet(), token.encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise DecryptionError(failure) from exc


def decrypt_text(token: str) -> str:
    return _under_keys(token, MultiFernet.decrypt,
                       "cannot decrypt a stored secret: is its key still in FIELD_ENCRYPTION_KEYS?")


def rotate_text(token: str) -> str:
    """`token` re-encrypted under the newest key (DecryptionError if no listed key opens it)."""
    return _under_keys(token, MultiFernet.rotate,
                       "cannot re-encrypt a stored secret: no key in FIELD_ENCRYPTION_KEYS opens it")


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def seal_config(config: Mapping[str, Any], secret_keys: Collection[str]) -> dict[str, Any]:
    """The config as stored: each non-empty secret field encrypted (already sealed ones kept)."""
    out = dict(config)
    for key in secret_keys:
        value = out.get(key)
        if isinstance(value, str) and value and not is_sealed(value):
            out[key] = SEALED_PREFIX + encrypt_text(value)
    return out


def open_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with every sealed value decrypted (a plaintext value from before sealing passes)."""
    return {k: decrypt_text(v[len(SEALED_PREFIX):]) if is_sealed(v) else v for k, v in config.items()}


def rotate_config(config: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The config with every sealed value under the newest key, and how many there were."""
    out, n = {}, 0
    for k, v in config.items():
        if is_sealed(v):
            out[k] = SEALED_PREFIX + rotate_text(v[len(SEALED_PREFIX):])
            n += 1
        else:
            out[k] = v
    return out, n
