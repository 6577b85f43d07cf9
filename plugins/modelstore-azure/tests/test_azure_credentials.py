"""Credentials never show: not in the store's URL or repr, not in version records, not in errors or logs.

Azurite's account key is public, but it stands for any account key here: it must never appear in
anything the store produces. A SAS token's signature must not either (the SDK's own exceptions can
carry request URLs with it, so errors are raised without them chained).
"""

from __future__ import annotations

import json
import logging
import sys
import traceback

import pytest
from azure_servers import ACCOUNT, KEY, container_sas
from conftest import CONTAINER

from modelstore_core import InvalidNameError, ModelStore, StorageError
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import free_port


def _formatted(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))  # the chained causes too


def _sas(container: str = CONTAINER) -> str:
    return container_sas(container)


def _signature(sas: str) -> str:
    return dict(p.split("=", 1) for p in sas.split("&"))["sig"]


def test_connection_string_key_never_shown(azurite, az_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # everything the SDK and the store log
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights" * 100)
    with ModelStore(az_url, cache_dir=tmp_path / "c") as store:
        v = store.upload("d", files=[model])
        record = store.storage.read(keys.version_key("d", v.version))[0].decode()
        texts = [store.url, repr(store), repr(store.storage), record, json.dumps(store.info("d").metadata)]
        assert store.load("d")[0].read_bytes() == model.read_bytes()
    with pytest.raises(StorageError, match="container 'no-such-container' does not exist") as missing:
        ModelStore("azure://no-such-container/p", cache_dir=tmp_path / "c").list_domains()
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StorageError, match=f"could not reach Azure at {dead}/{ACCOUNT}") as unreachable:
        ModelStore(az_url, cache_dir=tmp_path / "c", endpoint=dead, max_attempts=1).latest("d")
    texts += [_formatted(missing.value), _formatted(unreachable.value), caplog.text]
    assert caplog.records  # the SDK did log its requests
    for text in texts:
        assert KEY not in text and KEY[:20] not in text


def test_sas_token_is_used_and_never_shown(azurite, az_url, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    sas = _sas()
    options = {"account": ACCOUNT, "endpoint": azurite.endpoint, "sas_token": sas, "cache_dir": tmp_path / "c"}
    model = tmp_path / "m.bin"
    model.write_bytes(b"weights" * 100)
    with ModelStore(az_url, **options) as store:
        store.upload("d", files=[model])
        assert store.load("d")[0].read_bytes() == model.read_bytes()
        texts = [repr(store.storage), store.url]
    # A SAS for another container is refused by the service; an unreachable endpoint is named.
    with pytest.raises(StorageError, match="Azure refused to list") as refused:
        ModelStore(az_url, **{**options, "sas_token": _sas("other")}).list_domains()
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StorageError, match="could not reach Azure") as unreachable:
        ModelStore(az_url, **{**options, "endpoint": dead, "max_attempts": 1}).list_domains()
    # From the environment, as `az storage` reads it.
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "?" + sas)
    with ModelStore(az_url, endpoint=azurite.endpoint, cache_dir=tmp_path / "c") as store:
        assert store.list_domains() == ["d"]
    texts += [_formatted(refused.value), _formatted(unreachable.value), caplog.text]
    for text in texts:
        for secret in (sas, _signature(sas), _sas("other"), _signature(_sas("other"))):
            assert secret not in text


def test_account_key_from_the_environment(azurite, az_url, tmp_path, monkeypatch):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_KEY", KEY)
    with ModelStore(az_url, endpoint=azurite.endpoint, cache_dir=tmp_path / "c") as store:
        assert store.list_domains() == []
    monkeypatch.setenv("AZURE_STORAGE_KEY", "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")  # base64, not the key
    with pytest.raises(StorageError, match="Azure refused to list") as err:
        ModelStore(az_url, endpoint=azurite.endpoint, cache_dir=tmp_path / "c").list_domains()
    assert "d3Jvbmcta2V5" not in _formatted(err.value) and KEY not in _formatted(err.value)


def test_credentials_in_urls_are_refused_without_echoing_them(azurite):
    secret = "hunter2-secret-value"
    for url in (f"azure://user:{secret}@{CONTAINER}/p", f"abfss://user:{secret}@{ACCOUNT}.dfs.core.windows.net/p"):
        with pytest.raises(InvalidNameError, match="take no credentials") as err:
            ModelStore(url)
        assert secret not in _formatted(err.value)
    with pytest.raises(InvalidNameError, match="takes no credentials") as err:
        ModelStore(f"azure://{CONTAINER}/p", endpoint=f"http://user:{secret}@127.0.0.1:{azurite.port}")
    assert secret not in _formatted(err.value)
    sas = _sas()
    with pytest.raises(InvalidNameError, match="takes no query") as err:
        ModelStore(f"azure://{CONTAINER}/p", endpoint=f"http://127.0.0.1:{azurite.port}/{ACCOUNT}?{sas}")
    assert _signature(sas) not in _formatted(err.value)


def test_missing_credentials_say_what_to_set(azurite, monkeypatch):
    for name in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(StorageError, match="no Azure storage account named; pass account="):
        ModelStore(f"azure://{CONTAINER}/p")
    monkeypatch.setitem(sys.modules, "azure.identity", None)  # as without the [identity] extra
    with pytest.raises(StorageError, match=r"no Azure credentials found; set AZURE_STORAGE_CONNECTION_STRING.*\[identity\]"):
        ModelStore(f"azure://{CONTAINER}/p", account="someaccount")


def test_unknown_option_and_mismatched_account_are_named(azurite, az_url):
    with pytest.raises(TypeError, match="endpoint_url"):
        ModelStore(az_url, endpoint_url="http://127.0.0.1:1")
    with pytest.raises(InvalidNameError, match="connection string is for account 'devstoreaccount1', not 'other'"):
        ModelStore(az_url, account="other")
