"""A store is untrusted input: files and records crafted from real uploads by someone with write
access to the bucket (object bytes and record sha256 kept consistent) are refused with a typed
error naming the file and the check, before transformers reads them, and no code from the store
runs."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import struct

import pytest
import safetensors.torch
import torch
import transformers
from modelstore_transformers import checks
from tiny_transformers import TEXTS

from modelstore_core import CorruptArtifactError, CorruptRecordError, ModelStore, ModelStoreError
from modelstore_core.protocol import keys
from modelstore_core.testing.flavors import open_store, run_python_json
from modelstore_core.testing.tamper_contract import edit_record, put


def set_file(store: ModelStore, domain: str, version: int, path: str, data: bytes, *, rename: str | None = None) -> None:
    """Make ``data`` the version's file ``path`` (added if the record has none; renamed to
    ``rename`` if given): the object and the record's sha256 and size agree."""
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)

    def edit(doc):
        entry = {"path": rename or path, "size": len(data), "sha256": sha}
        doc["files"] = [f for f in doc["files"] if f["path"] != path] + [entry]

    edit_record(store, domain, version, edit)


def read(store: ModelStore, domain: str, version: int, path: str, tmp_path) -> bytes:
    return (store.download(domain, version=version, to=tmp_path / f"dl-{domain}-{version}") / path).read_bytes()


