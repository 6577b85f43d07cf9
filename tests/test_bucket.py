"""URL and key checks shared by object-store backends."""

from __future__ import annotations

import pytest

from modelstore_core import InvalidNameError
from modelstore_core.bucket import BucketURL, backend_options


def parse(url):
    return BucketURL.parse(url, ("s3",), service="S3", credentials_hint="the default chain")


def test_parse_and_keys():
    where = parse("s3://bucket//a/b/")
    assert (where.bucket, where.prefix, where.url) == ("bucket", "a/b/", "s3://bucket/a/b")
    assert where.key("objects/x") == "a/b/objects/x"
    assert where.where("k") == "s3://bucket/a/b/k" and where.where(None) == "s3://bucket/a/b"
    assert parse("S3://bucket").url == "s3://bucket"


@pytest.mark.parametrize(
    "url, message",
    [
        ("gs://bucket", "starts with s3://"),
        ("s3://key:secret@bucket/p", "no credentials"),
        ("s3://bucket/p?x=1", "no query"),
        ("s3:///p", "names a bucket"),
        ("s3://bucket/a/../b", "'..'"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(InvalidNameError, match=message) as err:
        parse(url)
    assert "secret" not in str(err.value)


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a"])
def test_bad_keys(key):
    with pytest.raises(InvalidNameError):
        parse("s3://bucket/p").key(key)


def test_backend_options():
    assert backend_options({"a": 2}, {"a": 1, "b": 1}, "s3") == {"a": 2, "b": 1}
    with pytest.raises(TypeError, match="unknown option.*zzz.*accepted: a, b"):
        backend_options({"zzz": 1}, {"a": 1, "b": 1}, "s3")
