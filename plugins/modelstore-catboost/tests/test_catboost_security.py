"""A stored .cbm is untrusted: garbage is a CorruptArtifactError, not a CatBoostError, and a record
cannot point the loader at another file. Hostile files are a real model's bytes, damaged, stored
with a record whose sha256 and size agree."""

from __future__ import annotations

import hashlib

import catboost
import numpy as np
import pytest

from modelstore_core import CorruptArtifactError, CorruptRecordError
from modelstore_core.protocol import keys
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import edit_record, put

X = np.random.RandomState(0).rand(100, 4)
Y = (X[:, 0] > 0.5).astype(int)


def model():
    return catboost.CatBoostClassifier(iterations=5, depth=2, verbose=0, allow_writing_files=False, thread_count=1).fit(X, Y)


def store_bytes(store, version: int, damage) -> None:
    record = edit_record(store, "m", version, lambda doc: None)
    data = damage(store.storage.read(keys.object_key(record["files"][0]["sha256"]))[0])
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    edit_record(store, "m", version, lambda doc: doc["files"][0].update(sha256=sha, size=len(data)))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: b"",
        lambda data: data[:4],
        lambda data: data[:64],
        lambda data: data[: len(data) // 2],
        lambda data: b"XXXX" + data[4:],
        lambda data: b"not a model" * 100,
    ],
    ids=["empty", "magic-only", "64-bytes", "half", "bad-magic", "garbage"],
)
def test_damaged_cbm_is_a_corrupt_artifact(tmp_path, damage):
    store = open_store(tmp_path)
    v = store.upload("m", model=model())
    store_bytes(store, v.version, damage)
    with pytest.raises(CorruptArtifactError) as err:
        open_store(tmp_path, cache="reader").load("m")
    assert err.value.file == "model.cbm"


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "extras/notes.txt", "notes.txt", None])
def test_record_naming_another_file_is_refused(tmp_path, name):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    store = open_store(tmp_path)
    v = store.upload("m", model=model(), extras=[notes])
    edit_record(store, "m", v.version, lambda doc: doc["flavor"]["options"].update(file=name))
    with pytest.raises(CorruptRecordError, match="flavor.options.file"):
        open_store(tmp_path, cache="reader").load("m")
