"""Several models in one version: ``upload(domain, models={...})``, ``load(..., part=...)``, and the
record's parts validated as untrusted input. Two throwaway flavor plugins stand in for real
frameworks (the plugin suites store real ones: modelstore-lightning puts a torch module and a
LightningModule in one version)."""

from __future__ import annotations

import hashlib
import json

import pytest

from modelstore_core import (
    CorruptRecordError,
    InvalidNameError,
    MissingPluginError,
    ModelStore,
    UnsupportedModelError,
    UntrustedArtifactError,
    UsageError,
)
from modelstore_core.plugin_api import Flavor, HashingWriter, hookimpl, model_file
from modelstore_core.plugins import get_plugins
from modelstore_core.testing.tamper_contract import edit_record


class Table:
    """A dict, stored as ``table.json``; records the options it was given."""

    @hookimpl
    def modelstore_serialize(self, model, directory, options):
        if not isinstance(model, dict):
            return None
        (directory / "table.json").write_text(json.dumps(model, sort_keys=True))
        return Flavor(name="table", format="json", plugin="modelstore-test-table", model_class="builtins.dict",
                      dependencies=["pluggy"], options={"file": "table.json", "given": sorted(options)})  # fmt: skip

    @hookimpl
    def modelstore_deserialize(self, flavor, directory, files, options):
        if flavor.name == "table":
            table = json.loads(model_file(directory, files, flavor.options.get("file"), option="file").read_text())
            return {**table, **({"_options": sorted(k for k in options if k != "trust")} if options.get("echo") else {})}

    @hookimpl
    def modelstore_flavors(self):
        return ["table"]

    @hookimpl
    def modelstore_collect_metadata(self, model, flavor):
        if flavor.name == "table":
            return {"model": {"rows": len(model)}}


class Blob:
    """bytes, stored as ``blob/data.bin`` (hashed as written); ``unsafe=True`` marks it as needing trust."""

    @hookimpl
    def modelstore_serialize(self, model, directory, options):
        if not isinstance(model, bytes):
            return None
        (directory / "blob").mkdir()
        with HashingWriter(directory / "blob" / "data.bin") as w:
            w.write(model)
        unsafe = bool(options.get("unsafe"))
        return Flavor(name="blob", format="bytes", plugin="modelstore-test-blob", safe=not unsafe,
                      digests={"blob/data.bin": w.sha256}, options={"file": "blob/data.bin"})  # fmt: skip

    @hookimpl
    def modelstore_deserialize(self, flavor, directory, files, options):
        if flavor.name != "blob":
            return None
        if not flavor.safe and not options.get("trust"):
            raise UntrustedArtifactError("this blob needs trust=True")
        return model_file(directory, files, flavor.options.get("file"), option="file").read_bytes()

    @hookimpl
    def modelstore_flavors(self):
        return ["blob"]

    @hookimpl
    def modelstore_collect_metadata(self, model, flavor):
        if flavor.name == "blob":
            return {"model": {"bytes": len(model)}}


@pytest.fixture
def flavors():
    manager = get_plugins().manager
    plugins = {"test-table": Table(), "test-blob": Blob()}
    for name, plugin in plugins.items():
        manager.register(plugin, name=name)
    yield plugins
    for plugin in plugins.values():
        if manager.is_registered(plugin):
            manager.unregister(plugin)


MODELS = {"encoder": {"w": [1, 2, 3]}, "head": b"\x00weights\xff" * 100}


def test_several_models_in_one_version(store, fresh, flavors, tmp_path):
    (tmp_path / "notes.txt").write_text("trained on v2")
    v = store.upload("pair", models=MODELS, extras=[tmp_path / "notes.txt"], tags={"team": "risk"})
    assert v.version == 1 and store.list_versions("pair") == [v]
    assert v.flavor.name == "parts" and v.flavor.safe is True and v.flavor.plugin == "modelstore-core"
    assert [f.path for f in v.files] == ["encoder/table.json", "head/blob/data.bin", "extras/notes.txt"]
    assert {name: f.name for name, f in v.parts.items()} == {"encoder": "table", "head": "blob"}
    assert v.files[1].sha256 == hashlib.sha256(MODELS["head"]).hexdigest()

    loaded = fresh().load("pair")
    assert loaded == MODELS and list(loaded) == ["encoder", "head"]
    assert fresh().load("pair", part="head") == MODELS["head"]

    info = fresh().info("pair").metadata  # metadata per part, runtime and git once
    assert info["parts"]["encoder"]["model"] == {"rows": 1} and info["parts"]["head"]["model"] == {"bytes": 900}
    assert "runtime" in info and "runtime" not in info["parts"]["head"]
    assert info["dependencies"]["pluggy"] == info["parts"]["encoder"]["dependencies"]["pluggy"]
    assert info["flavor"]["options"]["parts"][1] == {"name": "head", "flavor": v.parts["head"].to_json()}

    out = fresh().download("pair", to=tmp_path / "dl")
    assert json.loads((out / "encoder" / "table.json").read_text()) == MODELS["encoder"]
    assert (out / "head" / "blob" / "data.bin").read_bytes() == MODELS["head"]
    # the same models again: the same files, nothing new stored
    assert store.upload("pair", models=MODELS, extras=[tmp_path / "notes.txt"]).files == v.files


