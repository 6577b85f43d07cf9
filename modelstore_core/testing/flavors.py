"""The flavor kit: the checks every framework (flavor) plugin needs, as reusable pytest code.

Subclass :class:`FlavorContract` in your plugin's tests, give it your plugin's names and a model,
and it checks, against the installed plugin and a real local store:

- the plugin is found through its entry point, with its distribution, version and flavor;
- a model goes through the store and comes back, through a *fresh* ``ModelStore``, as the same
  class making the same predictions;
- uploading the same model twice stores no new object (deterministic bytes);
- with only this plugin disabled (``MODELSTORE_DISABLE_PLUGINS``), loading raises
  ``MissingPluginError`` naming ``pip install <distribution>``, in a fresh interpreter and in
  this process;
- with the plugin installed but its framework not (the plugin's ``modules`` unimportable),
  loading raises ``MissingFrameworkError`` naming ``pip install "<distribution>[<extra>]"``;
- uploading and loading raw files, or refusing unrelated objects, never imports your framework.

::

    from modelstore_core.testing.flavors import FlavorContract

    class TestMyFlavor(FlavorContract):
        plugin = "myfw"                       # the entry-point name
        distribution = "modelstore-myfw"      # what `pip install` gets
        flavor = "myfw"                       # what modelstore_flavors() returns
        framework_modules = ("myfw",)         # never imported by a raw-files upload

        @pytest.fixture
        def model(self):
            return myfw.Model().fit(X, y)

        def predict(self, model):
            return model.predict(X)

The same checks are plain functions (:func:`assert_round_trip`, :func:`assert_reupload_deduplicated`,
:func:`assert_deterministic_across_processes`, :func:`check_missing_plugin`, :func:`check_missing_framework`,
:func:`check_raw_files_import_nothing`) for tests that need them with other models. They work
on a test directory ``root`` (pytest's ``tmp_path``): the store is ``root / "store"`` and each
``ModelStore`` object gets its own cache under ``root``. The fixtures ``isolated``, ``store`` and
``fresh`` come from the kit's pytest plugin (:mod:`modelstore_core.testing.pytest_plugin`, which the
suite switches on: ``-p modelstore_core.testing.pytest_plugin``), with no import.

Only the standard library and pytest are imported here: no ML framework.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from ..errors import MissingPluginError
from ..plugins import KNOWN_PLUGINS, get_plugins, reset_plugins
from ..store import ModelStore
from ..version import Version
from .faults import HANG_TIMEOUT

__all__ = [
    "FlavorContract",
    "assert_deterministic_across_processes",
    "assert_discovered",
    "assert_missing_plugin_in_process",
    "assert_reupload_deduplicated",
    "assert_round_trip",
    "assert_same",
    "build",
    "check_missing_framework",
    "check_missing_plugin",
    "check_raw_files_import_nothing",
    "isolate",
    "open_store",
    "run_python",
    "run_python_json",
    "stored_objects",
]


# --- stores and isolation -------------------------------------------------------------------


def isolate(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the per-user store and cache under ``root``, enable every plugin, forget loaded plugins,
    and drop any signing key or trust policy of the environment."""
    monkeypatch.setenv("MODELSTORE_CACHE_DIR", str(root / "user-cache"))
    monkeypatch.setenv("MODELSTORE_URL", str(root / "user-store"))
    monkeypatch.delenv("MODELSTORE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("MODELSTORE_SIGNING_KEY", raising=False)  # a developer's signing key or
    monkeypatch.delenv("MODELSTORE_TRUSTED_KEYS", raising=False)  # trust policy must not leak in
    reset_plugins()


def open_store(root: Path, cache: str = "cache") -> ModelStore:
    """A new ``ModelStore`` object on ``root / "store"`` (a new ``cache`` name gives a cold cache)."""
    return ModelStore(root / "store", cache_dir=root / cache)


def stored_objects(root: Path) -> list[Path]:
    """Every object file in the store at ``root / "store"``, sorted."""
    return sorted(p for p in (root / "store" / "objects").rglob("*") if p.is_file())


# --- other interpreters ------------------------------------------------------------------------


def run_python(code: str, cwd: Path, env: Mapping[str, str] | None = None, args: Iterable[str] = ()) -> subprocess.CompletedProcess:
    """Run ``code`` (dedented) in a fresh interpreter with ``args`` as ``sys.argv[1:]``; fails the
    test with the interpreter's output unless it exits with 0."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=HANG_TIMEOUT,
    )
    assert proc.returncode == 0, f"subprocess failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def run_python_json(code: str, cwd: Path, env: Mapping[str, str] | None = None, args: Iterable[str] = ()) -> Any:
    """:func:`run_python`, returning the last line the code printed, parsed as JSON."""
    lines = run_python(code, cwd, env, args).stdout.strip().splitlines()
    assert lines, "the subprocess printed nothing"
    return json.loads(lines[-1])


def build(code: str) -> dict[str, Any]:
    """Run ``code`` in this process and return its namespace: the same source can then build the
    same models in a fresh interpreter (see :func:`assert_deterministic_across_processes`)."""
    namespace: dict[str, Any] = {}
    exec(compile(textwrap.dedent(code), "<modelstore test models>", "exec"), namespace)
    return namespace


# --- comparing predictions -------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Arrays and tensors (anything with ``tolist``) as nested lists; tuples as lists."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True  # NaN in the same place, as numpy.testing.assert_array_equal has it
    return type(a) is not list and type(b) is not list and a == b


def assert_same(got: Any, expected: Any) -> None:
    """Exactly the same predictions: arrays and tensors compared element by element (through
    ``tolist()``), same shape, NaN equal to NaN. No tolerance: a round trip must be exact."""
    got_plain, want = _plain(got), _plain(expected)
    assert _equal(got_plain, want), f"predictions differ after the round trip:\n got: {_short(got_plain)}\nwant: {_short(want)}"


def _short(value: Any, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


# --- the checks ---------------------------------------------------------------------------------


def assert_round_trip(
    store: ModelStore,
    reader: ModelStore,
    model: Any,
    predict: Callable[[Any], Any] | None = None,
    *,
    domain: str = "m",
    load_options: Mapping[str, Any] | None = None,
    compare: Callable[[Any, Any], None] = assert_same,
) -> tuple[Version, Any]:
    """Upload ``model`` with ``store``, load it with ``reader`` (another ``ModelStore`` object with
    its own cache), and check that a new object of the same class came back and, given
    ``predict(model)``, that it predicts the same (``compare(got, expected)``). Returns the
    uploaded version and the loaded object, for further checks."""
    version = store.upload(domain, model=model)
    loaded = reader.load(domain, **(load_options or {}))
    assert loaded is not model, "load() returned the uploaded object itself"
    assert type(loaded) is type(model), f"loaded a {type(loaded).__qualname__}, uploaded a {type(model).__qualname__}"
    if predict is not None:
        compare(predict(loaded), predict(model))
    return version, loaded


def assert_reupload_deduplicated(
    store: ModelStore, root: Path, models: Mapping[str, Any], again: Mapping[str, Any] | None = None
) -> list[tuple[Version, Version]]:
    """Upload ``models`` (domain -> model), then each again (or ``again[domain]``, an equal model
    built anew): every second version must list the same files (names, sizes, sha256), and the
    store at ``root / "store"`` must hold no new object. Returns the pairs of versions."""
    first = {domain: store.upload(domain, model=model) for domain, model in models.items()}
    objects = stored_objects(root)
    pairs = []
    for domain, model in models.items():
        v1, v2 = first[domain], store.upload(domain, model=(again or {}).get(domain, model))
        assert v2.version == v1.version + 1
        assert v2.files == v1.files, f"{domain}: the same model gave other bytes"
        pairs.append((v1, v2))
    assert stored_objects(root) == objects, "a re-upload stored new objects"
    return pairs


def assert_deterministic_across_processes(root: Path, code: str, uploads: Mapping[str, str]) -> None:
    """``code`` builds models; ``uploads`` maps a domain to the name of a variable ``code`` defines.
    The models are built and uploaded here, then built again by the same code in a fresh
    interpreter (other memory addresses, other hash seed) and uploaded to the same store: each
    second version must have the same files, and the store no new object."""
    models = build(code)
    first = {domain: open_store(root).upload(domain, model=models[name]) for domain, name in uploads.items()}
    objects = stored_objects(root)
    upload_all = "".join(f"store.upload({domain!r}, model={name})\n" for domain, name in uploads.items())
    run_python(
        textwrap.dedent(code)
        + "\nfrom modelstore_core import ModelStore\n"
        + f"store = ModelStore({str(root / 'store')!r}, cache_dir={str(root / 'cache-other-process')!r})\n"
        + upload_all,
        cwd=root,
    )
    reader = open_store(root, cache="cache-reader")
    for domain, v1 in first.items():
        v2 = reader.latest(domain)
        assert v2.version == v1.version + 1 and v2.files == v1.files, f"{domain}: another process wrote other bytes"
    assert stored_objects(root) == objects, "the other process stored new objects"


def assert_discovered(plugin: str, distribution: str, flavors: Iterable[str]) -> None:
    """``plugin`` is registered from the installed ``distribution`` (its version as installed),
    loaded without error, and declares ``flavors`` in ``modelstore_flavors``."""
    plugins = get_plugins()
    assert plugin not in plugins.failures, plugins.failures.get(plugin)
    assert plugins.manager.has_plugin(plugin)
    assert plugins.distributions[plugin] == (distribution, metadata.version(distribution))
    assert sorted(flavors) in [sorted(names) for names in plugins.hook.modelstore_flavors()]


def _module(distribution: str) -> str:
    return distribution.replace("-", "_")


def check_missing_plugin(
    root: Path, domain: str, *, plugin: str, distribution: str, flavor: str, own_model_code: str | None = None
) -> dict[str, Any]:
    """In a fresh interpreter with ``plugin`` and every other entry-point plugin disabled
    (``MODELSTORE_DISABLE_PLUGINS``: the core alone), loading ``domain`` (already uploaded to
    ``root / "store"``) must raise ``MissingPluginError``
    for ``flavor`` naming ``pip install <distribution>``, without importing the plugin's module.

    ``own_model_code``, when given, builds an object of the framework in a variable ``model`` (it
    need not be fitted): uploading it must then raise ``UnsupportedModelError``, naming
    ``pip install <distribution>`` too when the core knows which plugin stores that framework.
    Returns what the subprocess saw.
    """
    module = _module(distribution)
    seen = run_python_json(
        """
        import json, sys
        from modelstore_core import ModelStore, MissingPluginError, UnsupportedModelError
        from modelstore_core.plugins import get_plugins
        root, plugin, module, domain, code = sys.argv[1:6]
        store = ModelStore(root + "/store", cache_dir=root + "/cache-disabled")
        seen = {}
        try:
            store.load(domain)
        except MissingPluginError as exc:
            seen["load"] = {"message": str(exc), "flavor": exc.flavor, "plugin": exc.plugin}
        seen["imported_after_load"] = module in sys.modules
        seen["registered"] = get_plugins().manager.has_plugin(plugin)
        if code:
            scope = {}
            exec(code, scope)
            seen["imported_by_model_code"] = module in sys.modules
            try:
                store.upload("own", model=scope["model"])
            except UnsupportedModelError as exc:
                seen["upload"] = str(exc)
            seen["imported_after_upload"] = module in sys.modules
        print(json.dumps(seen))
        """,
        cwd=root,
        # The core alone: a generic fallback (modelstore-sklearn takes sklearn-API classes) must not answer.
        env={"MODELSTORE_DISABLE_PLUGINS": ",".join({plugin, *_entry_point_plugins()})},
        args=[root, plugin, module, domain, textwrap.dedent(own_model_code or "")],
    )
    install = f"pip install {distribution}"
    assert "load" in seen, f"loading a {flavor!r} version without {distribution} did not raise MissingPluginError"
    assert install in seen["load"]["message"] and repr(flavor) in seen["load"]["message"], seen["load"]
    assert seen["load"]["flavor"] == flavor and seen["load"]["plugin"] == distribution
    assert seen["registered"] is False, f"{plugin!r} is registered although it was disabled"
    assert seen["imported_after_load"] is False, f"{module} was imported although {plugin!r} was disabled"
    if own_model_code:
        assert "upload" in seen, "uploading the framework's model without its plugin did not raise UnsupportedModelError"
        if distribution in KNOWN_PLUGINS["module"].values():
            assert install in seen["upload"], seen["upload"]
        assert seen["imported_after_upload"] is seen["imported_by_model_code"], f"the upload imported {module}"
    return seen


def _entry_point_plugins() -> list[str]:
    from importlib.metadata import entry_points

    return [ep.name for ep in entry_points(group="modelstore")]


def assert_missing_plugin_in_process(
    monkeypatch: pytest.MonkeyPatch, root: Path, domain: str, *, plugin: str, distribution: str, flavor: str
) -> None:
    """With ``plugin`` disabled in this process, loading ``domain`` from the store at ``root / "store"``
    (through a ``ModelStore`` opened afterwards, with a cache of its own) raises ``MissingPluginError``
    for ``flavor`` naming ``pip install <distribution>``. Plugins are enabled again afterwards."""
    monkeypatch.setenv("MODELSTORE_DISABLE_PLUGINS", plugin)
    reset_plugins()
    try:
        reader = open_store(root, cache="cache-disabled")
        assert not reader.plugins.manager.has_plugin(plugin)
        with pytest.raises(MissingPluginError, match=f"pip install {distribution}") as err:
            reader.load(domain)
        assert err.value.flavor == flavor and err.value.plugin == distribution
    finally:
        monkeypatch.delenv("MODELSTORE_DISABLE_PLUGINS")
        reset_plugins()


def check_missing_framework(root: Path, domain: str, *, plugin: str, distribution: str, flavor: str) -> dict[str, Any]:
    """In a fresh interpreter where the framework modules of ``plugin`` (its ``modules``) cannot be
    imported, as if its extra were not installed, loading ``domain`` (already uploaded to
    ``root / "store"``) must raise ``MissingFrameworkError`` for ``flavor`` naming
    ``pip install "<distribution>[<extra>]"``, the extra named after the module or the flavor.
    Returns what the subprocess saw."""
    modules = list(get_plugins().manager.get_plugin(plugin).modules)
    seen = run_python_json(
        """
        import json, sys
        root, domain, modules = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        for module in modules:
            sys.modules[module] = None  # importing it raises ModuleNotFoundError, as if it were not installed
        from modelstore_core import MissingFrameworkError, ModelStore
        store = ModelStore(root + "/store", cache_dir=root + "/cache-no-framework")
        seen = {}
        try:
            store.load(domain, trust=True)  # trust: the error must come before a pickle would be refused
        except MissingFrameworkError as exc:
            seen = {"message": str(exc), "flavor": exc.flavor, "module": exc.module, "distribution": exc.distribution, "extra": exc.extra}
        print(json.dumps(seen))
        """,
        cwd=root,
        args=[root, domain, json.dumps(modules)],
    )
    assert seen, f"loading a {flavor!r} version without {', '.join(modules)} did not raise MissingFrameworkError"
    assert seen["flavor"] == flavor and seen["module"] in modules and seen["distribution"] == distribution, seen
    install = f'pip install "{distribution}[{seen["extra"]}]"'
    assert seen["extra"] is not None and install in seen["message"], f"{seen['message']!r} does not say {install}"
    return seen


def check_raw_files_import_nothing(
    root: Path, *, plugin: str, distribution: str, modules: Iterable[str], unrelated: Iterable[str] = ("object()",)
) -> dict[str, Any]:
    """In a fresh interpreter with every plugin enabled: upload a raw file and load it back, and
    try to upload each ``unrelated`` object (Python expressions; each must raise
    ``UnsupportedModelError``). The plugin must have been registered and asked (its module
    imported), the version must be a ``files`` one, and none of ``modules`` (nor their submodules)
    imported. Returns what the subprocess saw."""
    payload = root / "weights.bin"
    payload.write_bytes(bytes(range(256)) * 4)
    modules = sorted(modules)
    unrelated = list(unrelated)
    seen = run_python_json(
        """
        import json, sys
        from modelstore_core import ModelStore, UnsupportedModelError
        from modelstore_core.plugins import get_plugins
        root, plugin, module, modules, unrelated = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
        store = ModelStore(root + "/store", cache_dir=root + "/cache-raw")
        v = store.upload("raw", files=[root + "/weights.bin"])
        paths = store.load("raw")
        refused = []
        for expression in unrelated:
            try:
                store.upload("other", model=eval(expression))
            except UnsupportedModelError:
                refused.append(expression)
        print(json.dumps({
            "registered": get_plugins().manager.has_plugin(plugin),
            "plugin_module": module in sys.modules,
            "flavor": v.flavor.name,
            "loaded": [[p.name, p.read_bytes().hex()] for p in paths],
            "refused": refused,
            "imported": sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in modules)),
        }))
        """,
        cwd=root,
        args=[root, plugin, _module(distribution), json.dumps(modules), json.dumps(unrelated)],
    )
    assert seen["registered"] is True and seen["plugin_module"] is True, "the plugin was not installed and asked"
    assert seen["flavor"] == "files"
    assert seen["loaded"] == [["weights.bin", payload.read_bytes().hex()]]
    assert seen["refused"] == unrelated, "an unrelated object was stored"
    assert seen["imported"] == [], f"imported for raw files and unrelated objects: {seen['imported']}"
    return seen


# --- the contract ---------------------------------------------------------------------------------


class FlavorContract:
    """Subclass, set the class attributes, provide the ``model`` fixture and ``predict``.

    Override ``assert_same`` for a tolerance (the default demands exactly equal predictions),
    ``load_options`` for what ``load()`` needs to rebuild your model (``{"model": MyNet}``), and
    ``unrelated`` for objects your plugin must leave alone.
    """

    #: the entry-point name (``MODELSTORE_DISABLE_PLUGINS``, ``modelstore plugins``)
    plugin: str
    #: the distribution users ``pip install``; its package is the name with ``_`` for ``-``
    distribution: str
    #: the flavor name ``modelstore_serialize`` records
    flavor: str
    #: framework modules a raw-files upload, or refusing an unrelated object, must never import
    framework_modules: tuple[str, ...]
    #: Python expressions of objects that no installed plugin stores
    unrelated: tuple[str, ...] = ("object()",)
    #: source that builds one of the framework's objects in ``model`` (need not be fitted): with
    #: the plugin disabled, uploading it must fail (see :func:`check_missing_plugin`)
    own_model_code: str | None = None
    #: keyword arguments of ``load()`` in the round trip
    load_options: Mapping[str, Any] = {}
    #: ``False`` where loading never needs a framework of the plugin's ``modules`` installed apart, so
    #: :func:`check_missing_framework` does not apply: the example's framework is its own package;
    #: modelstore-lightning loads the weights into the class the caller passes, never importing Lightning
    loads_need_the_framework: bool = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.loads_need_the_framework:
            cls.test_loading_without_the_framework_says_what_to_install = None  # not collected

    @pytest.fixture(autouse=True)
    def _isolated(self, isolated):
        """Every check runs isolated (the kit's pytest plugin provides ``isolated``)."""

    @pytest.fixture
    def model(self) -> Any:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("provide a `model` fixture returning a fitted model of your framework")

    def predict(self, model: Any) -> Any:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("define predict(self, model), returning what the round trip compares")

    def assert_same(self, got: Any, expected: Any) -> None:
        assert_same(got, expected)

    def test_plugin_is_found_through_its_entry_point(self):
        assert_discovered(self.plugin, self.distribution, [self.flavor])

    def test_round_trip_through_a_fresh_store(self, tmp_path, model):
        version, _ = assert_round_trip(
            open_store(tmp_path),
            open_store(tmp_path, cache="cache-fresh"),
            model,
            self.predict,
            load_options=self.load_options,
            compare=self.assert_same,
        )
        recorded = open_store(tmp_path, cache="cache-info").info("m").metadata  # as read back from the store
        installed = metadata.version(self.distribution)
        assert recorded["flavor"]["name"] == self.flavor and recorded["flavor"]["plugin"] == self.distribution
        assert recorded["flavor"]["plugin_version"] == installed
        assert recorded["dependencies"][self.distribution] == installed
        assert recorded["files"] == [f.to_json() for f in version.files] and version.files

    def test_same_model_twice_is_deduplicated(self, tmp_path, model):
        assert_reupload_deduplicated(open_store(tmp_path), tmp_path, {"m": model})

    def test_loading_without_the_plugin_says_what_to_install(self, tmp_path, model):
        open_store(tmp_path).upload("m", model=model)
        check_missing_plugin(
            tmp_path, "m", plugin=self.plugin, distribution=self.distribution, flavor=self.flavor, own_model_code=self.own_model_code
        )

    def test_missing_plugin_in_process(self, tmp_path, model, monkeypatch):
        open_store(tmp_path).upload("m", model=model)
        assert_missing_plugin_in_process(monkeypatch, tmp_path, "m", plugin=self.plugin, distribution=self.distribution, flavor=self.flavor)

    def test_loading_without_the_framework_says_what_to_install(self, tmp_path, model):
        open_store(tmp_path).upload("m", model=model)
        check_missing_framework(tmp_path, "m", plugin=self.plugin, distribution=self.distribution, flavor=self.flavor)

    def test_raw_files_and_unrelated_objects_import_no_framework(self, tmp_path):
        check_raw_files_import_nothing(
            tmp_path, plugin=self.plugin, distribution=self.distribution, modules=self.framework_modules, unrelated=self.unrelated
        )
