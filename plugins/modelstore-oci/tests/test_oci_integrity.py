"""Every pulled byte is verified: a layer, config or manifest edited in the registry's storage, or a
manifest that swaps a layer for another blob, is refused with a ModelStoreError and nothing is committed."""

from __future__ import annotations

import json

import pytest
from conftest import manifest_of, open_store, put_blob, put_manifest

from modelstore_core.errors import ModelStoreError


@pytest.fixture
def pushed(tmp_path, repo):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "model.bin").write_bytes(bytes(range(256)) * 400)
    (tmp_path / "in" / "config.json").write_text('{"layers": 3}')
    store = open_store(tmp_path, "a")
    store.upload("churn", files=[tmp_path / "in" / "model.bin", tmp_path / "in" / "config.json"])
    store.upload("churn", files=[tmp_path / "in" / "config.json"])
    store.push("churn", repo, 1, plain_http=True)
    store.push("churn", repo, 2, plain_http=True)
    return store, manifest_of(repo, "1")


def layer(manifest: dict, path: str) -> dict:
    return next(entry for entry in manifest["layers"] if entry["annotations"]["org.cncf.model.filepath"] == path)


def flip(path, at: int) -> bytes:
    data = bytearray(path.read_bytes())
    original = bytes(data)
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))
    return original


def refused(tmp_path, ref: str, match: str) -> None:
    target = open_store(tmp_path, "b")
    with pytest.raises(ModelStoreError, match=match):
        target.pull(ref, plain_http=True)
    assert target.list_domains() == []
    assert not (tmp_path / "b" / "objects").exists() or not any(p.is_file() for p in (tmp_path / "b" / "objects").rglob("*"))


@pytest.mark.parametrize("what", ["layer", "config", "record"])
def test_an_edited_blob_is_refused(tmp_path, pushed, repo, registry, what):
    _, manifest = pushed
    digest = {
        "layer": lambda: layer(manifest, "model.bin")["digest"],
        "config": lambda: manifest["config"]["digest"],
        "record": lambda: layer(manifest, ".modelstore/version.json")["digest"],
    }[what]()
    blob = registry.blob_path(digest)
    original = flip(blob, blob.stat().st_size // 2)
    try:
        refused(tmp_path, f"{repo}:1", "corrupted|hash")
    finally:
        blob.write_bytes(original)
    assert open_store(tmp_path, "c").pull(f"{repo}:1", plain_http=True).version == 1  # restored: it pulls


def test_an_edited_manifest_is_refused_by_tag_and_by_digest(tmp_path, pushed, repo, registry):
    store, manifest = pushed
    digest = store.push("churn", repo, 1, plain_http=True)
    blob = registry.blob_path(digest)
    original = blob.read_bytes()
    blob.write_bytes(original.replace(b'"org.opencontainers.image.title":"churn"', b'"org.opencontainers.image.title":"churm"'))
    assert blob.read_bytes() != original
    try:
        refused(tmp_path, f"{repo}:1", "manifest.*corrupted")
        refused(tmp_path, f"{repo}@{digest}", "manifest.*corrupted")
    finally:
        blob.write_bytes(original)


def test_a_layer_swapped_for_another_blob_is_refused(tmp_path, pushed, repo):
    """A consistent manifest (every digest right) whose file layer is another file's: the record says otherwise."""
    _, manifest = pushed
    forged = json.loads(json.dumps(manifest))
    weights, config = layer(forged, "model.bin"), layer(forged, "config.json")
    weights["digest"], weights["size"] = config["digest"], config["size"]
    diff_ids = [entry["digest"] for entry in forged["layers"]]
    config_blob = put_blob(
        repo, json.dumps({"descriptor": {"name": "churn"}, "config": {}, "modelfs": {"type": "layers", "diffIds": diff_ids}}).encode()
    )
    forged["config"]["digest"] = config_blob
    forged["config"]["size"] = len(
        json.dumps({"descriptor": {"name": "churn"}, "config": {}, "modelfs": {"type": "layers", "diffIds": diff_ids}}).encode()
    )
    put_manifest(repo, "forged", forged)
    refused(tmp_path, f"{repo}:forged", "config.json|model.bin|one file its annotation names")


def test_a_config_that_disagrees_with_the_manifest_is_refused(tmp_path, pushed, repo):
    _, manifest = pushed
    forged = json.loads(json.dumps(manifest))
    config = json.dumps(
        {"descriptor": {"name": "churn"}, "config": {}, "modelfs": {"type": "layers", "diffIds": ["sha256:" + "0" * 64]}}
    ).encode()
    forged["config"] = {**forged["config"], "digest": put_blob(repo, config), "size": len(config)}
    put_manifest(repo, "forged-config", forged)
    refused(tmp_path, f"{repo}:forged-config", "ModelPack config")


def test_a_manifest_listing_a_file_the_record_does_not_is_refused(tmp_path, pushed, repo):
    _, manifest = pushed
    second = manifest_of(repo, "2")  # version 2's record lists config.json only; version 1's layers come along
    forged = json.loads(json.dumps(manifest))
    forged["annotations"]["dev.modelstore.record"] = layer(second, ".modelstore/version.json")["digest"]
    for i, entry in enumerate(forged["layers"]):
        if entry["annotations"]["org.cncf.model.filepath"] == ".modelstore/version.json":
            forged["layers"][i] = layer(second, ".modelstore/version.json")
    diff_ids = [entry["digest"] for entry in forged["layers"]]
    config = json.dumps({"descriptor": {"name": "churn"}, "config": {}, "modelfs": {"type": "layers", "diffIds": diff_ids}}).encode()
    forged["config"] = {**forged["config"], "digest": put_blob(repo, config), "size": len(config)}
    put_manifest(repo, "forged-record", forged)
    refused(tmp_path, f"{repo}:forged-record", "differ from those fetched")