def test_options_reach_every_part_and_part_options_one(store, fresh, flavors):
    v = store.upload("pair", models=MODELS, part_options={"encoder": {"extra": 1}}, shared=True)
    assert v.parts["encoder"].options["given"] == ["extra", "shared"]
    out = fresh().load("pair", part_options={"encoder": {"echo": True}}, common=1)
    assert out["encoder"]["_options"] == ["common", "echo"] and out["head"] == MODELS["head"]


def test_an_unsafe_part_needs_trust_and_only_that_part(store, fresh, flavors):
    v = store.upload("pair", models=MODELS, part_options={"head": {"unsafe": True}})
    assert v.flavor.safe is False and v.parts["head"].safe is False and v.parts["encoder"].safe is True
    with pytest.raises(UntrustedArtifactError):
        fresh().load("pair")
    assert fresh().load("pair", part="encoder") == MODELS["encoder"]
    assert fresh().load("pair", trust=True) == MODELS


def test_a_failing_part_commits_nothing(store, flavors):
    with pytest.raises(UnsupportedModelError, match="builtins.object"):
        store.upload("pair", models={"encoder": {"w": 1}, "other": object()})
    assert store.list_domains() == []
    assert store.gc(dry_run=True).empty  # the failure came before anything was staged


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"models": {}}, UsageError, "non-empty dict"),
        ({"models": [1, 2]}, UsageError, "non-empty dict"),
        ({"models": {"../x": {}}}, InvalidNameError, "part name"),
        ({"models": {"a/b": {}}}, InvalidNameError, "part name"),
        ({"models": {"extras": {}}}, InvalidNameError, "extras"),
        ({"models": {"a": None}}, UsageError, "part 'a' is None"),
        ({"models": {"a": {}}, "model": {}}, UsageError, "both model= and models="),
        ({"models": {"a": {}}, "files": ["x"]}, UsageError, "both files= and models="),
        ({"model": {}, "part_options": {"a": {}}}, UsageError, "part_options= goes with models="),
        ({"models": {"a": {}}, "part_options": {"b": {}}}, UsageError, r"names \['b'\]"),
        ({"models": {"a": {}}, "part_options": {"a": 1}}, UsageError, "dicts of options"),
    ],
)
def test_bad_uploads_are_usage_errors(store, flavors, kwargs, error, match):
    with pytest.raises(error, match=match):
        store.upload("pair", **kwargs)
    assert store.list_domains() == []


def test_part_and_part_options_are_checked_on_load(store, fresh, flavors):
    store.upload("pair", models=MODELS)
    store.upload("single", model={"w": 1})
    with pytest.raises(UsageError, match="no part 'nope'; its parts are encoder, head"):
        fresh().load("pair", part="nope")
    with pytest.raises(UsageError, match=r"names \['nope'\]"):
        fresh().load("pair", part_options={"nope": {}})
    with pytest.raises(UsageError, match="holds one model, not parts"):
        fresh().load("single", part="encoder")


def test_a_part_whose_plugin_is_missing_names_it(store, fresh, flavors):
    store.upload("pair", models=MODELS)
    get_plugins().manager.unregister(flavors["test-blob"])
    with pytest.raises(MissingPluginError, match="pip install modelstore-test-blob"):
        fresh().load("pair")
    assert fresh().load("pair", part="encoder") == MODELS["encoder"]


def _parts(doc):
    return doc["flavor"]["options"]["parts"]


