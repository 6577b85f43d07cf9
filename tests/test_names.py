"""Hostile names are refused before anything is written, and nothing lands outside the root."""

from __future__ import annotations

import pytest

from modelstore_core import InvalidNameError, ModelStore

HOSTILE = ["", ".", "..", "../x", "a/b", "a\\b", "/abs", "x..y", "-lead", ".hidden", "a b", "é", "a" * 129, "nul\x00", "a\nb"]


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.bin"
    path.write_bytes(b"weights")
    return path


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_domain_names_write_nothing(tmp_path, model, name):
    root = tmp_path / "store"
    store = ModelStore(root)
    with pytest.raises(InvalidNameError):
        store.upload(name, files=[model])
    assert not root.exists()
    for call in (store.latest, store.list_versions, store.states):
        with pytest.raises(InvalidNameError):
            call(name)
    assert not root.exists()


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_state_names(store, model, name):
    store.upload("d", files=[model])
    with pytest.raises(InvalidNameError):
        store.set_state("d", 1, name)
    assert store.states("d") == {}


@pytest.mark.parametrize("version", [0, -1, "x", 1.5, True, "../1", 10**10])
def test_bad_versions(store, model, version):
    store.upload("d", files=[model])
    with pytest.raises(InvalidNameError):
        store.load("d", version=version)


def test_good_names(store, model):
    for name in ["churn", "Churn_2.v3-final", "a" * 128, "0"]:
        assert store.upload(name, files=[model]).domain == name


@pytest.mark.parametrize("tags", [{"../x": "1"}, {"k": {"nested": 1}}, ["k"]])
def test_bad_tags(store, model, tags):
    with pytest.raises(InvalidNameError):
        store.upload("d", files=[model], tags=tags)
    assert store.list_domains() == []


def test_hidden_or_odd_file_names_are_refused(tmp_path, store):
    hidden = tmp_path / ".env"
    hidden.write_text("SECRET=1")
    with pytest.raises(InvalidNameError):
        store.upload("d", files=[hidden])
    assert store.list_domains() == []


def test_two_files_with_one_name_are_refused(tmp_path, store):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "m.bin").write_text("1")
    (tmp_path / "b" / "m.bin").write_text("2")
    with pytest.raises(InvalidNameError, match="m.bin"):
        store.upload("d", files=[tmp_path / "a" / "m.bin", tmp_path / "b" / "m.bin"])


def test_directories_are_stored_recursively_with_relative_names(tmp_path, store):
    tok = tmp_path / "tokenizer"
    (tok / "sub").mkdir(parents=True)
    (tok / "vocab.txt").write_text("a b c")
    (tok / "sub" / "merges.txt").write_text("ab")
    v = store.upload("d", files=[tok])
    assert sorted(f.path for f in v.files) == ["tokenizer/sub/merges.txt", "tokenizer/vocab.txt"]
    paths = store.load("d")
    assert sorted(p.read_text() for p in paths) == ["a b c", "ab"]


def test_storage_keys_cannot_escape_the_root(tmp_path):
    from modelstore_core.default_plugins.local_storage import LocalStorage

    storage = LocalStorage(tmp_path / "root")
    for key in ["../x", "/etc/passwd", "a/../../x", "a//b", ".tmp/x", "a\\..\\b"]:
        with pytest.raises(InvalidNameError):
            storage.stat(key)
