"""statsmodels saves results only as a pickle: such versions load only with trust=True, whatever
the record says, and a hostile pickle runs nothing without it. Hostile files are built from the
real one and stored with a record whose sha256 and size agree."""

from __future__ import annotations

import hashlib
import os
import pickle

import numpy as np
import pytest
import statsmodels.api as sm

from modelstore_core import CorruptArtifactError, CorruptRecordError, UntrustedArtifactError
from modelstore_core.protocol import keys
from modelstore_core.testing.flavors import open_store, run_python_json
from modelstore_core.testing.tamper_contract import edit_record, put

X = sm.add_constant(np.random.default_rng(0).normal(size=(30, 2)))
Y = X @ [1.0, 2.0, 3.0]


def results():
    return sm.OLS(Y, X).fit()


def store_bytes(store, version: int, damage) -> bytes:
    record = edit_record(store, "m", version, lambda doc: None)
    data = damage(store.storage.read(keys.object_key(record["files"][0]["sha256"]))[0])
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    edit_record(store, "m", version, lambda doc: doc["files"][0].update(sha256=sha, size=len(data)))
    return data


class Marker:
    """Unpickling this runs ``os.system`` (what a hostile pickle does): it creates a file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def hostile(marker: str):
    """The real pickle with a payload in front (a pickle stream ends at its first STOP: the payload
    is what loads)."""
    return lambda data: pickle.dumps(Marker(marker), protocol=4) + data


def test_without_trust_the_error_says_why_and_how(tmp_path):
    store = open_store(tmp_path)
    store.upload("m", model=results())
    with pytest.raises(UntrustedArtifactError, match="trust=True"):
        open_store(tmp_path, cache="reader").load("m")


def test_a_record_claiming_safe_changes_nothing(tmp_path):
    store = open_store(tmp_path)
    v = store.upload("m", model=results())
    edit_record(store, "m", v.version, lambda doc: doc["flavor"].update(safe=True))
    with pytest.raises(UntrustedArtifactError):
        open_store(tmp_path, cache="reader").load("m")
    edit_record(store, "m", v.version, lambda doc: doc["flavor"].update(format="json"))
    with pytest.raises(CorruptRecordError, match="flavor.format"):
        open_store(tmp_path, cache="reader2").load("m", trust=True)


def test_hostile_pickle_runs_nothing_without_trust(tmp_path):
    """In a child process: without trust the payload never runs; with trust it does, which is
    exactly what trust=True means."""
    store = open_store(tmp_path)
    v = store.upload("m", model=results())
    marker = tmp_path / "ran"
    store_bytes(store, v.version, hostile(str(marker)))
    seen = run_python_json(
        """
        import json, os, sys
        from modelstore_core import ModelStore, UntrustedArtifactError
        store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/child-cache")
        seen = {}
        try:
            store.load("m")
        except UntrustedArtifactError:
            seen["untrusted"] = "refused"
        seen["ran_without_trust"] = os.path.exists(sys.argv[2])
        store.load("m", trust=True)
        seen["ran_with_trust"] = os.path.exists(sys.argv[2])
        print(json.dumps(seen))
        """,
        cwd=tmp_path,
        args=[tmp_path, marker],
    )
    assert seen == {"untrusted": "refused", "ran_without_trust": False, "ran_with_trust": True}


@pytest.mark.parametrize(
    "damage",
    [lambda data: b"", lambda data: data[: len(data) // 2], lambda data: b"not a pickle" * 10, lambda data: pickle.dumps({"a": 1})[:-1]],
    ids=["empty", "truncated", "garbage", "no-stop"],
)
def test_damaged_pickle_is_a_corrupt_artifact_even_with_trust(tmp_path, damage):
    store = open_store(tmp_path)
    v = store.upload("m", model=results())
    store_bytes(store, v.version, damage)
    with pytest.raises(CorruptArtifactError) as err:
        open_store(tmp_path, cache="reader").load("m", trust=True)
    assert err.value.file == "model.pickle"


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "extras/notes.txt", "notes.txt", None])
def test_record_naming_another_file_is_refused(tmp_path, name):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    store = open_store(tmp_path)
    v = store.upload("m", model=results(), extras=[notes])
    edit_record(store, "m", v.version, lambda doc: doc["flavor"]["options"].update(file=name))
    with pytest.raises(CorruptRecordError, match="flavor.options.file"):
        open_store(tmp_path, cache="reader").load("m", trust=True)
