"""Weights over ``shard_size`` are stored as Hugging Face-style shards, written, hashed and read
several at once; every shard is verified as it is read, before anything is returned."""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict

import pytest
import safetensors.torch
import torch
from modelstore_torch import SHARD_SIZE
from modelstore_torch.weights import INDEX
from torch import nn

from modelstore_core import ModelStoreError
from modelstore_core.errors import CorruptArtifactError, CorruptRecordError, IntegrityError
from modelstore_core.protocol import keys
from modelstore_core.testing.flavors import stored_objects
from modelstore_core.testing.tamper_contract import edit_record, put

LAYER = 64 * 64 * 4 + 64 * 4  # bytes of one Linear(64, 64)


def stack(layers: int = 5) -> nn.Sequential:
    return nn.Sequential(*(nn.Sequential(nn.Linear(64, 64), nn.Tanh()) for _ in range(layers)))


def shard_names(version) -> list[str]:
    return [f.path for f in version.files if f.path.startswith("model-")]


def stored_object(store, version, name: str):
    [entry] = [f for f in version.files if f.path == name]
    return store.storage.local_path(keys.object_key(entry.sha256))


def flip_last_byte(path) -> None:
    os.chmod(path, 0o644)  # a store's objects are read-only; their owner can still change them
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))


def test_a_sharded_module_round_trips(store, fresh, tmp_path):
    torch.manual_seed(0)
    model = stack()
    v = store.upload("m", model=model, shard_size=2 * LAYER)
    names = shard_names(v)
    assert names == [f"model-{i:05d}-of-{len(names):05d}.safetensors" for i in range(1, len(names) + 1)] and len(names) == 3
    assert {f.path for f in v.files} == {*names, "model.safetensors.index.json"}
    assert v.record.flavor.options["shards"] == names and v.record.flavor.options["weights"] is None
    x = torch.randn(3, 64)
    for target in (stack(), stack, lambda: stack()):
        loaded = fresh().load("m", model=target)
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    state = fresh().load("m", as_state_dict=True)
    assert list(state) == list(model.state_dict())  # the original order, across shards
    # What Hugging Face tools read: the index names every tensor's shard, each shard is plain safetensors.
    out = store.download("m", to=tmp_path / "dl")
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in model.state_dict().values())
    assert set(index["weight_map"]) == set(model.state_dict()) and set(index["weight_map"].values()) == set(names)
    merged = {}
    for name in names:
        merged.update(safetensors.torch.load_file(out / name))
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(merged[name], tensor, rtol=0, atol=0)


def test_a_sharded_state_dict_and_tied_weights_round_trip(store, fresh):
    state = OrderedDict((f"t{i}", torch.randn(100, 50, dtype=dtype)) for i, dtype in enumerate([torch.float32, torch.float16] * 3))
    store.upload("sd", model=state, shard_size=30_000)
    back = fresh().load("sd")
    assert isinstance(back, OrderedDict) and list(back) == list(state)
    for name, tensor in state.items():
        torch.testing.assert_close(back[name], tensor, rtol=0, atol=0)

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(200, 64)
            self.mid = nn.Linear(64, 64)
            self.out = nn.Linear(64, 200, bias=False)
            self.out.weight = self.embed.weight

    model = Tied()
    v = store.upload("tied", model=model, shard_size=LAYER)
    assert len(shard_names(v)) >= 2
    for target in (Tied(), _on_meta(Tied)):
        loaded = fresh().load("tied", model=target)
        assert loaded.out.weight.data_ptr() == loaded.embed.weight.data_ptr()
        torch.testing.assert_close(loaded.embed.weight, model.embed.weight, rtol=0, atol=0)


def _on_meta(factory):
    with torch.device("meta"):
        return factory()


def test_a_meta_skeleton_is_assigned_from_shards(store, fresh):
    torch.manual_seed(1)
    model = stack()
    store.upload("m", model=model, shard_size=LAYER)
    skeleton = _on_meta(stack)
    loaded = fresh().load("m", model=skeleton)
    assert loaded is skeleton and not any(t.is_meta for t in loaded.state_dict().values())
    x = torch.randn(2, 64)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_the_same_model_makes_the_same_shards(store):
    torch.manual_seed(2)
    model = stack()
    first = store.upload("m", model=model, shard_size=2 * LAYER)
    again = store.upload("m", model=model, shard_size=2 * LAYER)
    assert [(f.path, f.sha256) for f in first.files] == [(f.path, f.sha256) for f in again.files]
    assert again.bytes_written == 0


