"""Push and pull through a transport (``modelstore_transport``): what the core decides on the way out
and on the way in, shown with the example plugin's ``folder://`` transport (modelstore-oci's tests
show the same against a real OCI registry)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest
from test_signing import make_key

from modelstore_core import ModelStore
from modelstore_core.errors import (
    IntegrityError,
    UnknownTransportError,
    UntrustedPointerError,
    UntrustedSignatureError,
    UsageError,
)
from modelstore_core.plugin_api import TransportPlugin
from modelstore_core.plugins import get_plugins
from modelstore_core.protocol import keys

EXAMPLE = Path(__file__).resolve().parents[1] / "plugins" / "modelstore-example"


@pytest.fixture
def folder_transport(monkeypatch):
    """The example plugin's ``folder://`` transport, registered for the test (not installed here)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.delitem(sys.modules, "modelstore_example.transport", raising=False)
    from modelstore_example.transport import FolderTransport

    class Folder(TransportPlugin):
        transports = ("folder",)

        def open_transport(self, ref, scheme, options):
            return FolderTransport(ref)

    plugin = Folder()
    manager = get_plugins().manager
    manager.register(plugin, name="test-folder-transport")
    yield FolderTransport
    manager.unregister(plugin)


def files(tmp_path: Path) -> list[Path]:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "model.bin").write_bytes(b"weights" * 1000)
    (tmp_path / "in" / "sub" / "vocab.txt").write_text("a\nb\n")
    return [tmp_path / "in" / "model.bin", tmp_path / "in" / "sub"]


def store(tmp_path: Path, name: str, **options) -> ModelStore:
    return ModelStore(tmp_path / name, cache_dir=tmp_path / f"cache-{name}", **options)


def test_a_pulled_version_is_the_pushed_one_under_its_own_number(tmp_path, folder_transport):
    source = store(tmp_path, "a")
    source.upload("churn", files=files(tmp_path), metrics={"auc": 0.9}, params={"depth": 3}, tags={"team": "risk"})
    v2 = source.upload("churn", files=[tmp_path / "in" / "model.bin"], metrics={"auc": 0.95})
    ref = f"folder://{tmp_path / 'out'}"
    digest = source.push("churn", ref, 1)
    assert digest.startswith("sha256:")
    target = store(tmp_path, "b")
    pulled = target.pull(ref)
    assert (pulled.domain, pulled.version) == ("churn", 1)
    original = source.info("churn", 1).metadata
    got = target.info("churn", 1).metadata
    assert got["pulled_from"] == {"ref": ref, "domain": "churn", "version": 1}
    assert {k: v for k, v in got.items() if k != "pulled_from"} == original  # files, metrics, params, tags, time...
    assert sorted(p.read_bytes() for p in target.load("churn")) == sorted(p.read_bytes() for p in source.load("churn", 1))
    assert target.pull(ref).version == 1 and [v.version for v in target.list_versions("churn")] == [1]  # again: nothing new
    source.push("churn", ref, v2.version)
    assert target.pull(ref).version == 2 and target.latest("churn").version == 2
    # in the change feed once each, as copies (under the pushed number)
    assert [(e.event, e.domain, e.version) for e in target.changes()] == [("copied", "churn", 1), ("copied", "churn", 2)]


def test_push_names_the_version_by_state_and_refuses_a_damaged_file(tmp_path, folder_transport):
    source = store(tmp_path, "a")
    source.upload("churn", files=files(tmp_path))
    source.upload("churn", files=[tmp_path / "in" / "model.bin"])
    source.set_state("churn", 1, "production")
    ref = f"folder://{tmp_path / 'out'}"
    source.push("churn", ref, state="production")
    assert json.loads((tmp_path / "out" / "version.json").read_bytes())["version"] == 1
    sha = source.info("churn", 2).files[0].sha256
    (tmp_path / "a" / keys.object_key(sha)).chmod(0o644)
    (tmp_path / "a" / keys.object_key(sha)).write_bytes(b"X" * 7000)  # same size, other bytes
    with pytest.raises(IntegrityError):
        # A fresh cache: nothing is proven, so every file is hashed before it leaves.
        ModelStore(tmp_path / "a", cache_dir=tmp_path / "fresh").push("churn", f"folder://{tmp_path / 'out2'}", 2)
    assert not (tmp_path / "out2" / "version.json").exists()


