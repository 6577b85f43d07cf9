"""Signed versions and trust policies: real keys made here, real uploads, and an attacker with write
access to the bucket simulated through the storage primitives (``put``, ``edit_record``).

Needs the ``signing`` extra (the nox ``tests`` session installs it): these tests fail, never skip,
without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelstore_core import ModelStore, ModelStoreError, UntrustedSignatureError, UsageError
from modelstore_core.protocol import keys
from modelstore_core.signing import keyid, load_public_key
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.tamper_contract import edit_record, put

MODEL_SIGNING = Path(sys.executable).parent / "model_signing"


def make_key(tmp_path: Path, name: str) -> tuple[Path, Path, str]:
    """A new P-256 key pair written as PEM files: (private, public, key id)."""
    private = ec.generate_private_key(ec.SECP256R1())
    private_path, public_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub.pem"
    private_path.write_bytes(
        private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public_path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path, keyid(private.public_key())


@pytest.fixture
def alice(tmp_path):
    return make_key(tmp_path, "alice")


@pytest.fixture
def bob(tmp_path):
    return make_key(tmp_path, "bob")


@pytest.fixture
def mallory(tmp_path):
    return make_key(tmp_path, "mallory")


@pytest.fixture
def model_dir(tmp_path) -> Path:
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "weights.bin").write_bytes(os.urandom(4096))
    (d / "sub" / "config.json").write_text('{"layers": 3}')
    return d


def writer(tmp_path, signer=None) -> ModelStore:
    return ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache-writer", signer=signer)


def reader(tmp_path, *trusted, require="any", cache="cache-reader") -> ModelStore:
    return ModelStore(tmp_path / "store", cache_dir=tmp_path / cache, trusted_keys=list(trusted), require=require)


def upload(store: ModelStore, model_dir: Path, **kw):
    return store.upload("churn", files=[model_dir / "weights.bin", model_dir / "sub"], **kw)


def object_bytes(store: ModelStore, data: bytes) -> str:
    """Store ``data`` as an object the way an attacker with write access can: consistent sha256."""
    sha = hashlib.sha256(data).hexdigest()
    put(store, keys.object_key(sha), data)
    return sha


# --- a valid version -------------------------------------------------------------------------------


def test_signed_version_loads_and_downloads_under_a_policy(tmp_path, alice, model_dir):
    v = upload(writer(tmp_path, signer=alice[0]), model_dir)
    store = reader(tmp_path, alice[1])
    paths = store.load("churn")
    assert sorted(p.name for p in paths) == ["config.json", "weights.bin"]
    out = store.download("churn", to=tmp_path / "out")
    assert (out / "weights.bin").read_bytes() == (model_dir / "weights.bin").read_bytes()
    [sig] = store.signatures("churn", v.version)
    assert (sig.keyid, sig.valid, sig.trusted, sig.problem) == (alice[2], True, True, "")
    key = keys.signature_key("churn", v.version, alice[2])
    assert key == f"domains/churn/signatures/{v.version:010d}/{alice[2]}.json"
    assert store.storage.stat(key) is not None
    # The key id: sha256 of the DER SubjectPublicKeyInfo.
    der = load_public_key(alice[1]).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert alice[2] == hashlib.sha256(der).hexdigest()[:32]


def test_without_a_policy_nothing_changes_and_signers_are_shown(tmp_path, alice, model_dir):
    upload(writer(tmp_path), model_dir)  # unsigned
    upload(writer(tmp_path, signer=alice[0]), model_dir)
    store = reader(tmp_path)
    assert store.trust_policy is None
    assert store.load("churn", version=1) and store.load("churn", version=2)
    assert store.signatures("churn", 1) == []
    [sig] = store.signatures("churn", 2)
    assert sig.valid and not sig.trusted
    report = store.verify(signatures=True)
    assert report.ok and report.signers == {"churn/1": [], "churn/2": [alice[2]]}


def test_environment_names_the_signer_and_the_trusted_keys(tmp_path, alice, bob, model_dir, monkeypatch):
    monkeypatch.setenv("MODELSTORE_SIGNING_KEY", str(alice[0]))
    upload(writer(tmp_path), model_dir)
    monkeypatch.delenv("MODELSTORE_SIGNING_KEY")
    monkeypatch.setenv("MODELSTORE_TRUSTED_KEYS", os.pathsep.join([str(bob[1]), str(alice[1])]))
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "c")
    assert sorted(store.trust_policy.keys) == sorted([alice[2], bob[2]])
    assert store.load("churn")
    with pytest.raises(UntrustedSignatureError):
        ModelStore(tmp_path / "store", cache_dir=tmp_path / "c2", require="all").load("churn")
    # trusted_keys=[] turns the environment's policy off.
    assert ModelStore(tmp_path / "store", trusted_keys=[]).trust_policy is None


# --- refusals --------------------------------------------------------------------------------------


def test_unsigned_version_is_refused_before_anything_is_written(tmp_path, alice, model_dir):
    upload(writer(tmp_path), model_dir)
    store = reader(tmp_path, alice[1])
    with pytest.raises(UntrustedSignatureError) as err:
        store.load("churn", version=1)
    message = str(err.value)
    assert "version 1 of 'churn' is not signed by a trusted key" in message
    assert alice[2] in message and "it has no signature" in message
    assert "modelstore sign churn 1" in message and "MODELSTORE_TRUSTED_KEYS" in message
    with pytest.raises(UntrustedSignatureError):
        store.download("churn", version=1, to=tmp_path / "out")
    with pytest.raises(UntrustedSignatureError, match="latest of 'churn' is not signed"):  # nor is latest vouched for
        store.download("churn", to=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache-reader").exists() or not any((tmp_path / "cache-reader").rglob("weights.bin"))
    # The way out the messages name: sign it (which vouches for it as latest too).
    writer(tmp_path).sign("churn", 1, key=alice[0])
    assert store.load("churn")


def test_state_is_checked_too(tmp_path, alice, model_dir):
    w = writer(tmp_path)
    upload(w, model_dir)
    w.set_state("churn", 1, "production")
    with pytest.raises(UntrustedSignatureError):
        reader(tmp_path, alice[1]).load("churn", state="production")


def test_forged_version_with_consistent_objects_is_refused(tmp_path, alice, model_dir):
    """An attacker with write access adds a version: its own object, a record with the right sha256,
    and even a copy of the genuine signature document under the new version."""
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir)
    evil = b"malicious weights"
    sha = object_bytes(w, evil)
    doc = json.loads(w.storage.read(keys.version_key("churn", 1))[0])
    doc.update(version=2, files=[{"path": "weights.bin", "size": len(evil), "sha256": sha}])
    put(w, keys.claim_key("churn", 2), b"{}")
    put(w, keys.version_key("churn", 2), json.dumps(doc).encode())
    store = reader(tmp_path, alice[1])
    assert store.latest("churn").version == 1  # latest is what the signed head names, not the newest record
    assert reader(tmp_path).latest("churn").version == 2  # without a policy: the newest record
    with pytest.raises(UntrustedSignatureError, match="it has no signature"):
        store.load("churn", version=2)
    genuine = w.storage.read(keys.signature_key("churn", 1, alice[2]))[0]
    copied = json.loads(genuine)
    copied["version"] = 2
    put(w, keys.signature_key("churn", 2, alice[2]), json.dumps(copied).encode())
    with pytest.raises(UntrustedSignatureError, match=rf"{alice[2]} \(invalid: signed for another version"):
        store.load("churn", version=2)
    assert store.load("churn", version=1) and store.load("churn")  # the genuine version still loads
    report = store.verify(signatures=True)
    assert [(p.version, p.problem) for p in report.problems] == [(2, "bad-signature"), (2, "untrusted")]


@pytest.mark.parametrize(
    "edit,what",
    [
        (lambda doc, sha: doc["flavor"].update(options={"exec": "os.system('id')"}), "flavor"),
        (lambda doc, sha: doc["flavor"].update(safe=False), "flavor"),
        (lambda doc, sha: doc["flavor"].update(name="sklearn", plugin="modelstore-sklearn"), "flavor"),
        (lambda doc, sha: doc["files"][0].update(sha256=sha, size=len(b"swapped")), "file list"),
        (lambda doc, sha: doc["files"].append({"path": "extras/x", "size": len(b"swapped"), "sha256": sha}), "file list"),
        (lambda doc, sha: doc["metrics"].update(auc=0.99), "metrics"),
        (lambda doc, sha: doc.update(metrics={"auc": 0.91, "f1": 0.99}), "metrics"),
        (lambda doc, sha: doc["params"].update(lr=0.5), "params"),
    ],
    ids=["options", "unsafe", "flavor", "file-swapped", "file-added", "metric-raised", "metric-added", "param"],
)
def test_record_edited_after_signing_is_refused(tmp_path, alice, model_dir, edit, what):
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir, metrics={"auc": 0.91}, params={"lr": 0.1})
    assert reader(tmp_path, alice[1], cache="cache-before").load("churn")  # signed with its metrics: trusted
    sha = object_bytes(w, b"swapped")
    edit_record(w, "churn", 1, lambda doc: edit(doc, sha))
    store = reader(tmp_path, alice[1])
    with pytest.raises(UntrustedSignatureError) as err:
        store.load("churn")
    assert f"{alice[2]} (invalid: signed for another {what} than the record holds)" in str(err.value)
    with pytest.raises(UntrustedSignatureError):
        store.download("churn", to=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    [sig] = reader(tmp_path).signatures("churn", 1)
    assert not sig.valid and what in sig.problem


def test_version_resigned_by_an_untrusted_key_is_refused(tmp_path, alice, mallory, model_dir):
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir)
    edit_record(w, "churn", 1, lambda doc: doc["flavor"].update(options={"evil": True}))
    w.sign("churn", 1, key=mallory[0])  # a valid signature of the edited record, by the attacker
    store = reader(tmp_path, alice[1])
    with pytest.raises(UntrustedSignatureError) as err:
        store.load("churn")
    assert f"{mallory[2]} (not trusted)" in str(err.value) and f"{alice[2]} (invalid" in str(err.value)
    # The attacker's document placed under the trusted key id does not help either: trust comes
    # from the reader's key, never from the key a document names.
    forged = w.storage.read(keys.signature_key("churn", 1, mallory[2]))[0]
    doc = json.loads(forged)
    doc["keyid"] = alice[2]
    put(w, keys.signature_key("churn", 1, alice[2]), json.dumps(doc).encode())
    with pytest.raises(UntrustedSignatureError, match="does not hold for key"):
        store.load("churn")
    report = reader(tmp_path, alice[1]).verify(signatures=True)
    assert ("churn", 1, "bad-signature") in [(p.domain, p.version, p.problem) for p in report.problems]


def test_unreadable_signature_document_is_refused_and_reported(tmp_path, alice, model_dir):
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir)
    put(w, keys.signature_key("churn", 1, alice[2]), b"{not json")
    with pytest.raises(UntrustedSignatureError, match="unreadable"):
        reader(tmp_path, alice[1]).load("churn")
    report = reader(tmp_path).verify(signatures=True)
    assert [p.problem for p in report.problems] == ["bad-signature"]


def test_second_signer_and_require_all(tmp_path, alice, bob, model_dir):
    upload(writer(tmp_path, signer=alice[0]), model_dir)
    both = reader(tmp_path, alice[1], bob[1], require="all")
    with pytest.raises(UntrustedSignatureError, match="not signed by every trusted key") as err:
        both.load("churn")
    assert f"{alice[2]} (valid)" in str(err.value)
    assert reader(tmp_path, alice[1], bob[1]).load("churn")  # require="any"
    writer(tmp_path).sign("churn", 1, key=bob[0])  # a release manager adds a signature
    assert both.load("churn")
    assert reader(tmp_path, alice[1], cache="alice-only").load("churn")  # latest still vouched for by alice's upload
    assert sorted(s.keyid for s in both.signatures("churn", 1) if s.valid and s.trusted) == sorted([alice[2], bob[2]])
    # Signing again with the same key changes nothing.
    writer(tmp_path).sign("churn", 1, key=bob[0])
    assert len(both.signatures("churn", 1)) == 2


# --- lifecycle -------------------------------------------------------------------------------------


def test_signatures_go_with_their_version_and_domain(tmp_path, alice, bob, model_dir):
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir)
    upload(w, model_dir)
    w.sign("churn", 1, key=bob[0])
    w.delete("churn", 1)
    assert list(w.storage.list(keys.signatures_prefix("churn", 1))) == []
    assert len(list(w.storage.list(keys.signatures_prefix("churn", 2)))) == 1
    w.delete_domain("churn")
    assert list(w.storage.list(keys.domain_prefix("churn"))) == []
    # Numbers restart after a deleted domain; the new version 1 is signed afresh.
    upload(w, model_dir)
    assert reader(tmp_path, alice[1]).load("churn")


def test_gc_collects_signatures_of_deleted_versions_only(tmp_path, alice, model_dir):
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir)
    upload(w, model_dir)
    orphan = keys.signature_key("churn", 1, alice[2])
    data = w.storage.read(orphan)[0]
    w.delete("churn", 1)
    put(w, orphan, data)  # what a delete interrupted between the record and its signatures leaves
    report = w.gc(dry_run=True)
    assert report.signatures == [orphan] and w.storage.stat(orphan) is not None
    report = w.gc()
    assert report.signatures == [orphan] and w.storage.stat(orphan) is None
    assert w.storage.stat(keys.signature_key("churn", 2, alice[2])) is not None
    assert w.gc().empty


# --- interoperability and secrecy ------------------------------------------------------------------


def test_model_signing_cli_verifies_a_downloaded_version(tmp_path, alice, model_dir):
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir, extras=[model_dir / "sub" / "config.json"])
    store = reader(tmp_path, alice[1])
    out = store.download("churn", to=tmp_path / "out")
    [sig] = store.signatures("churn")
    bundle = tmp_path / "churn-1.sig"
    bundle.write_text(sig.bundle)

    def model_signing_verify() -> subprocess.CompletedProcess:
        command = [str(MODEL_SIGNING), "verify", "key", "--signature", str(bundle), "--public_key", str(alice[1]), str(out)]
        return subprocess.run(command, capture_output=True, text=True, timeout=HANG_TIMEOUT)

    ok = model_signing_verify()
    assert ok.returncode == 0 and "Verification succeeded" in ok.stdout, ok.stderr
    (out / "weights.bin").write_bytes(b"tampered after download")
    failed = model_signing_verify()
    assert failed.returncode != 0 and "weights.bin" in failed.stderr


def test_private_key_never_reaches_the_store_or_errors(tmp_path, alice, bob, model_dir):
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir)
    w.sign("churn", 1, key=bob[0])
    secrets = []
    for private_path in (alice[0], bob[0]):
        pem = private_path.read_bytes()
        key = serialization.load_pem_private_key(pem, None)
        body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        secrets += [body, body[:40], der, scalar, scalar.hex().encode(), b"PRIVATE KEY"]
    stored = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert any("signatures" in p.parts for p in stored)
    for path in stored:
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, f"{path} holds private key material"

    pem_text = alice[0].read_text()
    errors = []
    for attempt in (
        lambda: ModelStore(tmp_path / "store", trusted_keys=[alice[0]]).load("churn"),  # a private key as trusted key
        lambda: ModelStore(tmp_path / "store", trusted_keys=[pem_text]).load("churn"),
        lambda: writer(tmp_path, signer=pem_text.replace("A", "B", 3)).upload("churn", files=[model_dir / "weights.bin"]),
        lambda: writer(tmp_path, signer=alice[1]).upload("churn", files=[model_dir / "weights.bin"]),  # public key as signer
        lambda: reader(tmp_path, bob[1], make_key(tmp_path, "carol")[1], require="all").load("churn", version=1),
    ):
        with pytest.raises(ModelStoreError) as err:
            attempt()
        errors.append(str(err.value))
    assert "is a private key" in errors[0] and "not signed by every trusted key" in errors[-1]
    for message in errors:
        for line in pem_text.splitlines():
            if not line.startswith("-----"):
                assert line[:20] not in message


def test_key_and_policy_arguments_are_checked(tmp_path, alice, model_dir):
    with pytest.raises(UsageError, match="require='most'"):
        ModelStore(tmp_path / "store", require="most")
    with pytest.raises(UsageError, match="cannot read the trusted key"):
        ModelStore(tmp_path / "store", trusted_keys=[tmp_path / "missing.pem"]).trust_policy  # noqa: B018
    rsa_like = tmp_path / "p384.pem"
    rsa_like.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(UsageError, match="not an ECDSA P-256 key"):
        writer(tmp_path, signer=rsa_like).upload("churn", files=[model_dir / "weights.bin"])
    assert not (tmp_path / "store" / "domains").exists()  # refused before anything was written
    with pytest.raises(UsageError, match="no signing key"):
        writer(tmp_path).sign("churn", 1)


# --- what the record envelope covers ---------------------------------------------------------------


@pytest.mark.parametrize(
    "edit,what",
    [
        (lambda doc: doc["dependencies"].update({"torch": "2.13.0"}), "dependencies"),
        (lambda doc: doc["dependencies"].update({"modelstore-core": "9.9.9"}), "dependencies"),
        (lambda doc: doc["environment"]["markers"].update({"modelstore-core": "sys_platform == 'win32'"}), "environment"),
        (lambda doc: doc["environment"].update(key=["modelstore-core"]), "environment"),
        (lambda doc: doc["tags"].update(team="risk"), "tags"),
        (lambda doc: doc.update(git={"commit": "0" * 40, "dirty": False}), "git"),
        (lambda doc: doc.update(created="2001-01-01T00:00:00+00:00"), "created"),
        (lambda doc: doc.update(parents=["churn:1"]), "parents"),
        (lambda doc: doc.update(card={"license": "mit", "intended_use": "anything"}), "card"),
    ],
    ids=["dependency-added", "dependency-changed", "marker", "key", "tag", "git", "created", "parents", "card"],
)
def test_dependencies_markers_and_what_find_ranks_by_are_signed(tmp_path, alice, model_dir, edit, what):
    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir, tags={"team": "ops"})
    assert reader(tmp_path, alice[1], cache="cache-before").load("churn", version=1)
    edit_record(w, "churn", 1, edit)
    with pytest.raises(UntrustedSignatureError) as err:
        reader(tmp_path, alice[1]).load("churn", version=1)
    assert f"{alice[2]} (invalid: signed for another {what} than the record holds)" in str(err.value)


def test_a_signature_made_before_statement_v2_covers_what_it_covered(tmp_path, alice, model_dir):
    """A signature of an earlier release (its record statement v1: files, flavor, metrics, params,
    input signature, data) still holds; verify says what it does not cover; signing again replaces it."""
    from modelstore_core.protocol.records import SignatureDocument, dumps, now_utc
    from modelstore_core.signing import (
        RECORD_PREDICATE_V1,
        V1_UNCOVERED,
        envelope,
        load_private_key,
        model_signing_bundle,
        public_pem,
        record_statement,
    )

    w = writer(tmp_path)
    upload(w, model_dir, metrics={"auc": 0.9})
    record = w.info("churn", 1).record
    key = load_private_key(alice[0])
    old = SignatureDocument(
        "churn", 1, alice[2], public_pem(key.public_key()), now_utc(), model_signing_bundle(record, key),
        envelope(record_statement(record, RECORD_PREDICATE_V1), key),
    )  # fmt: skip
    put(w, keys.signature_key("churn", 1, alice[2]), dumps(old.to_json()))
    store = reader(tmp_path, alice[1])
    assert store.load("churn", version=1)
    [sig] = store.signatures("churn", 1)
    assert sig.valid and sig.trusted and sig.uncovered == V1_UNCOVERED and "dependencies" in V1_UNCOVERED
    report = store.verify(signatures=True)
    assert [(p.version, p.problem) for p in report.problems] == [(1, "partial-signature"), (None, "untrusted-pointer")]
    assert "modelstore sign churn 1" in report.problems[0].detail
    edit_record(w, "churn", 1, lambda doc: doc["dependencies"].update({"torch": "2.13.0"}))
    assert reader(tmp_path, alice[1], cache="c2").load("churn", version=1)  # not covered: still loads
    edit_record(w, "churn", 1, lambda doc: doc["metrics"].update(auc=0.99))
    with pytest.raises(UntrustedSignatureError, match="signed for another metrics"):  # covered
        reader(tmp_path, alice[1], cache="c3").load("churn", version=1)
    edit_record(w, "churn", 1, lambda doc: doc["metrics"].update(auc=0.9))
    w.sign("churn", 1, key=alice[0])  # replaces it with a v2 signature (and vouches for latest)
    [sig] = store.signatures("churn", 1)
    assert sig.valid and sig.uncovered == "" and store.verify(signatures=True).ok


def test_find_under_require_all_needs_every_key_on_each_entry(tmp_path, alice, bob, model_dir):
    from dataclasses import replace

    from modelstore_core.protocol.summary import parse_segment, segment_document

    w = writer(tmp_path, signer=alice[0])
    upload(w, model_dir, metrics={"auc": 0.9})
    upload(w, model_dir, metrics={"auc": 0.8})
    w.sign("churn", 1, key=bob[0])  # the entry of version 1 carries both signatures now
    both = reader(tmp_path, alice[1], bob[1], require="all")
    problems: list[str] = []
    assert [v.version for v in both.find("churn", problems=problems)] == [1]
    assert problems == ["churn: left out 1 version(s) not signed by every trusted key: 2"]
    key = keys.summary_key("churn", 1)
    entries = parse_segment(w.storage.read(key)[0], key, "churn", 1)
    assert sorted(s["keyid"] for s in entries[1].signatures) == sorted([alice[2], bob[2]])
    # One key's signature listed twice is not two signers.
    doubled = replace(entries[2], signatures=entries[2].signatures * 2)
    put(w, key, segment_document("churn", 1, {**entries, 2: doubled}))
    assert [v.version for v in reader(tmp_path, alice[1], bob[1], require="all", cache="c2").find("churn", problems=[])] == [1]
