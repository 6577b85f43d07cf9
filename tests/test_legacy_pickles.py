"""import-legacy's pickle detector, by content (the files are read, never unpickled): every protocol,
compressed streams, ``.npy`` arrays of objects; and the files it must not call pickles. (Imports of
real legacy stores, joblib's compressed files among them, are tested in tests/interop.)"""

from __future__ import annotations

import bz2
import collections
import datetime
import gzip
import json
import lzma
import pickle
import random
import zlib
from pathlib import Path

import numpy as np
import pytest

from modelstore_core.importing import is_pickle

#: real objects, one of a class (pickled by reference to its module: what runs code on load)
OBJECTS = {
    "dict": {"w": [1.0, 2.0], "name": "churn"},
    "ordered": collections.OrderedDict(a=1, b=datetime.date(2024, 3, 1)),
    "large": [float(i) for i in range(30_000)],  # longer than the part of a file that is read
}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_a_pickle_of_any_protocol_is_found_by_content(tmp_path, protocol, kind):
    assert is_pickle(write(tmp_path, "weights.bin", pickle.dumps(OBJECTS[kind], protocol=protocol)))


@pytest.mark.parametrize("compress", [zlib.compress, gzip.compress, bz2.compress, lzma.compress])
@pytest.mark.parametrize("protocol", [0, 1, pickle.HIGHEST_PROTOCOL])
def test_a_compressed_pickle_is_found(tmp_path, compress, protocol):
    assert is_pickle(write(tmp_path, "model.dat", compress(pickle.dumps(OBJECTS["ordered"], protocol=protocol))))
    assert not is_pickle(write(tmp_path, "notes.dat", compress(b"amount > 1000\n" * 100)))


def npy(tmp_path: Path, name: str, array: np.ndarray) -> Path:
    np.save(tmp_path / name, array, allow_pickle=True)
    return tmp_path / name


def test_npy_files_holding_objects_are_pickles(tmp_path):
    objects = np.array([{"w": 1.0}, None, "text"], dtype=object)
    assert is_pickle(npy(tmp_path, "objects.npy", objects))
    fields = np.zeros(2, dtype=[("x", "<f8"), ("payload", object)])
    assert is_pickle(npy(tmp_path, "fields.npy", fields))
    assert not is_pickle(npy(tmp_path, "floats.npy", np.arange(10.0)))
    assert not is_pickle(npy(tmp_path, "records.npy", np.zeros(2, dtype=[("x", "<f8"), ("y", "<i4", (3,))])))


@pytest.mark.parametrize(
    "name, data",
    [
        ("rules.txt", b"amount > 1000"),
        ("empty.bin", b""),
        ("config.json", json.dumps({"layers": [3, 4], "lr": 0.1}).encode()),
        ("table.csv", b"a,b\n1,2\n3,4\n"),
        ("lightgbm.txt", b"tree\nversion=v4\nnum_class=1\n" * 2000),
        ("int.txt", b"I love models" * 10000),
        ("random.bin", random.Random(0).randbytes(200_000)),
    ],
)
def test_other_files_are_not_pickles(tmp_path, name, data):
    assert not is_pickle(write(tmp_path, name, data))
