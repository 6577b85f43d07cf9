"""Credentials never show: not in the store's URL or repr, not in version records, not in errors."""

from __future__ import annotations

import json
import traceback

import pytest
from conftest import BUCKET

from modelstore_core import InvalidNameError, ModelStore, StorageError
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import free_port

SECRET = "ya29.secret-token-0003"


def _formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def test_credentials_in_urls_are_refused_without_echoing_them(gcs_server):
    with pytest.raises(InvalidNameError, match="take no credentials") as err:
        ModelStore(f"gs://user:{SECRET}@{BUCKET}/prefix")
    assert SECRET not in _formatted(err.value)
    with pytest.raises(InvalidNameError, match="takes no credentials") as err:
        ModelStore(f"gs://{BUCKET}/prefix", endpoint=f"http://user:{SECRET}@127.0.0.1:{gcs_server.port}")
    assert SECRET not in _formatted(err.value)


def test_records_and_errors_name_no_credentials(gcs_server, gs_url, tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", SECRET)  # anything in the environment stays out of records
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights" * 100)
    with ModelStore(gs_url, cache_dir=tmp_path / "c") as store:
        v = store.upload("d", files=[model])
        record = store.storage.read(keys.version_key("d", v.version))[0].decode()
        for text in (store.url, repr(store), repr(store.storage), record, json.dumps(store.info("d").metadata)):
            assert SECRET not in text
    assert store.url == gs_url

    dead = ModelStore(gs_url, cache_dir=tmp_path / "c", endpoint=f"http://127.0.0.1:{free_port()}", retry_deadline=0.5)
    with pytest.raises(StorageError, match="could not reach GCS at http://127.0.0.1:") as err:
        dead.latest("d")
    assert SECRET not in _formatted(err.value)


def test_missing_bucket_is_named(gcs_server, tmp_path):
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        ModelStore("gs://no-such-bucket/p", cache_dir=tmp_path / "c").list_domains()


def test_gcs_scheme_alias_and_unknown_options(gcs_server):
    assert ModelStore(f"gcs://{BUCKET}/a/b/").url == f"gs://{BUCKET}/a/b"
    with pytest.raises(TypeError, match="endpoint_url"):
        ModelStore(f"gs://{BUCKET}/p", endpoint_url="http://127.0.0.1:1")


@pytest.mark.parametrize("secret", [SECRET, "raw/secret:with@signs", "pct%2Fencoded"])
def test_emulator_host_with_credentials_is_refused_without_echoing_them(gcs_server, monkeypatch, secret):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://user:{secret}@127.0.0.1:{gcs_server.port}")
    with pytest.raises(InvalidNameError, match="STORAGE_EMULATOR_HOST takes no credentials") as err:
        ModelStore(f"gs://{BUCKET}/prefix")
    assert secret not in _formatted(err.value) and "user:ya29" not in _formatted(err.value)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    with pytest.raises(InvalidNameError, match="takes no credentials") as err:
        ModelStore(f"gs://{BUCKET}/prefix", endpoint=f"http://user:{secret}@127.0.0.1:{gcs_server.port}")
    assert secret not in _formatted(err.value)
