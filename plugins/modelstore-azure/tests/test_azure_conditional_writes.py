"""The core's proof of conditional writes, on Azure: Azurite honours ``If-None-Match: *`` and
``If-Match``; a gateway that drops them is refused before anything is written.

The gateway is the core's HTTP proxy, made to strip both headers from every request it forwards (as
a misconfigured reverse proxy might). Requests are authorised by a SAS token: a SAS signs the URL,
not the headers, so the stripped requests still pass authorisation (with the account key's
SharedKey scheme they would fail with 403 instead, which would prove nothing).
"""

from __future__ import annotations

import uuid

import pytest
from azure_servers import ACCOUNT, container_sas
from conftest import CONTAINER
from modelstore_azure.storage import AzureStorage

from modelstore_core import ModelStore, UnsafeServerError
from modelstore_core.protocol.probe import forget_verdicts
from modelstore_core.testing.faults import FaultProxy

CONDITIONS = (b"if-none-match:", b"if-match:")


class StrippingGateway(FaultProxy):
    """Forwards every request without its ``If-None-Match`` and ``If-Match`` headers."""

    def _forward(self, head, body, method):
        return super()._forward([line for line in head if not line.lower().startswith(CONDITIONS)], body, method)


@pytest.fixture
def sas_options(azurite, monkeypatch, tmp_path):
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    forget_verdicts()
    yield {"account": ACCOUNT, "sas_token": container_sas(CONTAINER), "cache_dir": tmp_path / "cache", "max_attempts": 1}
    forget_verdicts()


@pytest.mark.parametrize("through", ["azurite", "stripping gateway"])
def test_what_the_primitives_see(azurite, sas_options, through):
    honoured = through == "azurite"
    gateway = StrippingGateway(azurite.port).start()
    endpoint = azurite.endpoint if honoured else gateway.endpoint
    options = {k: v for k, v in sas_options.items() if k != "cache_dir"}
    storage = AzureStorage(CONTAINER, uuid.uuid4().hex + "/", endpoint=endpoint, **options)
    try:
        assert storage.put_if_absent("claim", b"first") is True
        assert storage.put_if_absent("claim", b"second") is (not honoured)
        data, token = storage.read("claim")
        assert storage.compare_and_swap("claim", b"third", token) is True
        assert storage.compare_and_swap("claim", b"fourth", token) is (not honoured)  # a stale ETag
        assert storage.read("claim")[0] == (b"third" if honoured else b"fourth")
    finally:
        storage.close()
        gateway.stop()


def test_a_gateway_dropping_conditions_is_refused_before_anything_is_written(azurite, sas_options, tmp_path):
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    url = f"azure://{CONTAINER}/{uuid.uuid4().hex}"
    with StrippingGateway(azurite.port) as gateway:
        store = ModelStore(url, endpoint=gateway.endpoint, **sas_options)
        with pytest.raises(UnsafeServerError) as err:
            store.upload("d", files=[model])
        assert err.value.missing == ("create-if-absent", "compare-and-swap") and "single_writer=True" in str(err.value)
        assert store.list_domains() == [] and list(store.storage.list("")) == []  # not even the probe key is left

        single = ModelStore(url, endpoint=gateway.endpoint, single_writer=True, **sas_options)
        with pytest.warns(RuntimeWarning, match="conditional writes are not honoured"):
            v = single.upload("d", files=[model])
        assert single.load("d", version=v.version)[0].read_bytes() == b"weights"

    # Straight to Azurite, the same store passes the proof and takes the next version.
    direct = ModelStore(url, endpoint=azurite.endpoint, **sas_options)
    assert direct.upload("d", files=[model]).version == v.version + 1
