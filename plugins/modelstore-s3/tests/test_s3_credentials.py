"""Credentials never show: not in the store's URL or repr, not in version records, not in errors."""

from __future__ import annotations

import json
import os
import traceback

import pytest
from conftest import BUCKET

from modelstore_core import InvalidNameError, ModelStore, StorageError
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import free_port

KEY_ID = "AKIAUSERINFOKEY0001"
SECRET = "userinfo/Secret+Value0001"
ENV_KEY_ID = "AKIAENVIRONMENTKEY02"
ENV_SECRET = "environment-secret-0002"
SECRETS = (KEY_ID, SECRET, ENV_KEY_ID, ENV_SECRET, "userinfo%2FSecret%2BValue0001")


def _userinfo_endpoint(port: int) -> str:
    return f"http://{KEY_ID}:userinfo%2FSecret%2BValue0001@127.0.0.1:{port}"


def _assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def _formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))  # the chained causes too


def test_endpoint_userinfo_is_used_and_never_shown(moto_server, s3_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights" * 100)
    store = ModelStore(s3_url, cache_dir=tmp_path / "c", endpoint_url=_userinfo_endpoint(moto_server.port))
    creds = store.storage.client._request_signer._credentials
    assert (creds.access_key, creds.secret_key) == (KEY_ID, "userinfo/Secret+Value0001")
    assert store.storage.endpoint == moto_server.endpoint
    v = store.upload("d", files=[model])
    record = store.storage.read(keys.version_key("d", v.version))[0].decode()
    _assert_clean(store.url, repr(store), repr(store.storage), record, json.dumps(store.info("d").metadata))
    assert store.load("d")[0].read_bytes() == model.read_bytes()

    with pytest.raises(StorageError) as missing_bucket:
        ModelStore(f"s3://no-such-bucket-{os.getpid()}/p", endpoint_url=_userinfo_endpoint(moto_server.port)).list_domains()
    assert "does not exist" in str(missing_bucket.value)
    _assert_clean(_formatted(missing_bucket.value))
    store.close()


def test_environment_keys_never_shown(moto_server, s3_url, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights" * 100)
    with ModelStore(s3_url, cache_dir=tmp_path / "c") as store:
        v = store.upload("d", files=[model])
        record = store.storage.read(keys.version_key("d", v.version))[0].decode()
        _assert_clean(store.url, repr(store), record)


def test_unreachable_endpoint_error_shows_no_credentials(tmp_path, moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ENV_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    dead = free_port()  # nothing listens there
    store = ModelStore(f"s3://{BUCKET}/x", cache_dir=tmp_path / "c", endpoint_url=_userinfo_endpoint(dead), max_attempts=1)
    with pytest.raises(StorageError, match="could not reach S3 at http://127.0.0.1:") as err:
        store.latest("d")
    _assert_clean(_formatted(err.value), store.url, repr(store.storage))


def test_credentials_in_the_store_url_are_refused_without_echoing_them(moto_server):
    with pytest.raises(InvalidNameError, match="take no credentials") as err:
        ModelStore(f"s3://{KEY_ID}:{ENV_SECRET}@{BUCKET}/prefix")
    _assert_clean(_formatted(err.value))


def test_unknown_option_is_named(moto_server, s3_url):
    with pytest.raises(TypeError, match="endpoint_urll"):
        ModelStore(s3_url, endpoint_urll="http://127.0.0.1:1")


# Typed as is, not percent-encoded: '/', ':' and '@' inside the secret, as people paste them.
RAW_KEY_ID = "AKIARAWUSERINFO003"
RAW_SECRET = "raw/Secret:with@signs+0003"


@pytest.mark.parametrize("where", ["AWS_ENDPOINT_URL", "endpoint_url"])
def test_unencoded_userinfo_is_split_and_never_shown(moto_server, tmp_path, monkeypatch, where):
    def store(port: int, bucket: str = BUCKET) -> ModelStore:
        endpoint = f"http://{RAW_KEY_ID}:{RAW_SECRET}@127.0.0.1:{port}"
        if where == "AWS_ENDPOINT_URL":
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
            return ModelStore(f"s3://{bucket}/x", cache_dir=tmp_path / "c", max_attempts=1)
        return ModelStore(f"s3://{bucket}/x", cache_dir=tmp_path / "c", max_attempts=1, endpoint_url=endpoint)

    def assert_clean(*texts: str) -> None:
        for text in texts:
            for secret in (RAW_KEY_ID, RAW_SECRET, "raw/Secret", "Secret:with", "with@signs", "signs+0003"):
                assert secret not in text

    with store(moto_server.port) as ok:
        creds = ok.storage.client._request_signer._credentials
        assert (creds.access_key, creds.secret_key) == (RAW_KEY_ID, RAW_SECRET)
        assert ok.storage.endpoint == moto_server.endpoint
        assert ok.list_domains() == []
        assert_clean(repr(ok.storage), ok.url)

    with pytest.raises(StorageError, match="could not reach S3 at http://127.0.0.1:") as unreachable:
        store(free_port()).list_domains()  # nothing listens there: connection refused
    with pytest.raises(StorageError, match="does not exist") as missing:
        store(moto_server.port, bucket=f"no-such-bucket-{os.getpid()}").list_domains()
    assert_clean(_formatted(unreachable.value), _formatted(missing.value))


def test_short_credentials_do_not_garble_other_words(moto_server, tmp_path):
    """A two-letter key and secret are masked only as whole values, never inside other words."""
    endpoint = f"http://re:ab@127.0.0.1:{free_port()}"
    store = ModelStore("s3://about/prefix", cache_dir=tmp_path / "c", endpoint_url=endpoint, max_attempts=1)
    assert store.storage._scrub("key re, secret ab; ab/re:ab") == "key ***, secret ***; ***/***"  # re:ab is the userinfo, masked whole
    with pytest.raises(StorageError) as err:
        store.list_domains()
    message = str(err.value)
    assert message.startswith("could not reach S3 at http://127.0.0.1:")
    assert "s3://about/prefix/" in message and "***" not in message