def test_a_taken_number_gives_the_next_one_and_drops_signatures(tmp_path, folder_transport):
    private, public, keyid = make_key(tmp_path, "ci")
    source = store(tmp_path, "a", signer=str(private))
    source.upload("churn", files=files(tmp_path))
    ref = f"folder://{tmp_path / 'out'}"
    source.push("churn", ref)
    assert len(list((tmp_path / "out" / "signatures").glob("*.json"))) == 1

    fresh = store(tmp_path, "b", trusted_keys=[str(public)])
    assert fresh.pull(ref).version == 1
    assert [(s.keyid, s.valid, s.trusted) for s in fresh.signatures("churn", 1)] == [(keyid, True, True)]
    assert fresh.load("churn", 1)  # the trust policy holds for the pulled version
    # but this store's latest has no signed head: only the signer, here, can vouch for one
    with pytest.raises(UntrustedPointerError, match="not signed"):
        fresh.load("churn")

    busy = store(tmp_path, "c")
    busy.upload("churn", files=[tmp_path / "in" / "model.bin"])  # version 1 is another one here
    with pytest.warns(RuntimeWarning, match="signature"):
        renumbered = busy.pull(ref)
    assert renumbered.version == 2 and busy.signatures("churn", 2) == []
    assert renumbered.metadata["pulled_from"] == {"ref": ref, "domain": "churn", "version": 1}
    with pytest.warns(RuntimeWarning, match="signature"):
        other = busy.pull(ref, "fraud")  # into another domain: its next version, too
    assert (other.domain, other.version) == ("fraud", 1) and busy.signatures("fraud", 1) == []
    # renumbered pulls are new versions here: uploaded events, after the local upload's
    assert [(e.event, e.domain, e.version) for e in busy.changes()] == [
        ("uploaded", "churn", 1),
        ("uploaded", "churn", 2),
        ("uploaded", "fraud", 1),
    ]

    guarded = store(tmp_path, "d", trusted_keys=[str(public)])
    guarded.upload("churn", files=[tmp_path / "in" / "model.bin"])
    with pytest.raises(UsageError, match="taken"):
        guarded.pull(ref)  # renumbered, it could never load under the policy
    assert [v.version for v in guarded.list_versions("churn")] == [1]


def test_the_trust_policy_is_honoured_before_anything_is_committed(tmp_path, folder_transport):
    private, _, _ = make_key(tmp_path, "ci")
    _, other_public, _ = make_key(tmp_path, "other")
    source = store(tmp_path, "a", signer=str(private))
    source.upload("churn", files=files(tmp_path))
    ref = f"folder://{tmp_path / 'out'}"
    source.push("churn", ref)
    target = store(tmp_path, "b", trusted_keys=[str(other_public)])
    with pytest.raises(UntrustedSignatureError):
        target.pull(ref)
    assert target.list_domains() == []
    # A signature edited on the way is left out (it does not hold), and then nothing trusts the version.
    sig = next((tmp_path / "out" / "signatures").glob("*.json"))
    doc = json.loads(sig.read_bytes())
    doc["signed"] = "2020-01-01T00:00:00+00:00"
    doc["record_envelope"]["payload"] = doc["record_envelope"]["payload"][::-1]
    sig.write_text(json.dumps(doc))
    with pytest.warns(RuntimeWarning, match="does not hold"):
        assert store(tmp_path, "c").pull(ref).version == 1
    assert store(tmp_path, "c").signatures("churn", 1) == []


def test_what_came_must_be_what_the_record_lists(tmp_path, folder_transport):
    source = store(tmp_path, "a")
    v = source.upload("churn", files=files(tmp_path))
    ref = f"folder://{tmp_path / 'out'}"
    source.push("churn", ref)
    obj = tmp_path / "out" / "objects" / v.files[0].sha256
    obj.write_bytes(b"tampered" + obj.read_bytes()[8:])
    target = store(tmp_path, "b")
    with pytest.raises(IntegrityError, match="differ from those fetched"):
        target.pull(ref)
    assert target.list_domains() == [] and not list(
        (tmp_path / "b" / "objects").rglob("*") if (tmp_path / "b" / "objects").exists() else []
    )


def test_push_and_pull_from_the_command_line(tmp_path, folder_transport):
    from modelstore_core.cli import main

    source = store(tmp_path, "a")
    source.upload("churn", files=files(tmp_path))
    ref = f"folder://{tmp_path / 'out'}"
    with pytest.raises(SystemExit) as exit_:
        main(["push", "churn:1", ref, "--store", str(tmp_path / "a")])
    assert exit_.value.code == 0
    with pytest.raises(SystemExit) as exit_:
        main(["pull", ref, "--store", str(tmp_path / "b"), "--json"])
    assert exit_.value.code == 0
    assert ModelStore(tmp_path / "b").latest("churn").version == 1


def test_a_reference_no_plugin_handles_names_the_plugin_to_install(tmp_path):
    target = store(tmp_path, "a")
    with pytest.raises(UnknownTransportError, match=r"oci://.*pip install modelstore-oci"):
        target.pull("oci://127.0.0.1:5000/models/churn:1")
    with pytest.raises(UnknownTransportError, match="nope://") as raised:
        target.push("churn", "nope://x")
    assert "pip install" not in str(raised.value)
    with pytest.raises(UsageError, match="SCHEME://"):
        target.pull("just-a-name")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert target.list_domains() == []
