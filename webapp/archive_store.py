"""The audit archive's object store: S3-compatible (MinIO, AWS S3) through boto3, configured from the environment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conf.settings import Settings, get_settings


class ArchiveError(RuntimeError):
    """The archive could not be written, read or trusted."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class ArchiveStore:
    """One bucket and key prefix; every write is read back and compared by SHA-256."""

    client: Any
    bucket: str
    prefix: str

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ArchiveStore | None:
        """The configured store, or None when AUDIT_ARCHIVE_BUCKET is empty (archiving off)."""
        s = settings or get_settings()
        if not s.audit_archive_bucket:
            return None
        client = boto3.client(
            "s3",
            endpoint_url=s.audit_archive_endpoint_url or None,
            region_name=s.audit_archive_region or None,
            aws_access_key_id=s.audit_archive_access_key_id or None,
            aws_secret_access_key=s.audit_archive_secret_access_key or None,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"},
                          s3={"addressing_style": "path"}),
        )
        prefix = s.audit_archive_prefix.strip("/")
        return cls(client, s.audit_archive_bucket, f"{prefix}/" if prefix else "")

    def key(self, name: str) -> str:
        return self.prefix + name

    def put_verified(self, name: str, data: bytes, content_type: str) -> str:
        """Write `data` under `name`, read it back and compare; returns its SHA-256."""
        digest = sha256_hex(data)
        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(name), Body=data, ContentType=content_type,
                                   Metadata={"sha256": digest})
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"cannot write {self.key(name)}: {exc}") from exc
        back = self.get(name)
        if sha256_hex(back) != digest:
            raise ArchiveError(f"{self.key(name)} reads back different from what was written")
        return digest

    def get(self, name: str) -> bytes:
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"cannot read {self.key(name)}: {exc}") from exc
        return body

    def names(self, under: str) -> list[str]:
        """Object names (without the prefix) under `under`, sorted."""
        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.key(under))
            for page in pages:
                found.extend(obj["Key"][len(self.prefix):] for obj in page.get("Contents", ()))
        except (BotoCoreError, ClientError) as exc:
            raise ArchiveError(f"cannot list {self.key(under)}: {exc}") from exc
        return sorted(found)

    def delete(self, names: list[str]) -> None:
        for start in range(0, len(names), 1000):
            batch = [{"Key": self.key(n)} for n in names[start:start + 1000]]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (BotoCoreError, ClientError) as exc:
                raise ArchiveError(f"cannot delete expired archive objects: {exc}") from exc