@pytest.mark.parametrize("into", ["instance", "factory", "meta", "state_dict"])
def test_a_corrupted_shard_raises_and_nothing_is_returned(store, fresh, into):
    torch.manual_seed(3)
    model = stack()
    v = store.upload("m", model=model, shard_size=2 * LAYER)
    damaged = shard_names(v)[1]
    flip_last_byte(stored_object(store, v, damaged))
    built = []

    def factory():
        built.append(stack())
        return built[-1]

    options = {
        "instance": {"model": stack()},
        "factory": {"model": factory},
        "meta": {"model": _on_meta(stack)},
        "state_dict": {"as_state_dict": True},
    }
    with pytest.raises(IntegrityError, match=damaged):
        fresh().load("m", **options[into])


def test_a_corrupted_byte_at_the_end_of_a_big_file_raises(store, fresh):
    """One ~9 MiB file (no shards): the last byte is checked by the read that reaches it."""
    model = nn.Linear(1536, 1536)
    v = store.upload("big", model=model)
    assert [f.path for f in v.files] == ["model.safetensors"]
    obj = stored_object(store, v, "model.safetensors")
    flip_last_byte(obj)
    with pytest.raises(IntegrityError, match="model.safetensors"):
        fresh().load("big", model=nn.Linear(1536, 1536))
    with open(obj, "r+b") as f:  # truncated: refused before a byte is parsed
        f.truncate(os.path.getsize(obj) - 10)
    with pytest.raises(IntegrityError, match="model.safetensors"):
        fresh().load("big", model=nn.Linear(1536, 1536))


@pytest.mark.parametrize("size", [0, -5, "1GB", True, 1.5])
def test_shard_size_must_be_a_positive_number_of_bytes(store, size):
    with pytest.raises(ValueError, match="shard_size"):
        store.upload("m", model=stack(1), shard_size=size)


@pytest.mark.parametrize("shards", [[], "model-00001-of-00003.safetensors", ["model.safetensors.index.json"], ["../x.safetensors"], "dup"])
def test_the_record_cannot_name_other_shards(store, fresh, shards):
    v = store.upload("m", model=stack(), shard_size=2 * LAYER)
    if shards == "dup":
        shards = [shard_names(v)[0]] * 2
    edit_record(store, "m", 1, lambda doc: doc["flavor"]["options"].update(shards=shards))
    with pytest.raises((CorruptRecordError, ModelStoreError)):
        fresh().load("m", model=stack())


