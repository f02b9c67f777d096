"""The ObjectStore contract, run against every implementation, and S3Store's own behaviour.

The S3 side talks HTTP to two S3 servers: SeaweedFS (the real server compose ships, the
one the other integration tests use) and moto's server mode (a second implementation);
tests of S3Store's own behaviour run against SeaweedFS, and against moto too where the
two servers differ. Every store starts empty but has neighbours: objects just outside its
root or prefix, which must never show through.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from prodseg.errors import BucketMissingError, InputError, TransientError
from prodseg.settings import load_settings
from prodseg.storage.base import ObjectNotFound, ObjectStore, validate_key
from prodseg.storage.factory import open_store
from prodseg.storage.local import LocalStore
from prodseg.storage.s3 import S3Store
from prodseg.storage.s3_errors import map_s3_error
from prodseg.storage.urls import parse_s3_url
from tests.support.environment import AWS_TEST_CREDENTIALS, S3_NO_PERMISSION_KEY, s3_client
from tests.support.outcomes import record
from tests.support.protocols import mismatches

INVALID_KEYS = [
    "",
    "/abs/key.png",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    "..",
    "../escape.txt",
    "a/../../escape.txt",
    "a\\b",
    "nul\x00byte",
    "new\nline",
]
S3_PREFIX = "jobs/j1"
NEIGHBOUR_KEYS = ["jobs/j1", "jobs/j1x", "jobs/j10/masks/a_0.png", "masks/a_0.png", "outside"]
S3_SERVERS = ["seaweedfs", "moto"]
ENDPOINT_FIXTURE = {"seaweedfs": "s3_endpoint", "moto": "moto_endpoint"}


def fresh_bucket() -> str:
    """A bucket name no other test uses."""
    return f"prodseg-test-{uuid.uuid4().hex[:16]}"


@pytest.fixture(params=S3_SERVERS)
def s3_server(request: pytest.FixtureRequest) -> str:
    """Each S3 server's endpoint in turn, SeaweedFS and moto, with the test credentials."""
    return str(request.getfixturevalue(ENDPOINT_FIXTURE[request.param]))


