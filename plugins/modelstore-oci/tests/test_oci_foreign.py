"""An artifact another tool made (an OCI layout written here with GNU tar, copied into the registry
by skopeo) pulls as a raw-files version; what cannot be a version's file is refused."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import docker_ref, open_store

from modelstore_core.errors import ModelStoreError

MODELPACK = "application/vnd.cncf.model"


def blob(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def gnu_tar(directory: Path, *names: str, gzip_: bool = False) -> bytes:
    """A tar of ``names`` under ``directory``, written by GNU tar."""
    command = ["tar", "--sort=name", "--owner=0", "--group=0", "--mtime=@0", "-C", str(directory), "-cf", "-", *names]
    data = subprocess.run(command, check=True, capture_output=True).stdout
    return gzip.compress(data, mtime=0) if gzip_ else data


def layout_of(tmp_path: Path, layers: list[tuple[str, bytes, dict]]) -> Path:
    """An OCI layout holding one ModelPack manifest of ``layers`` (media type, bytes, annotations), tagged v1."""
    layout = tmp_path / "layout"
    described = [{"mediaType": media_type, **blob(layout, data), "annotations": annotations} for media_type, data, annotations in layers]
    config = {
        "descriptor": {"name": "bert-tiny", "version": "1"},
        "config": {"format": "safetensors"},
        "modelfs": {"type": "layers", "diffIds": []},
    }
    config["modelfs"]["diffIds"] = [d["digest"] for d in described]  # gzip layers' DiffIDs are not checked
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": f"{MODELPACK}.manifest.v1+json",
        "config": {"mediaType": f"{MODELPACK}.config.v1+json", **blob(layout, json.dumps(config).encode())},
        "layers": described,
        "annotations": {"org.opencontainers.image.source": "https://example.org/bert-tiny"},
    }
    entry = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(layout, json.dumps(manifest).encode())}
    entry["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return layout


@pytest.fixture
def files(tmp_path) -> Path:
    source = tmp_path / "src"
    (source / "tokenizer").mkdir(parents=True)
    (source / "model.safetensors").write_bytes(os.urandom(70_000))
    (source / "tokenizer" / "vocab.txt").write_text("[PAD]\n[CLS]\n")
    (source / "config.json").write_text('{"hidden": 8}')
    (source / "README.md").write_text("bert-tiny\n")
    return source


def test_a_modelpack_artifact_of_another_tool_pulls_as_raw_files(tmp_path, files, repo, skopeo):
    layout = layout_of(
        tmp_path,
        [
            (f"{MODELPACK}.weight.v1.tar", gnu_tar(files, "model.safetensors"), {"org.cncf.model.filepath": "model.safetensors"}),
            (f"{MODELPACK}.weight.config.v1.tar+gzip", gnu_tar(files, "tokenizer", gzip_=True), {"org.cncf.model.filepath": "tokenizer"}),
            (f"{MODELPACK}.weight.config.v1.raw", (files / "config.json").read_bytes(), {"org.cncf.model.filepath": "config.json"}),
            (f"{MODELPACK}.doc.v1.tar", gnu_tar(files, "./README.md"), {"org.cncf.model.filepath": "README.md"}),
        ],
    )
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", docker_ref(f"{repo}:v1"))
    store = open_store(tmp_path, "a")
    v = store.pull(f"{repo}:v1", "bert", plain_http=True)
    assert (v.domain, v.version, v.flavor.name) == ("bert", 1, "files")
    expected = {p.relative_to(files).as_posix(): p.read_bytes() for p in files.rglob("*") if p.is_file()}
    assert {f.path: store.file_path("bert", 1, path=f.path).read_bytes() for f in v.files} == expected
    assert sorted(p.read_bytes() for p in store.load("bert")) == sorted(expected.values())
    oci = v.metadata["oci"]
    assert oci["annotations"]["org.opencontainers.image.source"] == "https://example.org/bert-tiny"
    assert oci["model"]["config"] == {"format": "safetensors"}
    assert v.metadata["pulled_from"]["ref"].startswith(f"{repo}:v1@sha256:")
    # Without a domain, the repository's name.
    assert store.pull(f"{repo}:v1", plain_http=True).domain == repo.rsplit("/", 1)[1]


def test_links_and_names_that_leave_the_version_are_refused(tmp_path, files, repo, skopeo):
    os.symlink("model.safetensors", files / "alias.safetensors")
    layout = layout_of(
        tmp_path,
        [(f"{MODELPACK}.weight.v1.tar", gnu_tar(files, "model.safetensors", "alias.safetensors"), {"org.cncf.model.filepath": "weights"})],
    )
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", docker_ref(f"{repo}:links"))
    store = open_store(tmp_path, "a")
    with pytest.raises(ModelStoreError, match="symbolic link"):
        store.pull(f"{repo}:links", "bert", plain_http=True)

    # GNU tar strips "../": a hostile tar is crafted by hand.
    crafted = io.BytesIO()
    with tarfile.open(fileobj=crafted, mode="w") as tar:
        info = tarfile.TarInfo("../evil.bin")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    data = crafted.getvalue()
    layout = layout_of(tmp_path / "two", [(f"{MODELPACK}.weight.v1.tar", data, {"org.cncf.model.filepath": "evil.bin"})])
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout}:v1", docker_ref(f"{repo}:escape"))
    with pytest.raises(ModelStoreError, match=r"\.\."):
        store.pull(f"{repo}:escape", "bert", plain_http=True)
    assert store.list_domains() == []
    assert not (tmp_path / "evil.bin").exists() and not (tmp_path / "a" / "evil.bin").exists()
