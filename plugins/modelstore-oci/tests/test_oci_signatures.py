"""Signed versions keep their signatures: each is a referrer of the version's manifest (the
distribution server has no referrers API, so the ``sha256-<hex>`` tag lists them), and a pull
honours the trust policy."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from conftest import api, docker_ref, manifest_of, open_store, put_blob, put_manifest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelstore_core.errors import UntrustedPointerError, UntrustedSignatureError

SIGNATURE = "application/vnd.modelstore.signature.v1+json"


def make_key(tmp_path, name: str):
    private = ec.generate_private_key(ec.SECP256R1())
    private_path, public_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    private_path.write_bytes(
        private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public_path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(private_path), str(public_path)


@pytest.fixture
def signed(tmp_path, repo):
    private, public = make_key(tmp_path, "release")
    (tmp_path / "model.bin").write_bytes(b"weights" * 999)
    store = open_store(tmp_path, "a", signer=private)
    store.upload("churn", files=[tmp_path / "model.bin"], metrics={"auc": 0.9})
    digest = store.push("churn", repo, plain_http=True)
    return store, digest, public


def test_signatures_are_referrers_of_the_manifest(tmp_path, signed, repo, skopeo):
    store, digest, _ = signed
    index = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", docker_ref(f"{repo}:{digest.replace(':', '-')}")))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    [entry] = index["manifests"]
    assert entry["artifactType"] == SIGNATURE
    referrer = json.loads(skopeo("inspect", "--tls-verify=false", "--raw", docker_ref(f"{repo}@{entry['digest']}")))
    assert referrer["subject"]["digest"] == digest and referrer["artifactType"] == SIGNATURE
    [keyid] = [s.keyid for s in store.signatures("churn", 1)]
    assert referrer["annotations"]["dev.modelstore.signature.keyid"] == keyid
    store.push("churn", repo, plain_http=True)  # again: listed once
    assert (
        len(json.loads(skopeo("inspect", "--tls-verify=false", "--raw", docker_ref(f"{repo}:{digest.replace(':', '-')}")))["manifests"])
        == 1
    )


def test_a_pull_keeps_the_signatures_and_honours_the_trust_policy(tmp_path, signed, repo):
    _, digest, public = signed
    _, stranger = make_key(tmp_path, "stranger")
    refused = open_store(tmp_path, "b", trusted_keys=[stranger])
    with pytest.raises(UntrustedSignatureError):
        refused.pull(f"{repo}:1", plain_http=True)
    assert refused.list_domains() == []

    trusting = open_store(tmp_path, "c", trusted_keys=[public])
    v = trusting.pull(f"{repo}@{digest}", plain_http=True)
    assert v.version == 1
    [info] = trusting.signatures("churn", 1)
    assert info.valid and info.trusted
    assert [p.read_bytes() for p in trusting.load("churn", 1)] == [(tmp_path / "model.bin").read_bytes()]
    with pytest.raises(UntrustedPointerError, match="not signed"):
        trusting.load("churn")  # a pull brings the version's signatures, not this store's signed latest


def test_an_edited_record_does_not_pass_the_trust_policy(tmp_path, signed, repo, registry):
    """Someone with write access to the repository edits the metrics and pushes a consistent
    manifest: every digest holds, but the signature does not, so a reader with a policy refuses it."""
    store, digest, public = signed
    manifest = manifest_of(repo, "1")
    [record_layer] = [
        entry for entry in manifest["layers"] if entry["annotations"]["org.cncf.model.filepath"] == ".modelstore/version.json"
    ]
    with tarfile.open(registry.blob_path(record_layer["digest"])) as tar:
        record = json.loads(tar.extractfile(".modelstore/version.json").read())
    record["metrics"]["auc"] = 0.99
    data = json.dumps(record).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(".modelstore/version.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer_digest = put_blob(repo, buffer.getvalue())
    forged = json.loads(json.dumps(manifest))
    for entry in forged["layers"]:
        if entry["digest"] == record_layer["digest"]:
            entry["digest"], entry["size"] = layer_digest, len(buffer.getvalue())
    forged["annotations"]["dev.modelstore.record"] = layer_digest
    config = json.dumps(
        {"descriptor": {"name": "churn"}, "config": {}, "modelfs": {"type": "layers", "diffIds": [e["digest"] for e in forged["layers"]]}}
    ).encode()
    forged["config"] = {**forged["config"], "digest": put_blob(repo, config), "size": len(config)}
    forged_digest = put_manifest(repo, "1", forged)
    # the signature, re-attached to the forged manifest as its referrer
    index = manifest_of(repo, digest.replace(":", "-"))
    signature = manifest_of(repo, index["manifests"][0]["digest"])
    signature["subject"] = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": forged_digest, "size": 0}
    sig_digest = put_manifest(repo, "sig", signature)
    index["manifests"][0]["digest"] = sig_digest
    status, _, _ = api(
        repo,
        f"manifests/{forged_digest.replace(':', '-')}",
        "PUT",
        json.dumps(index).encode(),
        {"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert status == 201

    trusting = open_store(tmp_path, "c", trusted_keys=[public])
    with pytest.warns(RuntimeWarning, match="does not hold"), pytest.raises(UntrustedSignatureError):
        trusting.pull(f"{repo}:1", plain_http=True)
    assert trusting.list_domains() == []
    # Without a policy the forged version comes in, and its signature is left out (it does not hold).
    with pytest.warns(RuntimeWarning, match="does not hold"):
        assert open_store(tmp_path, "d").pull(f"{repo}:1", plain_http=True).metrics == {"auc": 0.99}
    assert open_store(tmp_path, "d").signatures("churn", 1) == []
