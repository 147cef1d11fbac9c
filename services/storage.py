"""Object storage behind one small interface: a local directory (the embedded default) or any S3 endpoint.

Keys are relative, slash-separated paths (``inputs/<sha256>.jpg``, ``results/<job>/result.png``; see
``shared.jobs``). Both implementations raise ``NotFound`` for a missing key and ``Unavailable`` (code
``storage_unavailable``) when the backend cannot be reached, so callers never see boto3 or OS exceptions.
"""

from __future__ import annotations

import abc
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from services.atomic import write_atomically
from shared.errors import NotFound, Unavailable
from shared.settings import Settings

STREAM_CHUNK_BYTES = 64 * 1024
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


def check_key(key: str) -> str:
    """Refuse keys that could escape the storage root (``..``, absolute paths) or need escaping."""
    if not _KEY_PATTERN.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"invalid storage key {key!r}: expected slash-separated names of [A-Za-z0-9._-]")
    return key


class Storage(abc.ABC):
    """What the API and the worker need from object storage."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The object's bytes; ``NotFound`` if there is none."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing key is not an error."""

    @abc.abstractmethod
    def open_stream(self, key: str) -> Iterator[bytes]:
        """Chunks of the object; ``NotFound`` is raised by this call, before the first chunk."""

    @abc.abstractmethod
    def presigned_url(self, key: str, ttl_s: int) -> str | None:
        """A short-lived URL clients can fetch directly, or None where the backend has no such thing (local)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise ``Unavailable`` (naming the storage) unless the backend is reachable and writable."""

    @abc.abstractmethod
    def list_keys(self, prefix: str = "") -> list[str]:
        """Sorted keys that start with ``prefix``."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the objects live, for messages (``file:///...`` or ``s3://bucket``)."""


class LocalStorage(Storage):
    """A directory; writes are atomic (temporary file in the same directory, then rename)."""

    def __init__(self, root_dir: str | os.PathLike[str]) -> None:
        self.root_dir = Path(root_dir).resolve()

    def describe(self) -> str:
        return "file://" + str(self.root_dir)

    def _path(self, key: str) -> Path:
        return self.root_dir / check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            write_atomically(self._path(key), data)
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound("not_found", f"no object {key!r} in {self.describe()}") from None
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def open_stream(self, key: str) -> Iterator[bytes]:
        try:
            handle = self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound("not_found", f"no object {key!r} in {self.describe()}") from None
        except OSError as exc:
            raise self._unavailable(exc) from exc
        return _iter_file(handle)

    def presigned_url(self, key: str, ttl_s: int) -> str | None:
        return None

    def check(self) -> None:
        try:
            self.root_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root_dir, prefix=".check-"):
                pass
        except OSError as exc:
            raise self._unavailable(exc) from exc

    def list_keys(self, prefix: str = "") -> list[str]:
        if not self.root_dir.is_dir():
            return []
        keys = []
        for path in self.root_dir.rglob("*"):
            if path.is_file() and not path.name.startswith((".tmp-", ".check-")):
                key = path.relative_to(self.root_dir).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def _unavailable(self, exc: OSError) -> Unavailable:
        return Unavailable("storage_unavailable", f"storage {self.describe()} is unavailable: {exc.strerror or exc}")


def _iter_file(handle: Any) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(STREAM_CHUNK_BYTES):
            yield chunk


class S3Storage(Storage):
    """An S3 bucket through boto3 (AWS, MinIO, moto). The bucket is created on first use if it is missing.

    Credentials and region come from boto3's usual sources (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_DEFAULT_REGION``, profiles). Transient errors are retried by botocore's ``standard`` retry mode.
    """

    def __init__(self, bucket: str, endpoint_url: str | None = None, *, client: Any = None) -> None:
        import boto3  # imported here so that LocalStorage users do not pay for boto3
        from botocore.config import Config

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        config = Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
            # Custom endpoints (MinIO, moto) serve buckets by path, not by virtual host name.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            signature_version="s3v4",
        )
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url, config=config)
        self._bucket_ready = False

    def describe(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}{where}"

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._ensure_bucket()
        with self._translate(key):
            self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        with self._translate(key):
            response = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
            return response["Body"].read()

    def exists(self, key: str) -> bool:
        try:
            with self._translate(key):
                self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        with self._translate(key):
            self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def open_stream(self, key: str) -> Iterator[bytes]:
        with self._translate(key):
            body = self.client.get_object(Bucket=self.bucket, Key=check_key(key))["Body"]
        return _iter_body(body)

    def presigned_url(self, key: str, ttl_s: int) -> str | None:
        with self._translate(key):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=int(ttl_s)
            )

    def check(self) -> None:
        self._ensure_bucket(force=True)

    def list_keys(self, prefix: str = "") -> list[str]:
        from botocore.exceptions import ClientError

        keys: list[str] = []
        with self._translate(prefix or self.bucket):
            paginator = self.client.get_paginator("list_objects_v2")
            try:
                for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                    keys.extend(item["Key"] for item in page.get("Contents", []))
            except ClientError as exc:
                if _error_code(exc) != "NoSuchBucket":  # a bucket not created yet holds nothing
                    raise
        return sorted(keys)

    def _ensure_bucket(self, force: bool = False) -> None:
        if self._bucket_ready and not force:
            return
        from botocore.exceptions import ClientError

        with self._translate(self.bucket, missing_is_not_found=False):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                self._create_bucket()
        self._bucket_ready = True

    def _create_bucket(self) -> None:
        from botocore.exceptions import ClientError

        region = self.client.meta.region_name
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":  # us-east-1 refuses an explicit LocationConstraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self.client.create_bucket(**kwargs)
        except ClientError as exc:
            # Another process created it between our HEAD and CREATE: that is what we wanted.
            if _error_code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def _translate(self, key: str, *, missing_is_not_found: bool = True) -> _BotoErrors:
        return _BotoErrors(self, key, missing_is_not_found)


class _BotoErrors:
    """Context manager mapping botocore exceptions to ``NotFound`` / ``Unavailable``."""

    def __init__(self, storage: S3Storage, key: str, missing_is_not_found: bool) -> None:
        self.storage, self.key, self.missing_is_not_found = storage, key, missing_is_not_found

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        # Returns None: never swallows an exception, it only replaces botocore's with ours.
        if exc is None:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        if isinstance(exc, ClientError):
            code = _error_code(exc)
            # A bucket that does not exist yet (it is created on first write) holds no object either.
            if self.missing_is_not_found and code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
                raise NotFound("not_found", f"no object {self.key!r} in {self.storage.describe()}") from None
            raise Unavailable("storage_unavailable",
                              f"storage {self.storage.describe()} refused the request: {code}") from exc
        if isinstance(exc, BotoCoreError):
            raise Unavailable("storage_unavailable",
                              f"storage {self.storage.describe()} is unavailable: {exc}") from exc


def _error_code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _iter_body(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(STREAM_CHUNK_BYTES)
    finally:
        body.close()


def open_storage(settings: Settings) -> Storage:
    """The storage named by ``settings.storage`` (``file:///abs/path`` or ``s3://bucket``)."""
    url = settings.storage
    if url.startswith("s3://"):
        return S3Storage(url[len("s3://") :].strip("/"), settings.s3_endpoint_url)
    if url.startswith("file://"):
        return LocalStorage(url[len("file://") :])
    raise ValueError(f"unsupported storage URL {url!r}")  # Settings already validated it