@pytest.fixture(params=["local", *S3_SERVERS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each ObjectStore implementation (S3Store on each S3 server), empty, with
    neighbours just outside it."""
    if request.param == "local":
        for neighbour in ("store-other/masks/a_0.png", "storex", "outside"):
            (tmp_path / neighbour).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / neighbour).write_bytes(b"neighbour")
        return LocalStore(tmp_path / "store")
    endpoint = request.getfixturevalue(ENDPOINT_FIXTURE[request.param])
    bucket = fresh_bucket()
    raw = s3_client(endpoint)
    raw.create_bucket(Bucket=bucket)
    for neighbour in NEIGHBOUR_KEYS:
        raw.put_object(Bucket=bucket, Key=neighbour, Body=b"neighbour")
    return S3Store(bucket, S3_PREFIX, endpoint)


# --- the contract -------------------------------------------------------------------


def test_implements_protocol(store: ObjectStore) -> None:
    assert mismatches(ObjectStore, store) == []


def test_put_get_round_trip_of_binary_data(store: ObjectStore) -> None:
    data = bytes(range(256)) * 64 + b"\r\n\x00\xff"
    store.put("masks/img_0.png", data, "image/png")
    assert store.get("masks/img_0.png") == data
    assert store.exists("masks/img_0.png")


def test_put_replaces_whole_object(store: ObjectStore) -> None:
    store.put("results.json", b"a much longer first version")
    store.put("results.json", b"short")
    assert store.get("results.json") == b"short"


def test_delete_removes_one_object_and_ignores_missing_ones(store: ObjectStore) -> None:
    store.put("previews/s/a.png", b"a")
    store.put("previews/s/b.png", b"b")
    store.delete("previews/s/a.png")
    store.delete("previews/s/a.png")  # already gone: no error
    store.delete("never/was.png")
    assert list(store.list()) == ["previews/s/b.png"]
    assert not store.exists("previews/s/a.png")


def test_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.get("empty") == b""
    assert store.exists("empty")


def test_get_head_is_the_first_bytes_or_the_whole_short_object(store: ObjectStore) -> None:
    data = bytes(range(256)) * 40
    store.put("images/a.jpg", data)
    store.put("empty", b"")
    assert store.get_head("images/a.jpg", 1000) == data[:1000]
    assert store.get_head("images/a.jpg", 1) == data[:1]
    assert store.get_head("images/a.jpg", len(data) + 50) == data
    assert store.get_head("empty", 10) == b""
    with pytest.raises(ObjectNotFound):
        store.get_head("images/missing.jpg", 10)


def test_get_missing_raises_object_not_found_naming_key(store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as caught:
        store.get("reference/mask.png")
    assert isinstance(caught.value, KeyError)
    assert "reference/mask.png" in str(caught.value)
    assert caught.value.key == "reference/mask.png"
    assert not store.exists("reference/mask.png")


def test_list_is_sorted_and_filters_by_string_prefix(store: ObjectStore) -> None:
    keys = ["masks/b_0.png", "masks/a_1.png", "masks/a_0.png", "cutouts/a_0.png", "results.json"]
    for key in keys:
        store.put(key, key.encode())
    assert isinstance(store.list(), Iterator)
    assert list(store.list()) == sorted(keys)
    assert list(store.list("masks/")) == ["masks/a_0.png", "masks/a_1.png", "masks/b_0.png"]
    assert list(store.list("masks/a")) == ["masks/a_0.png", "masks/a_1.png"]
    assert list(store.list("mas")) == ["masks/a_0.png", "masks/a_1.png", "masks/b_0.png"]
    assert list(store.list("thumbs/")) == []
    for impossible in ("../", "/masks", "a\\", "nul\x00"):
        assert list(store.list(impossible)) == []


def test_listed_keys_are_relative_and_readable(store: ObjectStore) -> None:
    store.put("jobs/x/masks/a_0.png", b"a")
    store.put("z", b"z")
    listed = list(store.list())
    assert listed == ["jobs/x/masks/a_0.png", "z"]
    assert [store.get(key) for key in listed] == [b"a", b"z"]


def test_list_of_empty_store_shows_no_neighbours(store: ObjectStore) -> None:
    assert list(store.list()) == []
    assert list(store.list("masks/")) == []
    assert not store.exists("outside")


def test_unicode_and_special_character_keys(store: ObjectStore) -> None:
    keys = [
        "jobs/Milch Ä/masks/Käse 1_0.png",
        "商品/写真 😀.png",
        "a+b/c%20d?e#f&g=h;i.png",
        "ünïcödé/ﬁ.png",
    ]
    for key in keys:
        store.put(key, key.encode())
    for key in keys:
        assert store.get(key) == key.encode()
        assert store.exists(key)
    assert list(store.list()) == sorted(keys)
    assert list(store.list("jobs/Milch Ä/")) == [keys[0]]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_every_method_rejects_invalid_keys(store: ObjectStore, key: str) -> None:
    operations: list[Callable[[], object]] = [
        lambda: store.put(key, b"x"),
        lambda: store.get(key),
        lambda: store.get_head(key, 10),
        lambda: store.exists(key),
        lambda: store.describe(key),
        lambda: store.delete(key),
    ]
    for operation in operations:
        with pytest.raises(ValueError, match="invalid object key"):
            operation()
    assert list(store.list()) == []


def test_describe_names_the_object(store: ObjectStore) -> None:
    assert store.describe("masks/img_0.png").replace(os.sep, "/").endswith("/masks/img_0.png")


# --- validate_key -------------------------------------------------------------------


@pytest.mark.parametrize("key", ["a", "a/b/c.png", "jobs/x/.hidden", "a..b", "Käse 1.png"])
def test_validate_key_accepts_relative_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_validate_key_rejects_and_names_key(key: str) -> None:
    with pytest.raises(ValueError) as caught:
        validate_key(key)
    assert repr(key) in str(caught.value)
    if key == "../escape.txt":
        record("bad input", "object key leaving the job's prefix ('../escape.txt')",
               f"refused before any request: {caught.value}")


# --- S3Store specifics --------------------------------------------------------------


def test_s3_describe_prefix_and_content_type(s3_endpoint: str, raw_s3: Any) -> None:
    bucket = fresh_bucket()
    store = S3Store(bucket, "jobs/j1/", s3_endpoint)
    store.ensure_bucket()
    store.ensure_bucket()  # idempotent
    assert store.describe("masks/a_0.png") == f"s3://{bucket}/jobs/j1/masks/a_0.png"
    store.put("masks/a_0.png", b"png", "image/png")
    head = raw_s3.head_object(Bucket=bucket, Key="jobs/j1/masks/a_0.png")
    assert head["ContentType"] == "image/png"
    assert S3Store(bucket, "jobs/j1", s3_endpoint).get("masks/a_0.png") == b"png"


def test_s3_prefix_must_be_a_valid_key() -> None:
    assert S3Store("bucket", "").url == "s3://bucket/"
    with pytest.raises(ValueError, match="invalid object key"):
        S3Store("bucket", "a/../b")


def test_s3_list_pages_and_skips_names_that_are_not_keys(s3_server: str) -> None:
    """ListObjectsV2 pages (3 keys a page here) are all read, and names another tool wrote
    that are no valid keys (folder markers) are skipped. Both servers keep these names as
    written; SeaweedFS would store ``a//b`` as ``a/b`` and a backslash as ``/``, and moto
    does not find a name with a line break in it."""
    store = S3Store(fresh_bucket(), "p", s3_server)
    store.ensure_bucket()
    keys = [f"k{n:02d}" for n in range(7)]
    for key in keys:
        store.put(key, b"x")
    raw = store._s3()
    for bad in ("p/folder/", "p/other/"):
        raw.put_object(Bucket=store.bucket, Key=bad, Body=b"x")
    calls: list[int] = []
    raw.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2", lambda params, **_: params.update(MaxKeys=3)
    )
    raw.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: calls.append(1))
    assert list(store.list()) == keys
    assert len(calls) == 3  # 9 objects, 3 per page


@pytest.mark.parametrize("server", S3_SERVERS)
def test_s3_missing_bucket_is_an_input_error_naming_it(
    request: pytest.FixtureRequest, server: str
) -> None:
    """Reading, listing and deleting in a missing bucket, and ``check_bucket``, are one
    input error naming the bucket on both servers. A PutObject differs: moto refuses it,
    SeaweedFS creates the bucket (so a client calls ``check_bucket`` before uploading)."""
    endpoint = request.getfixturevalue(ENDPOINT_FIXTURE[server])
    bucket = fresh_bucket()
    store = S3Store(bucket, "p", endpoint)
    operations: list[Callable[[], object]] = [
        store.check_bucket,
        lambda: store.get("k"),
        lambda: list(store.list()),
        lambda: store.delete("k"),
    ]
    for operation in operations:
        with pytest.raises(InputError, match=f"bucket '{bucket}' does not exist") as caught:
            operation()
    assert not store.exists("k")  # HEAD has no body to tell bucket from key
    if server == "moto":
        with pytest.raises(InputError, match=f"bucket '{bucket}' does not exist"):
            store.put("k", b"x")
    else:
        store.put("k", b"x")
        store.check_bucket()  # the PutObject created it
    record("bad input", "S3 bucket that does not exist",
           str(caught.value).replace(endpoint, "<endpoint>").replace(bucket, "<bucket>"))


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("unknown-key", "InvalidAccessKeyId"),
        ("wrong-secret", "SignatureDoesNotMatch"),
        ("no-permission", "AccessDenied"),
    ],
)
def test_s3_refused_credentials_are_an_input_error_without_the_secret(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, case: str, code: str
) -> None:
    """SeaweedFS refuses a key it does not know, a wrong secret, and a key it knows that
    may do nothing (``S3_NO_PERMISSION_KEY``)."""
    bucket = fresh_bucket()
    S3Store(bucket, "p", s3_endpoint).ensure_bucket()
    key_id = {"unknown-key": "AKIAUNKNOWNUNKNOWN00",
              "wrong-secret": AWS_TEST_CREDENTIALS["AWS_ACCESS_KEY_ID"],
              "no-permission": S3_NO_PERMISSION_KEY.access_key}[case]
    secret = S3_NO_PERMISSION_KEY.secret_key if case == "no-permission" \
        else "wrong-Secret/Value+0123456789"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    store = S3Store(bucket, "p", s3_endpoint)
    for operation in (store.check_bucket, lambda: store.put("k", b"x"),
                      lambda: store.get("k")):
        with pytest.raises(InputError, match="check AWS credentials") as caught:
            operation()
        assert isinstance(caught.value.__cause__, ClientError)
        assert caught.value.__cause__.response["Error"]["Code"] in (code, "403")  # HEAD: 403
        everything = "".join(traceback.format_exception(caught.value)) + repr(store)
        assert secret not in everything
        assert s3_endpoint in str(caught.value)
    message = str(caught.value).replace(s3_endpoint, "<endpoint>").replace(bucket, "<bucket>")
    record("bad input", f"wrong S3 credentials ({case})",
           f"{code} -> {message}; the secret appears in no message or traceback")


def test_s3_missing_credentials_are_an_input_error(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(InputError, match="no usable AWS credentials"):
        S3Store(fresh_bucket(), "", s3_endpoint).put("k", b"x")


def test_s3_unreachable_endpoint_is_transient_and_quick(aws_credentials: dict[str, str]) -> None:
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
        store = S3Store("bucket", "p", endpoint, connect_timeout=1, max_retries=1)
        started = time.monotonic()
        with pytest.raises(TransientError) as caught:
            store.put("masks/a_0.png", b"x")
    assert time.monotonic() - started < 5
    assert endpoint in str(caught.value) and "masks/a_0.png" in str(caught.value)
    assert isinstance(caught.value.__cause__, EndpointConnectionError)
    assert AWS_TEST_CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in str(caught.value)


def test_s3_silent_endpoint_times_out_as_transient(aws_credentials: dict[str, str]) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = S3Store("bucket", "", endpoint, read_timeout=0.3, max_retries=0)
        with pytest.raises(TransientError, match="did not answer") as caught:
            store.get("k")
    assert isinstance(caught.value.__cause__, ReadTimeoutError)


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError")])
def test_s3_5xx_and_throttling_are_transient_after_retries(
    s3_error_server: Callable[[int, str], tuple[str, list[str]]], status: int, code: str
) -> None:
    endpoint, seen = s3_error_server(status, code)
    store = S3Store("bucket", "", endpoint, max_retries=1)
    with pytest.raises(TransientError, match=code) as caught:
        store.put("k", b"x")
    assert endpoint in str(caught.value)
    assert seen == ["PUT", "PUT"]  # one retry


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        *[(code, 404, ObjectNotFound) for code in ("NoSuchKey", "404")],
        ("NoSuchBucket", 404, BucketMissingError),
        *[(c, 403, InputError) for c in ("AccessDenied", "InvalidAccessKeyId", "403")],
        ("SignatureDoesNotMatch", 403, InputError),
        *[(c, 400, TransientError) for c in ("Throttling", "RequestTimeout")],
        *[(c, 503, TransientError) for c in ("SlowDown", "ServiceUnavailable", "New")],
        ("InvalidArgument", 400, InputError),
    ],
)
def test_map_s3_error(code: str, status: int, expected: type[Exception]) -> None:
    error = ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )
    mapped = map_s3_error(
        error, operation="GetObject", bucket="b", endpoint="http://s3:9000", key="k/x",
        location="s3://b/k/x",
    )
    assert type(mapped) is expected
    assert "s3://b/" in str(mapped) or "'b'" in str(mapped)
    if expected is not ObjectNotFound:
        assert "http://s3:9000" in str(mapped)


def test_s3_endpoint_user_info_never_shows() -> None:
    store = S3Store("bucket", "", "http://user:hunter2@127.0.0.1:9000")
    assert store.endpoint == "http://127.0.0.1:9000"
    assert "hunter2" not in repr(store)


def test_s3_client_is_lazy_and_rebuilt_after_the_pid_changes(
    aws_credentials: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = S3Store("bucket", "", "http://127.0.0.1:9")
    assert store._s3._client is None
    first = store._s3()
    assert store._s3() is first
    monkeypatch.setattr(os, "getpid", lambda: -1)
    assert store._s3() is not first
    injected = S3Store("bucket", "", client=first)
    assert injected._s3() is first  # the caller's client is never swapped


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_s3_forked_child_builds_its_own_client(s3_endpoint: str) -> None:
    store = S3Store(fresh_bucket(), "p", s3_endpoint)
    store.ensure_bucket()
    parent_client = store._s3()
    child = os.fork()
    if child == 0:  # the child: never return into pytest
        status = 2
        signal.alarm(20)  # a hung child must not hang the test run
        try:
            store.put("from-child", str(os.getpid()).encode())
            status = 0 if store._s3() is not parent_client else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(status)
    _, wait_status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, "1: client shared, 2: put failed"
    assert store.get("from-child") == str(child).encode()
    assert store._s3() is parent_client


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket", ("bucket", "")),
        ("s3://bucket/", ("bucket", "")),
        ("s3://my.bucket-1/jobs", ("my.bucket-1", "jobs")),
        ("s3://bucket/some/prefix/", ("bucket", "some/prefix")),
        ("s3://bucket/Käse 1/x", ("bucket", "Käse 1/x")),
    ],
)
def test_parse_s3_url(url: str, expected: tuple[str, str]) -> None:
    assert parse_s3_url(url) == expected


MALFORMED_S3_URLS = [
    "bucket/x", "S3://bucket", "s3:/bucket", "s3://", "s3:///x", "s3://Bucket", "s3://ab",
    "s3://b_1", "s3://-bucket", "s3://a..b", "s3://bucket//x", "s3://bucket/../x",
    "s3://bucket/a\\b",
]


@pytest.mark.parametrize("url", MALFORMED_S3_URLS)
def test_parse_s3_url_rejects_malformed(url: str) -> None:
    with pytest.raises(InputError, match=r"s3://|bucket|prefix"):
        parse_s3_url(url)


def test_open_store(tmp_path: Path, s3_endpoint: str) -> None:
    settings = load_settings(s3_endpoint_url=s3_endpoint, s3_region="us-east-1")
    local = open_store(str(tmp_path / "out"), settings)
    assert isinstance(local, LocalStore) and local.root == (tmp_path / "out").resolve()
    bucket = fresh_bucket()
    remote = open_store(f"s3://{bucket}/jobs/j1", settings)
    assert isinstance(remote, S3Store)
    assert (remote.bucket, remote.prefix, remote.endpoint_url) == (bucket, "jobs/j1/", s3_endpoint)
    remote.ensure_bucket()
    remote.put("a", b"1")
    whole_bucket = S3Store.from_settings(settings.model_copy(update={"s3_bucket": bucket}))
    assert list(whole_bucket.list()) == ["jobs/j1/a"]
    for bad in ("s3://B", "gs://bucket/x", "http://host/x"):
        with pytest.raises(InputError):
            open_store(bad, settings)
