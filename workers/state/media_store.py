"""Media store on disk (var/media): one folder per tenant and user, a JSON sidecar per file.

Why disk and not PostgreSQL large objects: the bytes never pass through the broker or Redis, a
skill (which may not import Django) opens a plain path, backups of the database stay small, and
per-user export and erasure are one folder. Several hosts share MEDIA_ROOT as a volume.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent

EXTENSIONS = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
    "audio/amr": ".amr", "audio/mpeg": ".mp3", "audio/ogg": ".ogg", "video/mp4": ".mp4",
    "application/pdf": ".pdf", "text/plain": ".txt",
}


_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")
_RESERVED_SUFFIXES = frozenset({".json"})  # the sidecars' own


def safe_name(name: str) -> str:
    """The file name a user sent, as a plain name: no folders (`../`, `C:\\`, `/abs`), no control,
    zero-width or bidi characters (`evil\u202egpj.exe`), no leading dots, at most 200 characters."""
    base = re.split(r"[/\\]", str(name or ""))[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch) not in ("Cc", "Cf"))
    return base.strip().lstrip(".").strip()[:200]


def safe_suffix(name: str, content_type: str) -> str:
    """The stored file's extension: the name's when it is plain (`.pdf`), else the type's."""
    suffix = Path(safe_name(name)).suffix.lower()
    if _SUFFIX.fullmatch(suffix) and suffix not in _RESERVED_SUFFIXES:
        return suffix
    return EXTENSIONS.get(content_type.split(";")[0].strip(), "")


def _key(*parts: str, size: int = 24) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:size]


class MediaStore:
    """Files users sent, addressed by reference `tenant_key/user_key/file`."""

    def __init__(self, root: str | Path) -> None:
        root = Path(root)
        self.root = root if root.is_absolute() else ROOT / root

    def user_dir(self, tenant_id: str, user_id: str) -> Path:
        """All files of one user of one tenant (what export and erasure look at)."""
        return self.root / _key("tenant", tenant_id, size=16) / _key("user", tenant_id, user_id)

    def save(
        self,
        chunks: Iterable[bytes],
        *,
        tenant_id: str,
        user_id: str,
        msg_id: str,
        index: int,
        kind: str,
        name: str,
        content_type: str,
    ) -> dict[str, Any]:
        """Write the bytes (atomically: temp file, then rename) and return the attachment reference."""
        folder = self.user_dir(tenant_id, user_id)
        folder.mkdir(parents=True, exist_ok=True)
        # The stored path is ours (hashes); the user's file name only lends a checked extension.
        name = safe_name(name)
        suffix = safe_suffix(name, content_type)
        stem = f"{_key('msg', msg_id)}-{index}"
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            final = folder / f"{stem}{suffix}"
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        ref = {
            "kind": kind,
            "ref": str(final.relative_to(self.root)),
            "path": str(final),
            "name": name or final.name,
            "content_type": content_type,
            "size": size,
            "sha256": digest.hexdigest(),
        }
        sidecar = {**ref, "msg_id": msg_id, "tenant_id": tenant_id, "user_id": user_id,
                   "stored_at": time.time()}
        (folder / f"{stem}.json").write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
        return ref

    def list_user(self, tenant_id: str, user_id: str) -> list[dict[str, Any]]:
        """The sidecars of every file of this user."""
        folder = self.user_dir(tenant_id, user_id)
        if not folder.is_dir():
            return []
        items = []
        for sidecar in sorted(folder.glob("*.json")):
            try:
                items.append(json.loads(sidecar.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                items.append({"sidecar": sidecar.name, "error": "unreadable"})
        return items

    def erase_user(self, tenant_id: str, user_id: str) -> int:
        """Delete every file of this user; returns how many files (sidecars excluded) went."""
        folder = self.user_dir(tenant_id, user_id)
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.iterdir() if p.suffix != ".json" and not p.name.startswith(".part-"))
        shutil.rmtree(folder)
        return count

    def purge_older_than(self, cutoff: float) -> int:
        """Delete files (with their sidecars) stored before `cutoff` (epoch s); returns how many files."""
        if not self.root.is_dir():
            return 0
        removed = 0
        for path in self.root.glob("*/*/*"):
            # Sidecars go with their file; a file's mtime is when it was stored (written once).
            if path.suffix == ".json" or not path.is_file():
                continue
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # another worker's sweep took it
            if not path.name.startswith(".part-"):
                removed += 1
                path.with_suffix(".json").unlink(missing_ok=True)
        return removed
