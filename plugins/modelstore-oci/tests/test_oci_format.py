"""What a push writes, read with an independent client (skopeo): a ModelPack manifest, its config,
one deterministic tar layer per file, the version record; and a pull that gives the same version back."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest
from conftest import docker_ref, open_store, writes

from modelstore_core.plugin_api import UsageError

MODELPACK = "application/vnd.cncf.model.manifest.v1+json"


@pytest.fixture
def version(tmp_path):
    (tmp_path / "in" / "tokenizer").mkdir(parents=True)
    (tmp_path / "in" / "model.safetensors").write_bytes(b"\x01\x02" * 5000)
    (tmp_path / "in" / "tokenizer" / "tokenizer.json").write_text('{"vocab": {}}')
    (tmp_path / "README.md").write_text("# churn\n")
    store = open_store(tmp_path, "a")
    v = store.upload(
        "churn",
        files=[tmp_path / "in" / "model.safetensors", tmp_path / "in" / "tokenizer"],
        extras=[tmp_path / "README.md"],
        metrics={"auc": 0.91},
        params={"depth": 3},
        tags={"team": "risk"},
    )
    return store, v


def test_the_manifest_is_a_modelpack_artifact_with_one_tar_layer_per_file(tmp_path, version, repo, registry, skopeo):
    store, v = version
    digest = store.push("churn", repo, plain_http=True)
    raw = skopeo("inspect", "--tls-verify=false", "--raw", docker_ref(f"{repo}:1"))
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["artifactType"] == MODELPACK
    assert manifest["config"]["mediaType"] == "application/vnd.cncf.model.config.v1+json"
    assert manifest["annotations"]["org.opencontainers.image.title"] == "churn"
    assert manifest["annotations"]["org.opencontainers.image.version"] == "1"
    by_path = {layer["annotations"]["org.cncf.model.filepath"]: layer for layer in manifest["layers"]}
    assert sorted(by_path) == [".modelstore/version.json", "extras/README.md", "model.safetensors", "tokenizer/tokenizer.json"]
    kinds = {path: layer["mediaType"] for path, layer in by_path.items()}
    assert kinds == {
        "model.safetensors": "application/vnd.cncf.model.weight.v1.tar",
        "tokenizer/tokenizer.json": "application/vnd.cncf.model.weight.config.v1.tar",
        "extras/README.md": "application/vnd.cncf.model.doc.v1.tar",
        ".modelstore/version.json": "application/vnd.cncf.model.doc.v1.tar",
    }
    assert manifest["annotations"]["dev.modelstore.record"] == by_path[".modelstore/version.json"]["digest"]

    # skopeo copies the artifact into an OCI layout: every blob is what the manifest says.
    layout = tmp_path / "layout"
    skopeo("copy", "--src-tls-verify=false", docker_ref(f"{repo}:1"), f"oci:{layout}:1")
    blobs = layout / "blobs" / "sha256"
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_bytes())
    assert config["descriptor"]["name"] == "churn" and config["descriptor"]["version"] == "1"
    assert config["modelfs"] == {"type": "layers", "diffIds": [layer["digest"] for layer in manifest["layers"]]}
    stored = {f.path: f for f in v.files}
    for path, layer in by_path.items():
        data = (blobs / layer["digest"].split(":")[1]).read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"] and len(data) == layer["size"]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = tar.getmembers()
            files = [m for m in members if m.isfile()]
            assert [m.name for m in files] == [path]
            assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
            assert [m.name for m in members if m.isdir()] == [p + "/" for p in _parents(path)] or all(m.isdir() for m in members[:-1])
            content = tar.extractfile(files[0]).read()
        if path == ".modelstore/version.json":
            assert json.loads(content) == store.info("churn", 1).metadata
        else:
            assert hashlib.sha256(content).hexdigest() == stored[path].sha256


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def test_a_pull_commits_the_same_version(tmp_path, version, repo):
    store, v = version
    store.push("churn", repo, plain_http=True)
    target = open_store(tmp_path, "b")
    pulled = target.pull(f"{repo}:1", plain_http=True)
    assert (pulled.domain, pulled.version) == ("churn", 1)
    got, original = target.info("churn", 1).metadata, store.info("churn", 1).metadata
    assert got["pulled_from"]["ref"].startswith(f"{repo}:1@sha256:")
    assert {k: val for k, val in got.items() if k != "pulled_from"} == original
    assert {p.name: p.read_bytes() for p in target.load("churn")} == {p.name: p.read_bytes() for p in store.load("churn")}
    assert target.info("churn", 1).metrics == {"auc": 0.91} and target.info("churn", 1).tags == {"team": "risk"}


def test_unchanged_files_give_unchanged_layers_and_a_repush_uploads_nothing(tmp_path, version, repo, registry):
    from modelstore_core.testing.faults import FaultProxy

    store, v = version
    store.upload("churn", files=[tmp_path / "in" / "model.safetensors"], metrics={"auc": 0.92})  # version 2, same weights
    with FaultProxy(registry.port) as proxy:
        via = repo.replace(registry.host, f"127.0.0.1:{proxy.port}")
        first = store.push("churn", via, 1, plain_http=True)
        blobs = [w for w in writes(proxy.log) if w.startswith("blob ")]
        assert len(blobs) == 5 and writes(proxy.log).count("upload") == 5  # 3 files, the record, the config
        proxy.log.clear()
        assert store.push("churn", via, 1, plain_http=True) == first  # the same manifest, byte for byte
        assert writes(proxy.log) == ["manifest 1"]  # no blob: only the tag is put again
        assert len([m for m, _, _ in proxy.log if m == "HEAD"]) == 5
        proxy.log.clear()
        store.push("churn", via, 2, plain_http=True)
        # version 2: its own record and config; the weights' layer is version 1's blob
        second = writes(proxy.log)
        assert second.count("upload") == 2 and second[-1] == "manifest 2"
        weights = [
            layer
            for layer in _manifest(store, via, 1, registry)["layers"]
            if layer["annotations"]["org.cncf.model.filepath"] == "model.safetensors"
        ]
        assert f"blob {weights[0]['digest']}" in blobs and f"blob {weights[0]['digest']}" not in second


def _manifest(store, ref, tag, registry):
    import urllib.request

    host_repo = ref.removeprefix("oci://").split("/", 1)
    request = urllib.request.Request(
        f"http://{host_repo[0]}/v2/{host_repo[1]}/manifests/{tag}", headers={"Accept": "application/vnd.oci.image.manifest.v1+json"}
    )
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())


def test_references(tmp_path, version, registry):
    store, _ = version
    for bad in (
        "oci://127.0.0.1/UPPER/case",
        "oci://user:pw@127.0.0.1/models/x",
        "oci:///models/x",
        "oci://127.0.0.1/models/x:t@sha256:1234",
    ):
        with pytest.raises(UsageError):
            store.push("churn", bad, plain_http=True)
    with pytest.raises(UsageError, match="not a digest"):
        store.push("churn", f"oci://{registry.host}/models/x@sha256:{'0' * 64}", plain_http=True)
    with pytest.raises(UsageError, match="options"):
        store.push("churn", f"oci://{registry.host}/models/x", plain_https=True)
