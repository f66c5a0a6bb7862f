"""Both photo stores behave alike — the local directory and a real S3-compatible server (moto, in its own process):
round trips, idempotent deletes, NotFoundError for a missing key, and no key that reaches outside the root."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from service.errors import InvalidInputError, NotFoundError
from service.evidence.storage import (
    LocalStore,
    PhotoStore,
    S3Store,
    StorageConfigError,
    check_key,
    make_store,
    photo_key,
)
from tests.service.evidence.conftest import ACCESS_KEY, SECRET_KEY

SHA = hashlib.sha256(b"photo").hexdigest()
BAD_KEYS = [
    "../x",
    "/abs",
    "a/../../b",
    "a b",
    "",
    "..",
    "a/..",
    "./a",
    "a/./b",
    "a//b",
    "a/",
    "a\\b",
    "a\x00b",
    "照片.jpg",
    "x" * 1025,
]


def _bucket_name() -> str:
    return f"evidence-{uuid.uuid4().hex[:16]}"


def _s3(endpoint: str, bucket: str, region: str = "us-east-1") -> S3Store:
    return S3Store(bucket=bucket, endpoint_url=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY, region=region)


def _raw_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PhotoStore:
    if request.param == "local":
        return LocalStore(tmp_path / "photos")
    s3 = _s3(request.getfixturevalue("s3_endpoint"), _bucket_name())  # a bucket of its own: no test sees another's
    s3.ensure_bucket()
    return s3


def test_put_then_get_returns_the_bytes(store: PhotoStore) -> None:
    key = photo_key(7, SHA, "jpg")
    data = os.urandom(70_000)
    store.put(key, data, "image/jpeg")
    assert store.get(key) == data
    assert store.exists(key)


def test_put_replaces_what_was_there(store: PhotoStore) -> None:
    store.put("tickets/1/a.png", b"old", "image/png")
    store.put("tickets/1/a.png", b"new", "image/png")
    assert store.get("tickets/1/a.png") == b"new"


def test_a_missing_key_is_not_found(store: PhotoStore) -> None:
    assert not store.exists("tickets/1/missing.jpg")
    with pytest.raises(NotFoundError, match=re.escape("tickets/1/missing.jpg")):
        store.get("tickets/1/missing.jpg")


def test_delete_is_idempotent(store: PhotoStore) -> None:
    store.put("tickets/2/x.webp", b"x", "image/webp")
    store.put("tickets/2/y.webp", b"y", "image/webp")
    store.delete("tickets/2/x.webp")
    store.delete("tickets/2/x.webp")  # already gone: still no error
    store.delete("tickets/2/never.webp")
    assert not store.exists("tickets/2/x.webp")
    with pytest.raises(NotFoundError):
        store.get("tickets/2/x.webp")
    assert store.get("tickets/2/y.webp") == b"y"  # the neighbour is untouched


def test_a_key_prefix_is_not_an_object(store: PhotoStore) -> None:
    store.put("tickets/3/p.jpg", b"p", "image/jpeg")
    assert not store.exists("tickets/3")
    with pytest.raises(NotFoundError):
        store.get("tickets/3")
    store.delete("tickets/3")
    assert store.get("tickets/3/p.jpg") == b"p"


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda key: repr(key)[:30])
def test_bad_keys_are_refused_by_every_operation(store: PhotoStore, key: str) -> None:
    operations = [
        lambda: store.put(key, b"evil", "image/jpeg"),
        lambda: store.get(key),
        lambda: store.delete(key),
        lambda: store.exists(key),
    ]
    for operation in operations:
        with pytest.raises(InvalidInputError) as caught:
            operation()
        assert caught.value.field == "key"
        assert "存储键" in caught.value.message


def test_photo_key_names_the_ticket_and_the_content() -> None:
    assert photo_key(42, SHA, "webp") == f"tickets/42/{SHA}.webp"
    assert check_key(photo_key(42, SHA, "webp")) == f"tickets/42/{SHA}.webp"


@pytest.mark.parametrize(
    ("ticket_id", "sha256", "extension"),
    [
        (0, SHA, "jpg"),
        (-1, SHA, "jpg"),
        (True, SHA, "jpg"),
        (1, "../../etc/passwd", "jpg"),
        (1, SHA.upper(), "jpg"),
        (1, SHA[:-1], "jpg"),
        (1, SHA, "jpg/../x"),
        (1, SHA, ""),
        (1, SHA, "JPG"),
    ],
    ids=["zero", "negative", "bool", "traversal", "upper-sha", "short-sha", "ext-traversal", "no-ext", "upper-ext"],
)
def test_photo_key_refuses_parts_that_are_not_what_they_claim(ticket_id: int, sha256: str, extension: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        photo_key(ticket_id, sha256, extension)
    assert caught.value.field == "key"


@given(st.text(alphabet="a./_-", max_size=12))
def test_every_key_that_passes_the_check_stays_inside_the_root(key: str) -> None:
    root = Path("/srv/photos")
    try:
        check_key(key)
    except InvalidInputError:
        return
    path = Path(os.path.normpath(root / key))
    assert path.is_relative_to(root) and path != root


def _files(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*") if path.is_file()}


def test_local_store_writes_only_under_its_root(tmp_path: Path) -> None:
    root = tmp_path / "deep" / "photos"
    store = LocalStore(root)
    for key in BAD_KEYS:
        with pytest.raises(InvalidInputError):
            store.put(key, b"evil", "image/jpeg")
    store.put(photo_key(9, SHA, "png"), b"good", "image/png")
    assert _files(tmp_path) == {root / "tickets" / "9" / f"{SHA}.png"}


def test_local_store_refuses_a_symlink_out_of_its_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "photos"
    root.mkdir()
    (root / "tickets").symlink_to(outside, target_is_directory=True)
    store = LocalStore(root)
    with pytest.raises(InvalidInputError, match="存储目录之外"):
        store.put("tickets/1/a.jpg", b"evil", "image/jpeg")
    assert _files(outside) == set()


def test_local_store_leaves_no_temporary_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put("tickets/5/a.jpg", b"one", "image/jpeg")
    store.put("tickets/5/a.jpg", b"two", "image/jpeg")
    assert _files(tmp_path) == {tmp_path / "tickets" / "5" / "a.jpg"}


def test_a_failed_local_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    store.put("tickets/6/a.jpg", b"old", "image/jpeg")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        store.put("tickets/6/a.jpg", b"new but never on disk", "image/jpeg")
    monkeypatch.undo()
    assert store.get("tickets/6/a.jpg") == b"old"
    assert _files(tmp_path) == {tmp_path / "tickets" / "6" / "a.jpg"}


def test_s3_store_keeps_the_content_type(s3_endpoint: str) -> None:
    store = _s3(s3_endpoint, _bucket_name())
    store.ensure_bucket()
    store.put("tickets/1/a.webp", b"RIFF", "image/webp")
    head = _raw_client(s3_endpoint).head_object(Bucket=store.bucket, Key="tickets/1/a.webp")
    assert head["ContentType"] == "image/webp"
    assert head["ContentLength"] == 4


def test_ensure_bucket_creates_it_once(s3_endpoint: str) -> None:
    store = _s3(s3_endpoint, _bucket_name(), region="eu-west-1")
    # a missing bucket is a configuration fault, never mistaken for a missing photo
    with pytest.raises(ClientError) as caught:
        store.get("tickets/1/a.jpg")
    assert not isinstance(caught.value, NotFoundError)
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"
    store.ensure_bucket()
    store.ensure_bucket()
    store.put("tickets/1/a.jpg", b"a", "image/jpeg")
    assert store.get("tickets/1/a.jpg") == b"a"
    location = _raw_client(s3_endpoint).get_bucket_location(Bucket=store.bucket)
    assert location["LocationConstraint"] == "eu-west-1"


def test_make_store_local(tmp_path: Path) -> None:
    store = make_store(
        " Local ", local_dir=tmp_path, bucket=None, endpoint_url=None, access_key=None, secret_key=None, region="x"
    )
    assert isinstance(store, LocalStore)
    store.put("a.jpg", b"a", "image/jpeg")
    assert (tmp_path / "a.jpg").read_bytes() == b"a"


def test_make_store_s3_reaches_the_server_by_host_name(s3_endpoint: str, tmp_path: Path) -> None:
    # a host name rather than an IP: only path-style addressing finds the bucket (<bucket>.localhost does not resolve)
    endpoint = s3_endpoint.replace("127.0.0.1", "localhost")
    store = make_store(
        "s3",
        local_dir=tmp_path,
        bucket=_bucket_name(),
        endpoint_url=endpoint,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        region="us-east-1",
    )
    assert isinstance(store, S3Store)
    store.ensure_bucket()
    store.put("tickets/1/a.png", b"png", "image/png")
    assert store.get("tickets/1/a.png") == b"png"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kind", "bucket", "message"),
    [("s3", None, "桶名"), ("s3", "", "桶名"), ("ftp", "b", "local 或 s3"), ("", None, "local 或 s3")],
)
def test_make_store_refuses_a_bad_configuration(tmp_path: Path, kind: str, bucket: str | None, message: str) -> None:
    with pytest.raises(StorageConfigError, match=message):
        make_store(
            kind, local_dir=tmp_path, bucket=bucket, endpoint_url=None, access_key=None, secret_key=None, region="r"
        )
