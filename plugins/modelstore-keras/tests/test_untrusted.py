"""A store is untrusted input: ``.keras`` zips and records crafted from a real upload by someone
with write access to the bucket (object bytes and record sha256 kept consistent) are refused with
a CorruptArtifactError naming the file and the check, before Keras opens the zip."""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import keras
import numpy as np
import pytest

from modelstore_core import CorruptArtifactError, CorruptRecordError, ModelStore
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.tamper_contract import edit_record, put

MIB = 2**20
X = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")


def model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])


def replace_model_file(store: ModelStore, domain: str, version: int, data: bytes) -> None:
    """Make ``data`` the version's model file: the object and the record's sha256 and size agree."""
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    edit_record(store, domain, version, lambda doc: doc["files"][0].update(sha256=sha, size=len(data)))


@pytest.fixture
def uploaded(store, tmp_path):
    """A real model stored as version 1 (to be damaged) and 2 (kept), and its ``.keras`` bytes."""
    m = model()
    store.upload("k", model=m)
    store.upload("k", model=m)
    return m, (store.download("k", version=1, to=tmp_path / "dl") / "model.keras").read_bytes()


def rezip(data: bytes, replace: dict | None = None, add: list | None = None, method=zipfile.ZIP_STORED) -> bytes:
    """``data``'s entries rewritten: ``replace`` maps a name to new contents (written with ``method``),
    ``add`` lists ``(name, contents, method)`` appended; contents may be an iterable of chunks."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        items = [(i.filename, (replace or {}).get(i.filename, src.read(i)), method if i.filename in (replace or {}) else i.compress_type)
                 for i in src.infolist()]  # fmt: skip
        for name, contents, how in items + list(add or []):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = how
            with dst.open(info, "w") as w:
                for chunk in [contents] if isinstance(contents, bytes) else contents:
                    w.write(chunk)
    return out.getvalue()


def padded_config(data: bytes, pad: int) -> list[bytes]:
    """config.json followed by ``pad`` bytes of whitespace (still valid JSON, still the same model), in chunks."""
    config = zipfile.ZipFile(io.BytesIO(data)).read("config.json")
    return [config, *(b" " * MIB for _ in range(pad // MIB))]


def overlapping(data: bytes) -> bytes:
    """The first entry's (stored) data stretched over the second entry, which it then contains."""
    first, second, third = sorted(zipfile.ZipFile(io.BytesIO(data)).infolist(), key=lambda i: i.header_offset)[:3]
    start = first.header_offset + 30 + len(first.filename)
    body = data[start : third.header_offset]
    cd = data.index(b"PK\x01\x02" + data[data.index(b"PK\x01\x02") + 4 : data.index(b"PK\x01\x02") + 16])  # the first central header
    assert data[cd + 46 : cd + 46 + len(first.filename)] == first.filename.encode()
    patched = struct.pack("<III", zlib.crc32(body), len(body), len(body))
    return data[: cd + 16] + patched + data[cd + 28 :]


def _many(n: int, size: int, method=zipfile.ZIP_DEFLATED, name="assets/pad/{}"):
    return lambda d: rezip(d, add=[(name.format(i), bytes(size), method) for i in range(n)])


DAMAGES = [
    pytest.param(lambda d: rezip(d, {"config.json": padded_config(d, 2 * MIB)}, method=zipfile.ZIP_DEFLATED), "compression ratio over 100",
                 id="config-ratio"),
    pytest.param(lambda d: rezip(d, {"config.json": padded_config(d, 17 * MIB)}), "over the 16777216 byte limit", id="config-size-stored"),
    pytest.param(lambda d: rezip(d, {"model.weights.h5": zipfile.ZipFile(io.BytesIO(d)).read("model.weights.h5") + bytes(4 * MIB)},
                                 method=zipfile.ZIP_DEFLATED), "compression ratio", id="weights-ratio"),
    pytest.param(_many(100, MIB), "bytes in all", id="entries-total"),  # each 1 MiB (under the ratio floor), 100 MiB together
    pytest.param(_many(10_001, 0, zipfile.ZIP_STORED), "10004 entries, over the limit", id="entry-count"),
    pytest.param(_many(80, 0, zipfile.ZIP_STORED, "assets/{}" + "x" * 60_000), "central directory", id="central-directory-size"),
    pytest.param(lambda d: rezip(d, add=[("config.json", zipfile.ZipFile(io.BytesIO(d)).read("config.json"), 0)]), "appears twice",
                 id="duplicate-name"),
    pytest.param(lambda d: rezip(d, add=[("assets/../../escape.txt", b"x", 0)]), "not a plain relative path", id="dotdot-name"),
    pytest.param(lambda d: rezip(d, add=[("/tmp/escape.txt", b"x", 0)]), "not a plain relative path", id="absolute-name"),
    pytest.param(lambda d: rezip(d, {"config.json": padded_config(d, 0)}, method=zipfile.ZIP_BZIP2), "compression method 12", id="bzip2"),
    pytest.param(lambda d: rezip(d, {"config.json": b'{"class_name": '}), "config.json' is not JSON", id="config-not-json"),
    pytest.param(overlapping, "overlaps the entry before it", id="overlapping-entries"),
]  # fmt: skip


@pytest.mark.parametrize("damage,check", DAMAGES)
def test_a_crafted_archive_is_refused_before_keras_opens_it(store, fresh, uploaded, damage, check):
    m, data = uploaded
    replace_model_file(store, "k", 1, damage(data))
    with pytest.raises(CorruptArtifactError, match=check) as err:
        fresh().load("k", version=1)
    assert err.value.file == "model.keras"
    np.testing.assert_allclose(fresh().load("k", version=2).predict(X, verbose=0), m.predict(X, verbose=0), rtol=1e-6)


CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    from modelstore_core import CorruptArtifactError, ModelStore

    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/cache-child")
    store.load("k", version=2)  # Keras imported and warm before measuring
    store.download("k", version=1, to=sys.argv[1] + "/warm")  # the bomb fetched and verified before measuring
    before, start = peak(), time.process_time()  # CPU seconds: what parsing costs, whatever else runs on the machine
    try:
        store.load("k", version=1)
        result = "loaded"
    except Exception as exc:
        result = ("refused: " if isinstance(exc, CorruptArtifactError) else type(exc).__name__ + ": ") + str(exc)
    print(json.dumps({"result": result, "cpu_seconds": time.process_time() - start, "growth": peak() - before}))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak RSS from /proc")
def test_a_config_json_bomb_is_refused_fast_and_in_bounded_memory(store, uploaded, tmp_path):
    """config.json padded to 200 MiB of whitespace, deflated to ~200 KB: Keras read and parsed it
    (about 20 s and +400 MB); now refused from the zip's directory alone, in a child process."""
    bomb = rezip(uploaded[1], {"config.json": padded_config(uploaded[1], 200 * MIB)}, method=zipfile.ZIP_DEFLATED)
    assert len(bomb) < 400_000
    replace_model_file(store, "k", 1, bomb)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True, timeout=HANG_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert out["result"].startswith("refused") and "config.json" in out["result"], out
    assert out["cpu_seconds"] < 2 and out["growth"] < 16 * MIB, out


@pytest.mark.parametrize("name", ["extras/other.keras", "../../../../other.keras", "/etc/passwd", None])
def test_the_record_cannot_name_another_file(store, fresh, tmp_path, name):
    """flavor.options.file names a file: only the version's verified model files are read."""
    m = model()
    other = tmp_path / "other.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="zeros")]).save(other)
    (tmp_path / "cache-1").mkdir()  # the cache of the first fresh() store: four levels above the cached version
    (tmp_path / "cache-1" / "other.keras").write_bytes(other.read_bytes())
    store.upload("k", model=m, extras=[other])
    edit_record(store, "k", 1, lambda doc: doc["flavor"]["options"].update(file=name))
    with pytest.raises(CorruptRecordError, match=r"flavor\.options\.file"):
        fresh().load("k", version=1)
    edit_record(store, "k", 1, lambda doc: doc["flavor"]["options"].update(file="model.keras"))
    np.testing.assert_allclose(fresh().load("k", version=1).predict(X, verbose=0), m.predict(X, verbose=0), rtol=1e-6)


# --- a config that asks for more than the weights hold ------------------------------------------


class Square(keras.layers.Layer):
    """A layer class that is not registered: Keras finds it only through ``custom_objects``."""

    def call(self, x):
        return keras.ops.square(x)


def widened(data: bytes, units: int) -> bytes:
    """``data`` with every Dense layer of its config.json asking for ``units`` units (and the layers
    after the first built for that input width): the weights file still holds the saved sizes."""
    config = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("config.json"))
    dense = [layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense"]
    for n, layer in enumerate(dense):
        layer["config"]["units"] = units
        if n:
            layer["build_config"]["input_shape"] = [None, units]
    return rezip(data, {"config.json": json.dumps(config).encode()})


LIMITED = textwrap.dedent(
    """
    import json, resource, sys, time
    import keras
    from modelstore_core import CorruptArtifactError, ModelStore

    class Square(keras.layers.Layer):
        def call(self, x):
            return keras.ops.square(x)

    def status(field):
        return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field + ":"))

    store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/cache-child")
    options = {"custom_objects": {"Square": Square}} if sys.argv[2] == "custom" else {}
    store.load("w", version=2, **options)  # Keras imported and warm; the crafted file fetched and verified next
    store.download("w", version=1, to=sys.argv[1] + "/warm")
    # 1 GiB of address space beyond what the process holds now: the crafted config's first 30000 x 30000
    # kernel alone is 3.6 GB
    limit = status("VmSize") + 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    before, start = status("VmHWM"), time.perf_counter()
    try:
        store.load("w", version=1, **options)
        result = "loaded"
    except Exception as exc:
        result = ("refused: " if isinstance(exc, CorruptArtifactError) else type(exc).__name__ + ": ") + str(exc)
    print(json.dumps({"result": result, "seconds": time.perf_counter() - start, "growth": status("VmHWM") - before}))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="address space from /proc")
@pytest.mark.parametrize("custom", [False, True], ids=["keras-layers", "with-custom-objects"])
def test_a_config_wider_than_its_weights_is_refused_before_keras_builds_it(store, tmp_path, custom):
    """Dense layers of 4 units edited to 30000 in config.json (the weights file unchanged): Keras
    allocated 10.8 GB of variables before it read a weight. Now the model is built on the meta
    device first and refused, in a child process whose address space is capped 1 GiB above what it
    holds. With a layer class only ``custom_objects`` names, the layers Keras knows are still sized."""
    keras.utils.set_random_seed(0)
    layers = [Square()] if custom else []
    wide = keras.Sequential([keras.Input((4,)), *layers, *[keras.layers.Dense(4) for _ in range(4)]])
    store.upload("w", model=wide)
    store.upload("w", model=wide)
    data = (store.download("w", version=1, to=tmp_path / "dl") / "model.keras").read_bytes()
    replace_model_file(store, "w", 1, widened(data, 30_000))
    proc = subprocess.run([sys.executable, "-c", LIMITED, str(tmp_path), "custom" if custom else "plain"], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert out["result"].startswith("refused") and "10800960000 bytes" in out["result"], out
    assert out["growth"] < 64 * MIB, out
