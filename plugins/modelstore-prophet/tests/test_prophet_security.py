"""A stored Prophet document is untrusted: its shape is checked before model_from_json reads it,
and the numbers that size what predict allocates are bounded.

Hostile documents are a real model's JSON, edited, stored with a record whose sha256 and size
agree (what anyone with write access to the bucket can do)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import pytest
from prophet_models import simple

from modelstore_core import CorruptArtifactError, CorruptRecordError
from modelstore_core.protocol import keys
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.flavors import open_store, run_python_json
from modelstore_core.testing.tamper_contract import edit_record, put


def store_bytes(store, domain: str, version: int, data: bytes) -> None:
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    edit_record(store, domain, version, lambda doc: doc["files"][0].update(sha256=sha, size=len(data)))


def stored_document(store, domain: str, version: int) -> dict:
    record = edit_record(store, domain, version, lambda doc: None)
    return json.loads(store.storage.read(keys.object_key(record["files"][0]["sha256"]))[0])


def setting(key, value):
    return lambda doc: doc.__setitem__(key, value)


def drop_column(name):
    def edit(doc):
        doc["params"][name] = [row[:-1] for row in doc["params"][name]]

    return edit


def embedded(key, change):
    """Edit a pandas object that model_to_json embedded as JSON text."""

    def edit(doc):
        inner = json.loads(doc[key])
        change(inner)
        doc[key] = json.dumps(inner)

    return edit


def seasonality(key, value):
    def edit(doc):
        doc["seasonalities"][1]["weekly"][key] = value

    return edit


CRAFTS = {
    "uncertainty_samples 10**9": setting("uncertainty_samples", 10**9),
    "fourier_order 10**7": seasonality("fourier_order", 10**7),
    "negative period": seasonality("period", -7),
    "unknown growth": setting("growth", "exponential"),
    "negative t_scale": setting("t_scale", -1.0),
    "country_holidays a path": setting("country_holidays", "../../etc/passwd"),
    "a key model_to_json never writes": setting("__reduce__", "os.system"),
    "no params.beta": lambda doc: doc["params"].pop("beta"),
    "beta one column short": drop_column("beta"),
    "delta one column short": drop_column("delta"),
    "k with another number of samples": lambda doc: doc["params"].__setitem__("k", doc["params"]["k"] * 2),
    "history not pandas JSON": setting("history", "not json"),
    "history without y": embedded("history", lambda t: t["schema"].__setitem__("fields", [f for f in t["schema"]["fields"][:1]])),
    "history_dates index and data of other lengths": embedded("history_dates", lambda s: s["data"].pop()),
    "seasonality names not its keys": lambda doc: doc["seasonalities"].__setitem__(0, ["monthly"]),
    "history dates that are not dates": embedded("history", lambda t: t["data"][0].__setitem__("ds", "the day after")),
    "history_dates that are not dates": embedded("history_dates", lambda s: s.__setitem__("data", ["x"] * len(s["data"]))),
    "changepoints that are numbers": embedded("changepoints", lambda s: s.__setitem__("data", [1] * len(s["data"]))),
    "history_dates of a month 99": embedded("history_dates", lambda s: s.__setitem__("data", ["2026-99-01T00:00:00.000"] * len(s["data"]))),
    "not fitted (no history)": setting("history", None),
}


def upload_crafted(tmp_path, craft) -> bytes:
    store = open_store(tmp_path)
    v = store.upload("m", model=simple())
    doc = stored_document(store, "m", v.version)
    craft(doc)
    data = json.dumps(doc).encode()
    store_bytes(store, "m", v.version, data)
    return data


@pytest.mark.parametrize("craft", list(CRAFTS), ids=list(CRAFTS))
def test_crafted_document_is_refused_naming_the_file(tmp_path, craft):
    upload_crafted(tmp_path, CRAFTS[craft])
    with pytest.raises(CorruptArtifactError) as err:
        open_store(tmp_path, cache="reader").load("m")
    assert err.value.file == "model.json"


GARBAGE = {
    "empty": b"",
    "not json": b"model",
    "a list": b"[]",
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "repeated key": b'{"growth": "linear", "growth": "flat"}',
    "not utf-8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("name", list(GARBAGE), ids=list(GARBAGE))
def test_garbage_is_a_corrupt_artifact(tmp_path, name):
    store = open_store(tmp_path)
    v = store.upload("m", model=simple())
    store_bytes(store, "m", v.version, GARBAGE[name])
    with pytest.raises(CorruptArtifactError):
        open_store(tmp_path, cache="reader").load("m")


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "extras/notes.txt", "notes.txt", None])
def test_record_naming_another_file_is_refused(tmp_path, name):
    notes = tmp_path / "notes.txt"
    notes.write_text("{}")
    store = open_store(tmp_path)
    v = store.upload("m", model=simple(), extras=[notes])
    edit_record(store, "m", v.version, lambda doc: doc["flavor"]["options"].update(file=name))
    with pytest.raises(CorruptRecordError, match="flavor.options.file"):
        open_store(tmp_path, cache="reader").load("m")


# --- what the bounds prevent, in a child process ---------------------------------------------

DIRECT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # 3 GiB: the machine is shared
from prophet.serialize import model_from_json
model = model_from_json(open(sys.argv[1]).read())
model.predict(model.make_future_dataframe(periods=30))
print("predicted")
"""


def test_huge_uncertainty_samples_exhaust_memory_directly_but_modelstore_refuses_them(tmp_path):
    data = upload_crafted(tmp_path, CRAFTS["uncertainty_samples 10**9"])
    crafted = tmp_path / "crafted.json"
    crafted.write_bytes(data)
    command = [sys.executable, "-c", textwrap.dedent(DIRECT), str(crafted)]
    direct = subprocess.run(command, capture_output=True, text=True, timeout=HANG_TIMEOUT)
    # predict asks for 10**9 samples of each of 90 rows: far past any memory (here, the 3 GiB cap).
    assert direct.returncode != 0 and "MemoryError" in direct.stderr, (direct.returncode, direct.stdout, direct.stderr[-2000:])
    with pytest.raises(CorruptArtifactError, match="uncertainty_samples"):
        open_store(tmp_path, cache="reader").load("m")


def test_hostile_documents_never_crash_the_loading_process(tmp_path):
    store = open_store(tmp_path)
    domains = []
    for i, craft in enumerate(CRAFTS.values()):
        v = store.upload(f"c{i}", model=simple())
        doc = stored_document(store, f"c{i}", v.version)
        craft(doc)
        store_bytes(store, f"c{i}", v.version, json.dumps(doc).encode())
        domains.append(f"c{i}")
    for i, data in enumerate(GARBAGE.values()):
        v = store.upload(f"g{i}", model=simple())
        store_bytes(store, f"g{i}", v.version, data)
        domains.append(f"g{i}")
    seen = run_python_json(
        """
        import json, sys
        from modelstore_core import CorruptArtifactError, ModelStore
        store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/child-cache")
        seen = {}
        for domain in json.loads(sys.argv[2]):
            try:
                store.load(domain)
                seen[domain] = "loaded"
            except CorruptArtifactError:
                seen[domain] = "refused"
        print(json.dumps(seen))
        """,
        cwd=tmp_path,
        args=[tmp_path, json.dumps(domains)],
    )
    assert seen == dict.fromkeys(domains, "refused")