class Payload:
    """Unpickling it creates a file: stands in for any code a pickle can run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def logits(model, tokenizer):
    with torch.no_grad():
        return model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits


@pytest.fixture(scope="module")
def uploaded_once(tiny, tmp_path_factory):
    """A store holding the tiny classifier as versions 1 and 2 of "m", uploaded once for the module
    (an upload of a transformers model costs about half a CPU second)."""
    root = tmp_path_factory.mktemp("uploaded")
    store = open_store(root)
    store.upload("m", model=tiny["model"])
    store.upload("m", model=tiny["model"])
    return root / "store"


@pytest.fixture
def uploaded(store, tiny, uploaded_once, tmp_path):
    """The tiny classifier as versions 1 (to be damaged) and 2 (kept) of "m": the test's own copy
    of :func:`uploaded_once`, in the store of the ``store`` fixture (``tmp_path / "store"``)."""
    shutil.copytree(uploaded_once, tmp_path / "store", dirs_exist_ok=True)
    return tiny["model"]


def _json_edit(change):
    def make(data: bytes) -> bytes:
        doc = json.loads(data)
        change(doc)
        return json.dumps(doc).encode()

    return make


def _safetensors_edit(change):
    def make(data: bytes) -> bytes:
        (n,) = struct.unpack("<Q", data[:8])
        header, body = json.loads(data[8 : 8 + n]), data[8 + n :]
        out = change(header, body)
        raw = json.dumps(out[0]).encode() if isinstance(out, tuple) else out
        return struct.pack("<Q", len(raw)) + raw + (out[1] if isinstance(out, tuple) else b"")

    return make


def _overlap(header, body):
    name = next(k for k in header if k != "__metadata__" and header[k]["shape"] == [14, 16])  # the word embeddings
    header.update({f"copy{i}": dict(header[name]) for i in range(50)})
    return header, body


DAMAGED_FILES = [
    pytest.param("config.json", lambda d: b"{not json", "not valid UTF-8 JSON", id="config-not-json"),
    pytest.param("config.json", lambda d: b"[]", "not a JSON object", id="config-not-an-object"),
    pytest.param("config.json", lambda d: d[:-2] + b',"model_type": "gpt2"}', "repeats a key", id="config-duplicate-key"),
    pytest.param("config.json", lambda d: d[:-2] + b',"x": NaN}', "NaN", id="config-nan"),
    pytest.param("config.json", lambda d: d + b" " * (16 * 2**20), "over the 16777216 byte limit", id="config-too-big"),
    pytest.param("config.json", _json_edit(lambda c: c.update(model_type="gpt2")), "but the record says", id="config-other-model"),
    pytest.param("config.json", _json_edit(lambda c: c.update(num_labels=10**10)), "num_labels", id="config-labels"),
    pytest.param("config.json", _json_edit(lambda c: c.update(num_hidden_layers=10**8)), "num_hidden_layers", id="config-layers"),
    pytest.param(
        "config.json", _json_edit(lambda c: c.update(text_config={"num_layers": 2000})), r"text_config\.num_layers", id="nested-layers"
    ),  # fmt: skip
    pytest.param(
        "config.json",
        _json_edit(lambda c: c.update(hidden_size=8192, intermediate_size=32768, num_hidden_layers=24, num_attention_heads=64)),
        "describes a model of",
        id="config-huge-model",
    ),  # fmt: skip
    pytest.param("model.safetensors", lambda d: struct.pack("<Q", 2**63) + d[8:], "header too large", id="huge-header"),
    pytest.param("model.safetensors", lambda d: d[:-4], "not valid safetensors", id="truncated-weights"),
    pytest.param("model.safetensors", _safetensors_edit(_overlap), "not valid safetensors", id="overlapping-tensors"),
]


@pytest.mark.parametrize("path,damage,check", DAMAGED_FILES)
def test_a_damaged_file_is_refused_with_a_typed_error(store, fresh, uploaded, tiny, tmp_path, path, damage, check):
    set_file(store, "m", 1, path, damage(read(store, "m", 1, path, tmp_path)))
    with pytest.raises(CorruptArtifactError, match=check) as err:
        fresh().load("m", version=1)
    assert err.value.file.endswith(path)
    torch.testing.assert_close(logits(fresh().load("m", version=2), tiny["tokenizer"]), logits(uploaded, tiny["tokenizer"]), rtol=0, atol=0)


def test_pickled_weights_are_never_unpickled(store, fresh, uploaded, tmp_path):
    """pytorch_model.bin in place of model.safetensors (a real torch.save, carrying a payload):
    refused by its name, with or without trust=True, and the payload never runs."""
    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    torch.save({**uploaded.state_dict(), "payload": Payload(marker)}, buffer)
    set_file(store, "m", 1, "model.safetensors", buffer.getvalue(), rename="pytorch_model.bin")
    for trust in (False, True):
        with pytest.raises(CorruptArtifactError, match="pickle-based weights") as err:
            fresh().load("m", version=1, trust=trust)
        assert err.value.file == "pytorch_model.bin"
    assert not marker.exists()
    torch.load(io.BytesIO(buffer.getvalue()), weights_only=False)  # the payload is live: unpickling would have run it
    assert marker.exists()


def test_custom_code_is_never_imported(store, fresh, uploaded, tmp_path):
    """A config naming custom code (auto_map) and the Python file it names: refused, the file never imported."""
    marker = tmp_path / "imported"
    code = f"open({str(marker)!r}, 'w').close()\nfrom transformers import BertForSequenceClassification as Mine\n".encode()
    set_file(store, "m", 1, "config.json", _json_edit(lambda c: c.update(auto_map={"AutoModelForSequenceClassification": "mine.Mine"}))(
        read(store, "m", 1, "config.json", tmp_path)))  # fmt: skip
    with pytest.raises(CorruptArtifactError, match="auto_map") as err:
        fresh().load("m", version=1, trust=True)
    assert err.value.file == "config.json" and "trust_remote_code" in str(err.value)
    set_file(store, "m", 1, "mine.py", code)
    with pytest.raises(CorruptArtifactError, match="is code"):
        fresh().load("m", version=1, trust=True)
    assert not marker.exists()


def test_a_tokenizer_config_naming_custom_code_is_refused(store, fresh, tiny, tmp_path):
    store.upload("tok", model=tiny["tokenizer"])
    edit = _json_edit(lambda c: c.update(auto_map={"AutoTokenizer": ["mine.MyTokenizer", None]}))
    set_file(store, "tok", 1, "tokenizer_config.json", edit(read(store, "tok", 1, "tokenizer_config.json", tmp_path)))
    with pytest.raises(CorruptArtifactError, match="auto_map") as err:
        fresh().load("tok")
    assert err.value.file == "tokenizer_config.json"


@pytest.mark.parametrize(
    "damage,error,check",
    [
        pytest.param(lambda d: b"{nope", CorruptArtifactError, "tokenizer.json is not a valid model file", id="not-json"),
        pytest.param(lambda d: b" " * 2**20 + d, CorruptArtifactError, "over the 1048576 byte limit", id="too-big"),  # limit lowered below
        pytest.param(_json_edit(lambda t: t["model"]["vocab"].update({"[UNK]": 2**62})), ModelStoreError, "expected u32", id="id-overflow"),
        pytest.param(_json_edit(lambda t: t["model"].update(type="Nope")), ModelStoreError, "could not load the tok", id="unknown-model"),
    ],
)  # fmt: skip
def test_a_damaged_tokenizer_json_fails_typed(store, fresh, tiny, tmp_path, monkeypatch, damage, error, check):
    """What the checks cannot know (the tokenizers crate's own rules) still comes back as a ModelStoreError."""
    monkeypatch.setattr(checks, "MAX_TOKENIZER_JSON", 2**20)  # 128 MiB in use: a test file that size would only slow CI
    store.upload("tok", model=tiny["tokenizer"])
    set_file(store, "tok", 1, "tokenizer.json", damage(read(store, "tok", 1, "tokenizer.json", tmp_path)))
    with pytest.raises(error, match=check):
        fresh().load("tok")


@pytest.mark.parametrize("shard", ["../../../../other.safetensors", "/etc/passwd", "missing.safetensors", 7])
def test_a_shard_index_cannot_name_files_outside_the_version(store, fresh, uploaded, tmp_path, shard):
    """transformers joins the index's file names to the folder: only the version's own shards may be named."""
    other = tmp_path / "other.safetensors"
    other.write_bytes(read(store, "m", 1, "model.safetensors", tmp_path))
    index = {"metadata": {}, "weight_map": {name: shard for name in uploaded.state_dict()}}
    set_file(store, "m", 1, "model.safetensors.index.json", json.dumps(index).encode())
    with pytest.raises(CorruptArtifactError, match="not a .safetensors file of this folder") as err:
        fresh().load("m", version=1)
    assert err.value.file == "model.safetensors.index.json"


@pytest.mark.parametrize(
    "option,value,field",
    [
        ("kind", "module", "kind"),
        ("kind", None, "kind"),
        ("auto_class", "pipeline", "auto_class"),
        ("auto_class", "AutoModelForCausalLM.from_pretrained", "auto_class"),
        ("auto_class", ["AutoModel"], "auto_class"),
    ],
)
def test_record_options_are_checked(store, fresh, uploaded, option, value, field):
    edit_record(store, "m", 1, lambda doc: doc["flavor"]["options"].update({option: value}))
    with pytest.raises(CorruptRecordError, match=rf"flavor\.options\.{field}"):
        fresh().load("m", version=1)


def test_a_pipeline_record_is_checked(store, fresh, tiny):
    store.upload("p", model=tiny["classifier"])
    edit_record(store, "p", 1, lambda doc: doc["flavor"]["options"].update(task="exec"))
    with pytest.raises(CorruptRecordError, match=r"flavor\.options\.task"):
        fresh().load("p")
    edit_record(store, "p", 1, lambda doc: doc["flavor"]["options"].update(task="text-classification"))
    edit_record(store, "p", 1, lambda doc: doc["files"].append(dict(doc["files"][0], path="elsewhere/config.json")))
    with pytest.raises(CorruptRecordError, match=r"outside a pipeline"):
        fresh().load("p")


def test_damaged_weights_fail_typed_in_a_child_process(store, uploaded, tmp_path):
    """The crash check: a child process loads each damaged file; it must exit normally with the typed
    error (no segfault in compiled code, no allocation that gets it killed)."""
    data = read(store, "m", 1, "model.safetensors", tmp_path)
    damaged = [struct.pack("<Q", 2**63) + data[8:], _safetensors_edit(_overlap)(data), data[:8] + b"{" * (len(data) - 8)]
    for i, bad in enumerate(damaged):
        store.upload("m", model=uploaded)
        set_file(store, "m", 3 + i, "model.safetensors", bad)
    huge = _json_edit(lambda c: c.update(hidden_size=16384, intermediate_size=65536, num_hidden_layers=48, num_attention_heads=128))
    store.upload("m", model=uploaded)  # version 6: a config describing ~600 GiB beside 20 KB of weights
    set_file(store, "m", 6, "config.json", huge(read(store, "m", 6, "config.json", tmp_path)))
    out = run_python_json(
        """
        import json, sys
        from modelstore_core import ModelStore, ModelStoreError
        store = ModelStore(sys.argv[1] + "/store", cache_dir=sys.argv[1] + "/cache-child")
        results = []
        for version in (3, 4, 5, 6):
            try:
                store.load("m", version=version)
                results.append("loaded")
            except ModelStoreError as exc:
                results.append(type(exc).__name__ + ": " + str(exc))
        print(json.dumps(results))
        """,
        tmp_path,
        args=[tmp_path],
    )
    assert all(r.startswith("CorruptArtifactError: model.safetensors") for r in out[:3]), out
    assert out[3].startswith("CorruptArtifactError: config.json") and "describes a model of" in out[3], out


# --- a sharded version: the index and the shards it names must agree ----------------------------


@pytest.fixture
def sharded(store):
    """A GPT-2 of four blocks as version 1 of "gpt", in shards of at most 64 KB; returns its state dict."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=4, n_embd=64, n_head=2, vocab_size=500, n_positions=32)
    model = transformers.GPT2LMHeadModel(config).eval()
    v = store.upload("gpt", model=model, shard_size=64_000)
    assert sum(f.path.endswith(".safetensors") for f in v.files) >= 10
    return model.state_dict()


INDEX = "model.safetensors.index.json"


def _as_uploaded(store, tmp_path):
    """Version 1's folder, downloaded once before any damage."""
    folder = tmp_path / "as-uploaded"
    return folder if folder.exists() else store.download("gpt", version=1, to=folder)


def _index(store, tmp_path) -> dict:
    return json.loads((_as_uploaded(store, tmp_path) / INDEX).read_text())


def _shard(store, tmp_path, name: str) -> dict:
    return safetensors.torch.load_file(_as_uploaded(store, tmp_path) / name)


def _move_a_tensor_in_the_index(store, tmp_path):
    index = _index(store, tmp_path)
    files = sorted(set(index["weight_map"].values()))
    index["weight_map"]["transformer.h.3.attn.c_attn.weight"] = next(
        f for f in files if f != index["weight_map"]["transformer.h.3.attn.c_attn.weight"]
    )
    set_file(store, "gpt", 1, INDEX, json.dumps(index).encode())


def _drop_a_tensor_from_the_index(store, tmp_path):
    index = _index(store, tmp_path)
    del index["weight_map"]["transformer.h.3.attn.c_attn.weight"]
    set_file(store, "gpt", 1, INDEX, json.dumps(index).encode())


def _store_a_tensor_twice(store, tmp_path):
    """A second shard also holds a tensor of the first (the one the index names stays as it was)."""
    weight_map = _index(store, tmp_path)["weight_map"]
    home = weight_map["transformer.h.3.attn.c_attn.weight"]
    other = next(f for f in sorted(set(weight_map.values())) if f != home)
    tensors = _shard(store, tmp_path, other)
    tensors["transformer.h.3.attn.c_attn.weight"] = torch.zeros_like(_shard(store, tmp_path, home)["transformer.h.3.attn.c_attn.weight"])
    set_file(store, "gpt", 1, other, safetensors.torch.save(tensors, metadata={"format": "pt"}))


def _drop_a_shard_from_the_record(store, tmp_path):
    shard = _index(store, tmp_path)["weight_map"]["transformer.h.3.attn.c_attn.weight"]
    edit_record(store, "gpt", 1, lambda doc: doc.update(files=[f for f in doc["files"] if f["path"] != shard]))


def _drop_a_tensor_from_shard_and_index(store, tmp_path):
    """Shards and index agree, but a weight of the model is in neither: transformers would make it up."""
    index = _index(store, tmp_path)
    shard = index["weight_map"].pop("transformer.h.3.attn.c_attn.weight")
    tensors = _shard(store, tmp_path, shard)
    del tensors["transformer.h.3.attn.c_attn.weight"]
    set_file(store, "gpt", 1, shard, safetensors.torch.save(tensors, metadata={"format": "pt"}))
    set_file(store, "gpt", 1, INDEX, json.dumps(index).encode())


@pytest.mark.parametrize(
    "damage,file,check",
    [
        (_move_a_tensor_in_the_index, INDEX, "which does not hold it"),
        (_drop_a_tensor_from_the_index, INDEX, "does not map tensor 'transformer.h.3.attn.c_attn.weight'"),
        (_store_a_tensor_twice, INDEX, "holds it too"),
        (_drop_a_shard_from_the_record, INDEX, "not a .safetensors file of this folder"),
        (_drop_a_tensor_from_shard_and_index, INDEX, r"holds no tensor for 1 weights .*transformer\.h\.3\.attn\.c_attn\.weight"),
    ],
)
def test_a_sharded_version_whose_index_and_shards_disagree_is_refused(store, fresh, sharded, tmp_path, damage, file, check):
    fresh().load("gpt", version=1)  # as uploaded, it loads
    damage(store, tmp_path)
    with pytest.raises(CorruptArtifactError, match=check) as err:
        fresh().load("gpt", version=1)
    assert err.value.file == file
