"""Where recap pages are written: a folder the app serves under `/recaps/`, or an S3-compatible bucket.

`STAGEVOTE_RECAP_STORAGE` names it: `file://var/recaps` (relative) or `file:///srv/recaps` (absolute), or
`s3://bucket/prefix`. S3 is written with boto3 (`STAGEVOTE_S3_ENDPOINT_URL` for any S3-compatible store;
credentials from `STAGEVOTE_S3_ACCESS_KEY_ID`/`_SECRET_ACCESS_KEY`, else boto3's usual chain), as
`text/html; charset=utf-8`. The bucket is expected to be readable by the public (a bucket policy) or
fronted by a CDN: no object ACL is sent, since buckets that enforce their owner refuse ACLs. The page's
URL is `STAGEVOTE_RECAP_PUBLIC_URL/<key>` when set, else the bucket's own address.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stagevote.config import ConfigurationError, Settings

NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,120}\.html")
CACHE_CONTROL = "public, max-age=300"


class RecapStorage(Protocol):
    async def put(self, name: str, page: bytes) -> str:
        """Write the page as `name`; its public URL."""
        ...

    def local_path(self, name: str) -> Path | None:
        """The file a page of this name is served from, when this storage is a folder."""
        ...


@dataclass(frozen=True)
class FolderStorage:
    """Pages in a folder, served by the app at `{PUBLIC_URL}/recaps/<name>`."""

    root: Path
    public_url: str

    async def put(self, name: str, page: bytes) -> str:
        await asyncio.to_thread(self._write, name, page)
        return f"{self.public_url}/recaps/{name}"

    def _write(self, name: str, page: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        target = self.root / name
        partial = target.with_name(f".{name}.partial")
        partial.write_bytes(page)
        partial.replace(target)  # readers see the old page or the new one, never half of one

    def local_path(self, name: str) -> Path | None:
        if NAME.fullmatch(name) is None:
            return None
        return self.root / name


@dataclass(frozen=True)
class S3Storage:
    """Pages as objects of an S3 bucket (or any S3-compatible store)."""

    bucket: str
    prefix: str
    settings: Settings

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def url(self, name: str) -> str:
        key = self.key(name)
        settings = self.settings
        if settings.recap_public_url:
            return f"{settings.recap_public_url.rstrip('/')}/{key}"
        if settings.s3_endpoint_url:
            return f"{settings.s3_endpoint_url.rstrip('/')}/{self.bucket}/{key}"
        return f"https://{self.bucket}.s3.{settings.s3_region}.amazonaws.com/{key}"

    async def put(self, name: str, page: bytes) -> str:
        await asyncio.to_thread(self._put, name, page)
        return self.url(name)

    def _put(self, name: str, page: bytes) -> None:
        # imported here: boto3 costs ~20 MB of memory, which a process that never writes to S3 need not hold
        import boto3  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415

        settings = self.settings
        secret = settings.s3_secret_access_key
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=secret and secret.get_secret_value(),
            config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"}),
        )
        try:
            client.put_object(
                Bucket=self.bucket,
                Key=self.key(name),
                Body=page,
                ContentType="text/html; charset=utf-8",
                CacheControl=CACHE_CONTROL,
            )
        finally:
            client.close()

    def local_path(self, name: str) -> Path | None:
        return None


def storage_for(settings: Settings) -> RecapStorage:
    """The storage `STAGEVOTE_RECAP_STORAGE` names."""
    scheme, _, rest = settings.recap_storage.partition("://")
    if scheme == "file" and rest:
        return FolderStorage(Path(rest), settings.public_url)
    if scheme == "s3" and rest:
        bucket, _, prefix = rest.partition("/")
        return S3Storage(bucket, prefix.strip("/"), settings)
    raise ConfigurationError(
        f"STAGEVOTE_RECAP_STORAGE={settings.recap_storage!r}: use file://<folder> or s3://<bucket>/<prefix>."
    )
