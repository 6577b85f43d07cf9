"""Plugin discovery: builtins through the same hooks, broken plugins isolated, helpful errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import pytest

from modelstore_core import (
    Flavor,
    IntegrityError,
    MissingPluginError,
    ModelStore,
    UnknownSchemeError,
    UnsupportedModelError,
    hookimpl,
)
from modelstore_core.plugins import get_plugins
from modelstore_core.testing.faults import HANG_TIMEOUT


def run_python(code: str, env: dict | None = None, path: list[str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    if path:
        full_env["PYTHONPATH"] = os.pathsep.join([*path, full_env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, capture_output=True, text=True, timeout=HANG_TIMEOUT)


def test_import_loads_no_framework_and_no_plugin():
    result = run_python(
        """
        import sys, json
        import modelstore_core
        from modelstore_core import plugins
        heavy = [m for m in ("torch", "xgboost", "sklearn", "keras", "catboost", "numpy", "boto3") if m in sys.modules]
        print(json.dumps({"heavy": heavy, "discovered": plugins._plugins is not None}))
        """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"heavy": [], "discovered": False}


def test_a_fresh_upload_does_not_import_the_load_path(tmp_path):
    """The load path is built on first use: an upload does not import it (pointers, the environment
    check), and neither imports signing or transports when no key or push is involved."""
    (tmp_path / "m.bin").write_bytes(b"x")
    imported = {}
    for op in ("upload", "load"):
        result = run_python(
            f"""
            import sys, json
            from modelstore_core import ModelStore
            store = ModelStore({str(tmp_path / "store")!r}, cache_dir={str(tmp_path / "cache")!r})
            store.upload("d", files=[{str(tmp_path / "m.bin")!r}]) if {op!r} == "upload" else store.load("d")
            print(json.dumps(sorted(m for m in sys.modules if m.startswith("modelstore_core."))))
            """,
            env={"MODELSTORE_TRUSTED_KEYS": "", "MODELSTORE_SIGNING_KEY": ""},
        )
        assert result.returncode == 0, result.stderr
        imported[op] = set(json.loads(result.stdout))
    neither = {"modelstore_core.signing", "modelstore_core.transport"}
    assert {"modelstore_core.upload", "modelstore_core.protocol.commit"} <= imported["upload"]
    assert not imported["upload"] & {"modelstore_core.load", "modelstore_core.pointers", "modelstore_core.environment", *neither}
    assert {"modelstore_core.load", "modelstore_core.pointers"} <= imported["load"]
    assert not imported["load"] & neither


@pytest.mark.parametrize("enabled", [True, False])
def test_imports_leave_the_garbage_collector_as_they_found_it(enabled, tmp_path):
    """The package pauses automatic collection while it imports (a full collection there walks
    every object numpy and the framework built, for nothing to free), and so do the plugins and
    the load path when first used; each restores it, on or off."""
    (tmp_path / "m.bin").write_bytes(b"x")
    result = run_python(
        f"""
        import gc, json
        if not {enabled}:
            gc.disable()
        seen = []
        import modelstore_core
        seen.append(gc.isenabled())
        store = modelstore_core.ModelStore({str(tmp_path / "store")!r}, cache_dir={str(tmp_path / "cache")!r})
        seen.append(gc.isenabled())
        store.upload("d", files=[{str(tmp_path / "m.bin")!r}])
        seen.append(gc.isenabled())
        store.load("d")
        seen.append(gc.isenabled())
        print(json.dumps(seen))
        """
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [enabled] * 4


def test_builtins_are_registered_as_plugins():
    names = dict(get_plugins().manager.list_name_plugin())
    assert {"local_storage", "runtime", "dependencies", "git"} <= set(names)


class _BaseHooks:
    @hookimpl
    def modelstore_collect_metadata(self, model, flavor, domain):
        return {}

    def modelstore_serialize(self, model, directory, options):  # a hook's name, unmarked: not a hook
        return None


class _ShapedHooks(_BaseHooks):
    """Hook implementations in every shape pluggy accepts, and look-alikes it does not."""

    @staticmethod
    @hookimpl
    def modelstore_flavors():
        return []

    @classmethod
    @hookimpl(tryfirst=True)
    def modelstore_schemes(cls):
        return []

    @property
    def modelstore_deserialize(self):  # a descriptor: never run, never a hook
        raise AssertionError("pluggy must not evaluate a property while registering")


def test_the_quick_registration_finds_the_hooks_pluggy_finds():
    """``_PluginManager`` passes over names that cannot be hooks without pluggy's slow lookup; it
    must find exactly the hooks (and options) pluggy's own manager finds, for modules and for
    instances with inherited, static, class and instance-attribute hooks."""
    import importlib

    import pluggy

    from modelstore_core import hookspecs
    from modelstore_core.plugins import DEFAULT_PLUGINS, _PluginManager

    instance = _ShapedHooks()
    instance.modelstore_cli_commands = hookimpl(lambda: [])  # an instance attribute
    plugins = [importlib.import_module(name) for name in DEFAULT_PLUGINS] + [instance]

    def hooks(manager_class):
        manager = manager_class("modelstore")
        manager.add_hookspecs(hookspecs)
        for i, plugin in enumerate(plugins):
            manager.register(plugin, name=str(i))
        return sorted(
            (name, impl.plugin_name, impl.function.__name__, sorted(impl.opts.items()))
            for name in dir(manager.hook)
            if not name.startswith("_")
            for impl in getattr(manager.hook, name).get_hookimpls()
        )

    found = hooks(_PluginManager)
    assert found == hooks(pluggy.PluginManager)
    mine = {name for name, plugin, _, _ in found if plugin == str(len(plugins) - 1)}
    assert mine == {"modelstore_collect_metadata", "modelstore_flavors", "modelstore_schemes", "modelstore_cli_commands"}
    assert ("modelstore_schemes", str(len(plugins) - 1), "modelstore_schemes", [("tryfirst", True)]) in [
        (name, plugin, function, [opt for opt in opts if opt[0] == "tryfirst"]) for name, plugin, function, opts in found
    ]


def fake_distribution(root, name: str, module: str, source: str) -> None:
    """An installed distribution (a dist-info on sys.path) whose plugin module is ``source``."""
    dist = root / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[modelstore]\n{name} = {module}\n")
    (root / f"{module}.py").write_text(textwrap.dedent(source))


def test_a_broken_plugin_is_reported_and_does_not_break_others(tmp_path):
    fake_distribution(tmp_path, "broken", "broken_plugin", "import does_not_exist_anywhere\n")
    fake_distribution(
        tmp_path,
        "working",
        "working_plugin",
        """
        from modelstore_core import hookimpl
        @hookimpl
        def modelstore_collect_metadata():
            return {"working": True}
        """,
    )
    result = run_python(
        f"""
        import warnings, json
        warnings.simplefilter("ignore")
        from modelstore_core import ModelStore
        from modelstore_core.plugins import get_plugins
        store = ModelStore({str(tmp_path / "store")!r})
        open({str(tmp_path / "m.bin")!r}, "w").write("x")
        v = store.upload("d", files=[{str(tmp_path / "m.bin")!r}])
        failure = get_plugins().failures["broken"]
        print(json.dumps({{"working": v.metadata.get("working"), "error": str(failure),
                           "cause": type(failure.__cause__).__name__, "dist": get_plugins().distributions.get("working")}}))
        """,
        path=[str(tmp_path)],
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["working"] is True
    assert "broken" in out["error"] and "does_not_exist_anywhere" in out["error"]
    assert out["cause"] == "ModuleNotFoundError"
    assert out["dist"] == ["working", "0.1"]


def test_disabling_a_plugin_by_name():
    result = run_python(
        """
        from modelstore_core.plugins import get_plugins
        print(sorted(n for n, _ in get_plugins().manager.list_name_plugin()))
        """,
        env={"MODELSTORE_DISABLE_PLUGINS": "git, runtime"},
    )
    assert "'git'" not in result.stdout and "'runtime'" not in result.stdout and "'local_storage'" in result.stdout


def test_unknown_scheme_lists_available_schemes():
    with pytest.raises(UnknownSchemeError) as err:
        ModelStore("ftp://host/models")
    assert "ftp" in str(err.value) and "file" in str(err.value)
    if "s3" not in {s for found in get_plugins().hook.modelstore_schemes() for s in found}:
        with pytest.raises(UnknownSchemeError, match="pip install modelstore-s3"):
            ModelStore("s3://bucket/prefix")


class SklearnLike:
    """Pretends to come from sklearn, without importing it."""


SklearnLike.__module__ = "sklearn.ensemble._forest"


def test_unsupported_model_names_the_type_flavors_and_plugin(store):
    with pytest.raises(UnsupportedModelError) as err:
        store.upload("d", model=object())
    assert "builtins.object" in str(err.value) and "files" in str(err.value)
    if "sklearn" not in {f for found in get_plugins().hook.modelstore_flavors() for f in found}:
        with pytest.raises(UnsupportedModelError, match="pip install modelstore-sklearn"):
            store.upload("d", model=SklearnLike())
    assert store.list_domains() == []


class JsonFlavor:
    """A throwaway flavor plugin: stores dicts as JSON."""

    @hookimpl
    def modelstore_serialize(self, model, directory):
        if isinstance(model, dict):
            (directory / "model.json").write_text(json.dumps(model))
            return Flavor(name="test-json", format="json", plugin="modelstore-test-json", model_class="builtins.dict")

    @hookimpl
    def modelstore_deserialize(self, flavor, directory, files):
        if flavor.name == "test-json":
            return json.loads((directory / files[0]).read_text())

    @hookimpl
    def modelstore_flavors(self):
        return ["test-json"]


def test_a_stored_flavor_without_its_plugin_says_what_to_install(store):
    pm = get_plugins().manager
    plugin = JsonFlavor()
    pm.register(plugin, name="test-json")
    try:
        store.upload("d", model={"w": [1, 2]})
        assert store.load("d") == {"w": [1, 2]}
    finally:
        pm.unregister(plugin)
    with pytest.raises(MissingPluginError, match="pip install modelstore-test-json"):
        store.load("d")


def test_an_unsupported_model_lists_the_installed_flavors(store):
    pm = get_plugins().manager
    plugin = JsonFlavor()
    pm.register(plugin, name="test-json")
    try:
        with pytest.raises(UnsupportedModelError, match=r"installed flavors: [^)]*\bfiles\b[^)]*\btest-json\b") as err:
            store.upload("d", model=object())
        assert "test-json" in err.value.flavors and "files" in err.value.flavors
    finally:
        pm.unregister(plugin)


class DigestFlavor:
    """A serializer that reports the sha256 of what it wrote (or, as a bug, of something else)."""

    def __init__(self, lie: bool):
        self.lie = lie

    @hookimpl
    def modelstore_serialize(self, model, directory):
        if not isinstance(model, bytes):
            return None
        from modelstore_core.hashing import HashingWriter

        with HashingWriter(directory / "blob.bin") as w:
            w.write(model)
        digest = hashlib.sha256(b"something else").hexdigest() if self.lie else w.sha256
        return Flavor(name="blob", format="bytes", plugin="modelstore-test-blob", digests={"blob.bin": digest})

    @hookimpl
    def modelstore_deserialize(self, flavor, directory, files):
        if flavor.name == "blob":
            return (directory / files[0]).read_bytes()


@pytest.mark.parametrize("lie", [False, True])
def test_a_serializers_digests_spare_a_read_and_a_wrong_one_is_caught_on_load(store, lie):
    pm = get_plugins().manager
    plugin = DigestFlavor(lie)
    pm.register(plugin, name="test-blob")
    try:
        v = store.upload("d", model=b"weights" * 1000)
        # The upload proves the object for this machine's loads only from the core's own hash (the
        # HashingWriter's), never from a serializer's word alone.
        assert store.cache._upload_proof_path(v.files[0].sha256).is_file() == (not lie)
        if not lie:
            assert v.files[0].sha256 == hashlib.sha256(b"weights" * 1000).hexdigest()
            assert store.load("d") == b"weights" * 1000
        else:  # stored under a name its bytes do not have: never returned
            with pytest.raises(IntegrityError, match="blob.bin"):
                store.load("d")
            assert [p.problem for p in store.verify().problems] == ["corrupted"]
    finally:
        pm.unregister(plugin)
