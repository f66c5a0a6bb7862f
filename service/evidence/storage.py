"""Where cleaned photos are kept: a directory on local disk or an S3-compatible bucket (AWS S3, MinIO), behind one
small protocol. Keys are checked the same way by both stores, so no key can reach outside the root or the bucket."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Final, Protocol

from botocore.exceptions import ClientError

from service.errors import InvalidInputError, NotFoundError

_KEY_CHARS: Final = re.compile(r"[A-Za-z0-9/_.-]+")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_EXTENSION: Final = re.compile(r"[a-z0-9]{1,8}")
# S3's own limit (in bytes; the allowed characters are all one byte)
MAX_KEY_LENGTH: Final = 1024
# S3 answers a missing object with NoSuchKey, and a HEAD (which has no body) with the bare status
_MISSING_CODES: Final = frozenset({"NoSuchKey", "NotFound", "404"})
_NO_BUCKET_CODES: Final = frozenset({"NoSuchBucket", "NotFound", "404"})


class StorageConfigError(ValueError):
    """The store is configured wrongly: raised at start-up, not a user's mistake."""


class PhotoStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes:
        """The stored bytes; NotFoundError when there is nothing under the key."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when it is already gone."""
        ...

    def exists(self, key: str) -> bool: ...


def photo_key(ticket_id: int, sha256: str, extension: str) -> str:
    """tickets/<id>/<sha256>.<ext>: named by content, so the same photo uploaded twice is stored once."""
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int) or ticket_id <= 0:
        raise InvalidInputError("key", f"存储键无效：工单编号必须是正整数，收到 {ticket_id!r}")
    if not _SHA256.fullmatch(sha256):
        raise InvalidInputError("key", "存储键无效：照片摘要必须是 64 位小写十六进制的 SHA-256")
    if not _EXTENSION.fullmatch(extension):
        raise InvalidInputError("key", f"存储键无效：扩展名只能是 1–8 个小写字母或数字，收到 {extension[:20]!r}")
    return f"tickets/{ticket_id}/{sha256}.{extension}"


def check_key(key: str) -> str:
    """The key unchanged if it is a plain relative path of [A-Za-z0-9/_.-]; InvalidInputError("key") otherwise."""
    reason = _key_fault(key)
    if reason:
        raise InvalidInputError("key", f"存储键 {key[:100]!r} 无效：{reason}")
    return key


def _key_fault(key: str) -> str | None:
    if not key:
        return "不能为空"
    if len(key) > MAX_KEY_LENGTH:
        return f"长度不能超过 {MAX_KEY_LENGTH} 个字符"
    if not _KEY_CHARS.fullmatch(key):
        return "只能包含英文字母、数字和 / _ . -"
    if key.startswith("/"):
        return "不能以 / 开头"
    # "." and empty segments would make two keys name one file on disk but two objects in S3
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        return "不能包含 .. 或 . 路径段，也不能有空的路径段（// 或结尾的 /）"
    return None


def _not_found(key: str) -> NotFoundError:
    return NotFoundError(f"找不到存储的文件：{key}")


class LocalStore:
    """Files under `root`, one per key. Writes are atomic: a reader sees the old file or the new, never a part."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def put(self, key: str, data: bytes, content_type: str) -> None:
        # the content type is not kept: every key the service writes ends in the extension that implies it
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(path, data)

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise _not_found(key) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():  # a key's parent directory is not an object
            return
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        # the key is checked already; this catches a symlink inside the root that points out of it
        if not path.resolve().is_relative_to(self.root):
            raise InvalidInputError("key", f"存储键 {key[:100]!r} 无效：指向存储目录之外")
        return path


def _write_atomically(path: Path, data: bytes) -> None:
    """Temp file in the same directory (so os.replace is a rename on one file system), flushed to disk first."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # the rename is durable only once the directory entry is on disk; Windows cannot open a directory
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3Store:
    """Objects in an S3 bucket; path-style addressing, so S3-compatible servers (MinIO) on any host name work."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        access_key: str | None,
        secret_key: str | None,
        region: str = "us-east-1",
        client: Any = None,
    ) -> None:
        if not bucket:
            raise StorageConfigError("S3 存储需要桶名（bucket）")
        self.bucket = bucket
        self.region = region
        self._client = client if client is not None else _s3_client(endpoint_url, access_key, secret_key, region)

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise _not_found(key) from exc
            raise
        body = answer["Body"]
        try:
            return bytes(body.read())
        finally:
            body.close()

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing key with success too
        self._client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                return False
            raise
        return True

    def ensure_bucket(self) -> None:
        """Create the bucket unless it is there (for MinIO and tests; production buckets are made by the operator)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in _NO_BUCKET_CODES:
                raise
        options: dict[str, Any] = {}
        if self.region != "us-east-1":  # S3 refuses the default region named as a location constraint
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(Bucket=self.bucket, **options)
        except ClientError as exc:
            # another process created it between our check and our create
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise


def _s3_client(endpoint_url: str | None, access_key: str | None, secret_key: str | None, region: str) -> Any:
    # imported here: boto3 takes a third of a second to import, which a local store never needs
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        # boto3 ≥ 1.36 adds CRC checksums to every upload by default, which many S3-compatible servers refuse
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # None keys fall back to boto3's own chain (environment, instance role), as on AWS itself
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=config,
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def make_store(
    kind: str,
    *,
    local_dir: Path,
    bucket: str | None,
    endpoint_url: str | None,
    access_key: str | None,
    secret_key: str | None,
    region: str,
) -> PhotoStore:
    """The store the settings name: "local" (files under local_dir) or "s3" (the bucket, which must be named)."""
    chosen = kind.strip().lower()
    if chosen == "local":
        return LocalStore(local_dir)
    if chosen == "s3":
        if not bucket:
            raise StorageConfigError("照片存储为 s3 时必须设置桶名（bucket）")
        return S3Store(
            bucket=bucket, endpoint_url=endpoint_url, access_key=access_key, secret_key=secret_key, region=region
        )
    raise StorageConfigError(f"照片存储类型 {kind!r} 未知：只能是 local 或 s3")
