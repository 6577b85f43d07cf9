"""Offline loads: what this machine last saw, from the verified cache, with no store at all."""

from __future__ import annotations

import shutil
import warnings

import pytest

from modelstore_core import ModelStore
from modelstore_core.errors import NotCachedError, OfflineError
from modelstore_core.offline import StaleWarning


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"v1 weights" * 1000)
    return path


@pytest.fixture
def online(tmp_path, model):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.upload("churn", files=[model])
    model.write_bytes(b"v2 weights" * 1000)
    store.upload("churn", files=[model])
    store.set_state("churn", 1, "production")
    return store


def offline(tmp_path, **kwargs):
    return ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache", offline=True, **kwargs)


def test_latest_and_a_state_load_offline_without_the_store(tmp_path, online):
    assert online.load("churn")[0].read_bytes().startswith(b"v2")
    assert online.load("churn", state="production")[0].read_bytes().startswith(b"v1")
    shutil.rmtree(tmp_path / "store")  # nothing left to ask
    store = offline(tmp_path)
    with pytest.warns(StaleWarning, match=r"latest of 'churn' is version 2 as this machine last saw it"):
        assert store.load("churn")[0].read_bytes().startswith(b"v2")
    with pytest.warns(StaleWarning, match="state 'production'"):
        assert store.load("churn", state="production")[0].read_bytes().startswith(b"v1")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a version number is not a name that can move: no warning
        target = store.download("churn", 1, to=tmp_path / "out")
    assert (target / "model.bin").read_bytes().startswith(b"v1")


def test_the_environment_variable_turns_it_on(tmp_path, online, monkeypatch):
    online.load("churn")
    monkeypatch.setenv("MODELSTORE_OFFLINE", "1")
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    assert store.offline
    with pytest.warns(StaleWarning):
        store.load("churn")


def test_offline_answers_are_what_was_seen_even_when_the_store_moved_on(tmp_path, online, model):
    online.load("churn")
    online.upload("churn", files=[model], tags={"new": "yes"})  # version 3: never loaded here
    with pytest.warns(StaleWarning):
        assert offline(tmp_path).info("churn").version == 2


def test_what_was_never_seen_is_a_clear_error(tmp_path, online):
    online.load("churn", 2)  # by number: latest was never resolved here
    store = offline(tmp_path)
    with pytest.raises(NotCachedError, match="latest of 'churn' was never resolved on this machine"):
        store.load("churn")
    with pytest.raises(NotCachedError, match="state 'production'"):
        store.load("churn", state="production")
    with pytest.raises(NotCachedError, match="version 1 of 'churn' is not in this machine's cache"):
        store.load("churn", 1)
    assert store.load("churn", 2)[0].read_bytes().startswith(b"v2")


def test_a_changed_cached_file_is_never_served(tmp_path, online):
    [path] = online.load("churn")
    path.unlink()
    path.write_bytes(b"tampered")
    with pytest.warns(StaleWarning), pytest.raises(NotCachedError, match="missing or changed"):
        offline(tmp_path).load("churn")


def test_everything_else_refuses_offline(tmp_path, online, model):
    online.load("churn")
    store = offline(tmp_path)
    for call in (store.list_domains, lambda: store.list_versions("churn"), lambda: store.upload("churn", files=[model])):
        with pytest.raises(OfflineError, match="opened offline"):
            call()


def test_a_trust_policy_cannot_be_checked_offline(tmp_path, online):
    from test_signing import make_key

    online.load("churn")
    _, public, _ = make_key(tmp_path, "ci")
    with pytest.warns(StaleWarning), pytest.raises(OfflineError, match="signatures live in the store"):
        offline(tmp_path, trusted_keys=[str(public)]).load("churn")
