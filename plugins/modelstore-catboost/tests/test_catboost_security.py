"""A stored .cbm is untrusted: garbage is a CorruptArtifactError, not a CatBoostError, and a record
cannot point the loader at another file. Hostile files are a real model's bytes, damaged, stored
with a record whose sha256 and size agree."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

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


# --- bit flips that crash catboost ------------------------------------------------------------------

#: Single bit flips (byte offset, bit) of :func:`model`'s 7,160-byte file that crash catboost 1.2.10
#: with SIGSEGV: (6992, 1) in ``load_model``, (6410, 4) and (6891, 4) in the first ``predict``. Found
#: by a bit-flip fuzz, each flipped file loaded in a child process: 87 flips spread over the file
#: (2 crashes), then 400 at random offsets (1 more). The file's layout does not depend on the fit
#: (only its 36-character model_guid differs), so the offsets hold for every fit of :func:`model`.
CRASHING_FLIPS = [(6410, 4), (6992, 1), (6891, 4)]
#: Flips that make catboost raise a JSONDecodeError or a UnicodeDecodeError (its JSON metadata).
RAISING_FLIPS = [(340, 3), (91, 7)]

#: catboost alone on each of the files named on the command line, each in a fork of one process
#: (one import of catboost for all); prints each one's exit status (-11: SIGSEGV).
CATBOOST_ALONE = """
import json, os, sys
import catboost
import numpy as np
statuses = []
for path in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        model = catboost.CatBoostClassifier()
        model.load_model(blob=open(path, "rb").read())
        model.predict_proba(np.zeros((1, 4)))
        os._exit(0)
    statuses.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
print(json.dumps(statuses))
"""


LOAD_ALL = """
import json, sys
import numpy as np
from modelstore_core import CorruptArtifactError, ModelStore
store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/child-cache")
seen = {}
for version in range(2, 2 + int(sys.argv[2])):
    try:
        store.load("m", version=version).predict_proba(np.zeros((1, 4)))
        seen[version] = "loaded"
    except CorruptArtifactError as exc:
        seen[version] = "refused: " + exc.problem
seen[1] = store.load("m", version=1).predict_proba(np.zeros((1, 4))).tolist()
print(json.dumps(seen))
"""


def flipped(data: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


def test_bit_flips_that_crash_catboost_are_refused_in_a_probe_process(tmp_path):
    """catboost alone dies of SIGSEGV on each crashing flip; a load through modelstore, in a child
    process (were the probe to fail, the crash would not take the test down), refuses each one with
    a CorruptArtifactError, and the intact version still loads and predicts."""
    store = open_store(tmp_path)
    original = model()
    store.upload("m", model=original)
    data = store.storage.read(keys.object_key(edit_record(store, "m", 1, lambda doc: None)["files"][0]["sha256"]))[0]
    assert len(data) == 7160, "the model's file changed layout: find crashing flips again (see CRASHING_FLIPS)"
    paths = []
    for offset, bit in CRASHING_FLIPS:
        paths.append(tmp_path / f"flip-{offset}-{bit}.cbm")
        paths[-1].write_bytes(flipped(data, offset, bit))
    alone = subprocess.run([sys.executable, "-c", CATBOOST_ALONE, *map(str, paths)], capture_output=True, text=True, timeout=300)
    statuses = json.loads(alone.stdout.strip().splitlines()[-1])
    assert statuses == [-11] * len(CRASHING_FLIPS), (
        f"{statuses}: not every flip crashes catboost {catboost.__version__}: find crashing flips again"
    )
    for offset, bit in CRASHING_FLIPS + RAISING_FLIPS:
        v = store.upload("m", model=original)  # a version of its own (same bytes: the record is edited below)
        store_bytes(store, v.version, lambda d, offset=offset, bit=bit: flipped(d, offset, bit))
    child = subprocess.run(
        [sys.executable, "-c", LOAD_ALL, str(tmp_path), str(len(CRASHING_FLIPS + RAISING_FLIPS))],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    crashes = {str(2 + i) for i in range(len(CRASHING_FLIPS))}
    assert all(seen[n].startswith("refused: catboost crashed (SIGSEGV)") for n in crashes), seen
    assert all(seen[n].startswith("refused: catboost refused it") for n in seen if n not in crashes | {"1"}), seen
    np.testing.assert_allclose(seen["1"], original.predict_proba(np.zeros((1, 4))))


def test_the_fresh_interpreter_probe_gives_the_same_verdicts(tmp_path):
    """Where the probe cannot be a fork (no fork, or no verdict in time) a fresh interpreter loads
    the file: a crashing flip is a signal there too, a refused one exit 3 with catboost's reason."""
    from modelstore_catboost._persist import REFUSED, probe_in_interpreter

    store = open_store(tmp_path)
    store.upload("m", model=model())
    data = store.storage.read(keys.object_key(edit_record(store, "m", 1, lambda doc: None)["files"][0]["sha256"]))[0]
    assert probe_in_interpreter(flipped(data, *CRASHING_FLIPS[1]), "CatBoostClassifier", "model.cbm")[0] == -11
    status, reason = probe_in_interpreter(flipped(data, *RAISING_FLIPS[1]), "CatBoostClassifier", "model.cbm")
    assert status == REFUSED and "Error" in reason