def test_the_uploads_cache_trusts_its_shards_until_one_changes(store, tmp_path):
    """The first load with the cache of the upload (which proved the shards it wrote: issue 24) reads
    them without hashing; a shard rewritten since, its size and mtime set back, is hashed and refused."""
    torch.manual_seed(4)
    model = stack()
    v = store.upload("m", model=model, shard_size=2 * LAYER)
    x = torch.randn(3, 64)
    torch.testing.assert_close(store.load("m", model=stack())(x), model(x), rtol=0, atol=0)

    v = store.upload("n", model=stack(), shard_size=2 * LAYER)
    damaged = stored_object(store, v, shard_names(v)[1])
    before = os.stat(damaged)
    flip_last_byte(damaged)
    os.utime(damaged, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(damaged).st_size, os.stat(damaged).st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with pytest.raises(IntegrityError, match=shard_names(v)[1]):
        store.load("n", model=stack())


def test_a_fine_tune_stores_only_the_shards_of_the_tensors_it_changed(store, fresh, tmp_path):
    torch.manual_seed(4)
    model = stack(8)
    first = store.upload("m", model=model, shard_size=LAYER)
    shards = shard_names(first)
    assert len(shards) >= 8
    tuned = stack(8)
    tuned.load_state_dict(model.state_dict())
    with torch.no_grad():  # the fine-tune: the last layer's weight only
        tuned[7][0].weight.add_(0.01)
    second = store.upload("m", model=tuned, shard_size=LAYER)
    old = {(f.path, f.sha256) for f in first.files}
    new = [f for f in second.files if (f.path, f.sha256) not in old]
    index = json.loads((store.download("m", version=2, to=tmp_path / "dl") / "model.safetensors.index.json").read_text())
    assert [f.path for f in new] == [index["weight_map"]["7.0.weight"]]
    assert second.bytes_written == new[0].size <= LAYER + 4096
    objects = stored_objects(tmp_path)
    assert len(objects) == len(first.files) + 1
    assert sum(p.stat().st_size for p in objects) == sum(f.size for f in first.files) + new[0].size
    x = torch.randn(3, 64)
    torch.testing.assert_close(fresh().load("m", version=1, model=stack(8))(x), model(x), rtol=0, atol=0)
    torch.testing.assert_close(fresh().load("m", version=2, model=stack(8))(x), tuned(x), rtol=0, atol=0)


def test_by_default_a_40_mib_model_is_three_shards(store, fresh):
    torch.manual_seed(5)
    model = nn.Sequential(*(nn.Linear(1024, 1024, bias=False) for _ in range(10)))  # 4 MiB each
    v = store.upload("m", model=model)
    assert len(shard_names(v)) == 3 and all(f.size <= SHARD_SIZE + 4096 for f in v.files)  # tensor bytes, plus the header
    x = torch.randn(2, 1024)
    torch.testing.assert_close(fresh().load("m", model=nn.Sequential(*(nn.Linear(1024, 1024, bias=False) for _ in range(10))))(x), model(x))


def set_file(store, version, name: str, data: bytes) -> None:
    """Make ``data`` the version's file ``name``: the object and the record's sha256 and size agree."""
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    edit_record(store, "m", version, lambda doc: [f.update(sha256=sha, size=len(data)) for f in doc["files"] if f["path"] == name])


def _edit_index(change):
    def damage(store, index: dict) -> None:
        change(index)
        set_file(store, 1, INDEX, json.dumps(index).encode())

    return damage


def _drop_a_shard(store, index: dict) -> None:
    shard = index["weight_map"]["4.0.weight"]

    def edit(doc):
        doc["files"] = [f for f in doc["files"] if f["path"] != shard]
        doc["flavor"]["options"]["shards"].remove(shard)

    edit_record(store, "m", 1, edit)


def _move(index: dict) -> None:
    index["weight_map"]["4.0.weight"] = index["weight_map"]["0.0.weight"]


@pytest.mark.parametrize(
    "damage,error,check",
    [
        (_drop_a_shard, CorruptArtifactError, "names 2 tensors no file of the version holds"),
        (_edit_index(_move), CorruptArtifactError, "maps tensor '4.0.weight' to"),
        (_edit_index(lambda index: index["weight_map"].pop("4.0.weight")), CorruptArtifactError, "maps tensor '4.0.weight' to 'None'"),
        (
            _edit_index(lambda index: index["weight_map"].update(extra="model-00001-of-00005.safetensors")),
            CorruptArtifactError,
            "no shard holds",
        ),
        (_edit_index(lambda index: index.pop("weight_map")), CorruptArtifactError, "has no weight_map"),
        (lambda store, index: set_file(store, 1, INDEX, b"{not json"), CorruptArtifactError, "is not UTF-8 JSON"),
        (
            lambda store, index: edit_record(store, "m", 1, lambda doc: doc["flavor"]["options"].pop("index")),
            CorruptRecordError,
            "options.index",
        ),
    ],
)
@pytest.mark.parametrize("into", ["instance", "state_dict"])
def test_shards_the_index_or_the_record_leaves_out_are_refused(store, fresh, tmp_path, damage, error, check, into):
    """A version whose shards, index and record disagree (a shard dropped, a tensor mapped elsewhere
    or nowhere, a tensor no shard holds) is refused before anything is returned."""
    v = store.upload("m", model=stack(), shard_size=LAYER)
    assert len(shard_names(v)) == 5
    index = json.loads((store.download("m", to=tmp_path / "dl") / INDEX).read_text())
    damage(store, index)
    with pytest.raises(error, match=check):
        fresh().load("m", **({"model": stack()} if into == "instance" else {"as_state_dict": True}))