TAMPERED = [
    pytest.param(lambda d: d["flavor"]["options"].update(parts={}), r"flavor\.options\.parts", id="parts-not-a-list"),
    pytest.param(lambda d: d["flavor"]["options"].update(parts=[]), r"flavor\.options\.parts", id="no-parts"),
    pytest.param(lambda d: d["flavor"]["options"].pop("parts"), r"flavor\.options\.parts", id="parts-missing"),
    pytest.param(lambda d: _parts(d)[0].update(name="../../evil"), r"parts\[0\]\.name", id="name-escapes"),
    pytest.param(lambda d: _parts(d)[0].update(name="a/b"), r"parts\[0\]\.name", id="name-with-slash"),
    pytest.param(lambda d: _parts(d)[0].update(name=7), r"parts\[0\]\.name", id="name-not-a-string"),
    pytest.param(lambda d: _parts(d)[1].update(name="encoder"), r"parts\[1\]\.name.*two parts", id="duplicate-name"),
    pytest.param(lambda d: _parts(d)[0].update(name="extras"), r"parts\[0\]\.name.*extras", id="name-extras"),
    pytest.param(lambda d: _parts(d)[0].pop("flavor"), r"parts\[0\]\.flavor", id="flavor-missing"),
    pytest.param(lambda d: _parts(d)[0]["flavor"].update(name="parts"), r"parts\[0\]\.flavor\.name", id="nested-parts"),
    pytest.param(lambda d: _parts(d)[0]["flavor"].update(name="files"), r"parts\[0\]\.flavor\.name", id="raw-files-part"),
    pytest.param(lambda d: _parts(d)[0]["flavor"].update(safe="yes"), r"parts\[0\]\.flavor\.safe", id="safe-not-a-boolean"),
    pytest.param(lambda d: _parts(d)[1]["flavor"].update(safe=False), r"flavor\.safe.*a part is not safe", id="safe-but-a-part-is-not"),
    pytest.param(lambda d: d["files"][0].update(path="other/table.json"), r"files\[0\]\.path.*outside the folder", id="file-outside-parts"),
    pytest.param(lambda d: d["files"][0].update(path="table.json"), r"files\[0\]\.path.*outside the folder", id="file-at-the-top"),
    pytest.param(lambda d: d["files"].pop(0), r"files hold no file of part 'encoder'", id="part-without-files"),
]  # fmt: skip


@pytest.mark.parametrize("tamper,match", TAMPERED)
def test_a_tampered_parts_record_is_refused(store, fresh, flavors, tmp_path, tamper, match):
    store.upload("pair", models=MODELS)
    store.upload("pair", models=MODELS)
    edit_record(store, "pair", 1, tamper)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    reader = fresh()
    calls = (lambda: reader.load("pair", version=1), lambda: reader.info("pair", 1), lambda: reader.download("pair", 1, to=tmp_path / "dl"))
    for call in calls:
        with pytest.raises(CorruptRecordError, match=match):
            call()
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert [p for p in after if p not in before and not str(p).startswith("cache-")] == []  # nothing written for it
    assert reader.load("pair", version=2) == MODELS
    assert [p.problem for p in reader.verify().problems] == ["corrupt-record"]


@pytest.mark.parametrize("name", ["../encoder/table.json", "../../../../etc/passwd", "/etc/passwd"])
def test_a_part_cannot_read_another_parts_files(store, fresh, flavors, name):
    """Each part's plugin sees only its own folder's files: an option naming another part's file is refused."""
    store.upload("pair", models=MODELS)
    edit_record(store, "pair", 1, lambda d: _parts(d)[1]["flavor"]["options"].update(file=name))
    with pytest.raises(CorruptRecordError, match=r"flavor\.options\.file"):
        fresh().load("pair", part="head")


def test_signatures_cover_each_parts_flavor(tmp_path, flavors):
    """A part's flavor is in the signed record statement: editing it (say, marking an unsafe part
    safe) breaks the signature, so a trust policy refuses the version."""
    pytest.importorskip("cryptography", reason="the signing extra")
    from test_signing import make_key

    private, public, _ = make_key(tmp_path, "ci")
    writer = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache-w", signer=private)
    writer.upload("pair", models=MODELS, part_options={"head": {"unsafe": True}})
    reader = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache-r", trusted_keys=[public])
    assert reader.load("pair", trust=True) == MODELS

    def mark_safe(doc):
        _parts(doc)[1]["flavor"]["safe"] = True
        doc["flavor"]["safe"] = True

    edit_record(writer, "pair", 1, mark_safe)
    from modelstore_core import UntrustedSignatureError

    with pytest.raises(UntrustedSignatureError):
        ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache-r2", trusted_keys=[public]).load("pair", part="head")
