"""FlavorPlugin and StoragePlugin: plugins that state their flavor or schemes once, registered with
the real plugin manager, through a real local store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelstore_core import ModelStore, UnknownSchemeError, UnsupportedModelError
from modelstore_core.errors import IntegrityError
from modelstore_core.plugin_api import Flavor, FlavorPlugin, StoragePlugin, top_level_modules
from modelstore_core.plugins import get_plugins
from modelstore_core.protocol import keys


class Point:
    """A "framework" object: its top-level module is this test module's."""

    def __init__(self, x: float, y: float):
        self.x, self.y = x, y


class LabelledPoint(Point):
    pass


HERE = top_level_modules(Point(0, 0))[0]


class PointPlugin(FlavorPlugin):
    """Reads through ``verified``: called before the files are hashed."""

    flavor = "point"
    modules = (HERE,)
    trylast = True  # a generic fallback for anything built on Point

    def __init__(self):
        self.calls: list[str] = []

    def serialize(self, model, directory, options):
        (directory / "point.json").write_text(json.dumps([model.x, model.y]))
        return Flavor(name=self.flavor, format="json", plugin="test-points", options={"file": "point.json"})

    def deserialize(self, flavor, files, options, verified):
        self.calls.append("deserialize")
        with verified.open(flavor.options["file"]) as f:
            return Point(*json.loads(f.read(f.size)))

    def metadata(self, model, flavor):
        return {"model": {"norm": (model.x**2 + model.y**2) ** 0.5}}


class LabelledPointPlugin(FlavorPlugin):
    """Reads the hashed files under ``directory``: called only once every file is hashed. No metadata."""

    flavor = "labelled-point"
    modules = (HERE,)
    tryfirst = True  # a LabelledPoint is also a Point, which PointPlugin takes

    def __init__(self):
        self.calls: list[str] = []

    def handles(self, model):
        return super().handles(model) and isinstance(model, LabelledPoint)

    def serialize(self, model, directory, options):
        (directory / "point.json").write_text(json.dumps([model.x, model.y]))
        return Flavor(name=self.flavor, format="json", plugin="test-points", options={"file": "point.json"})

    def deserialize(self, flavor, directory, files, options):
        self.calls.append("deserialize")
        return LabelledPoint(*json.loads((directory / "point.json").read_text()))


@pytest.fixture(params=["general first", "specific first"])
def points(request):
    """Both plugins, registered in either order: precedence must not depend on it."""
    manager = get_plugins().manager
    plugins = {"point": PointPlugin(), "labelled-point": LabelledPointPlugin()}
    order = list(plugins) if request.param == "general first" else list(plugins)[::-1]
    for name in order:
        manager.register(plugins[name], name=f"test-{name}")
    yield plugins
    for name in order:
        manager.unregister(name=f"test-{name}")


def stored_object(store: ModelStore, version) -> Path:
    path = store.storage.local_path(keys.object_key(version.files[0].sha256))
    os.chmod(path, 0o644)  # a store's objects are read-only; their owner can still change them
    return path


def test_each_flavor_is_stored_and_loaded_by_its_own_plugin_whatever_the_registration_order(points, tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "c1")
    plain = store.upload("plain", model=Point(3, 4))
    labelled = store.upload("labelled", model=LabelledPoint(1, 2))
    assert plain.metadata["flavor"]["name"] == "point" and labelled.metadata["flavor"]["name"] == "labelled-point"
    assert plain.metadata["model"] == {"norm": 5.0}
    assert "model" not in labelled.metadata  # no metadata() of its own: the hook is not even implemented

    fresh = ModelStore(tmp_path / "store", cache_dir=tmp_path / "c2")
    loaded = fresh.load("plain")
    assert type(loaded) is Point and (loaded.x, loaded.y) == (3, 4)
    loaded = fresh.load("labelled")
    assert type(loaded) is LabelledPoint and (loaded.x, loaded.y) == (1, 2)
    # each deserializer answered for its own flavor only (the other returned None without a look)
    assert points["point"].calls == ["deserialize"] and points["labelled-point"].calls == ["deserialize"]


def test_what_no_plugin_handles_is_refused_and_named(points, store):
    with pytest.raises(UnsupportedModelError, match=r"installed flavors: .*labelled-point.*point"):
        store.upload("d", model={"x": 1})


def test_the_hook_implementations_say_what_the_core_needs(points):
    """Precedence reaches pluggy per class; only a deserialize taking ``verified`` names it."""
    manager = get_plugins().manager
    impls = {impl.plugin_name: impl for impl in manager.hook.modelstore_serialize.get_hookimpls()}
    assert (impls["test-point"].trylast, impls["test-point"].tryfirst) == (True, False)
    assert (impls["test-labelled-point"].tryfirst, impls["test-labelled-point"].trylast) == (True, False)
    impls = {impl.plugin_name: impl for impl in manager.hook.modelstore_deserialize.get_hookimpls()}
    assert impls["test-point"].argnames == ("flavor", "files", "options", "verified")
    assert impls["test-labelled-point"].argnames == ("flavor", "directory", "files", "options")
    hooks = {name: sorted(c.name for c in manager.get_hookcallers(points[name])) for name in points}
    assert hooks["labelled-point"] == ["modelstore_deserialize", "modelstore_flavors", "modelstore_serialize"]
    assert hooks["point"] == ["modelstore_collect_metadata", *hooks["labelled-point"]]


def test_a_deserializer_without_verified_never_sees_a_damaged_file(points, tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "c1")
    v = store.upload("labelled", model=LabelledPoint(1, 2))
    stored_object(store, v).write_text("[9, 9]")  # same size, other bytes
    with pytest.raises(IntegrityError, match="point.json"):
        ModelStore(tmp_path / "store", cache_dir=tmp_path / "c2").load("labelled")
    assert points["labelled-point"].calls == []  # hashed first: the plugin was never asked


def test_a_deserializer_reading_through_verified_finds_the_damage_as_it_reads(points, tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "c1")
    v = store.upload("plain", model=Point(3, 4))
    stored_object(store, v).write_text("[9, 9]")
    with pytest.raises(IntegrityError, match="point.json"):
        ModelStore(tmp_path / "store", cache_dir=tmp_path / "c2").load("plain")
    assert points["point"].calls == ["deserialize"]  # asked first; its read reached the end and raised


def test_a_subclass_that_breaks_the_rules_fails_when_it_is_defined():
    with pytest.raises(TypeError, match="must name its flavor"):

        class Nameless(FlavorPlugin):
            modules = ("x",)

    with pytest.raises(TypeError, match="both tryfirst and trylast"):

        class Undecided(FlavorPlugin):
            flavor, tryfirst, trylast = "x", True, True

    with pytest.raises(TypeError, match=r"deserialize takes \(self, flavor, files, options, verified\)"):

        class MissingArguments(FlavorPlugin):
            flavor = "x"

            def deserialize(self, flavor, verified):
                return None


# --- storage ---------------------------------------------------------------------------------


class ElsewherePlugin(StoragePlugin):
    """``elsewhere:///path`` and ``there:///path``: a local directory under another name."""

    schemes = ("elsewhere", "there")

    def __init__(self):
        self.opened: list[tuple[str, dict]] = []

    def open(self, url, scheme, options):
        from modelstore_core.default_plugins.local_storage import LocalStorage

        self.opened.append((scheme, dict(options)))
        return LocalStorage(Path(url.split("://", 1)[1]))


@pytest.fixture
def elsewhere():
    manager = get_plugins().manager
    plugin = ElsewherePlugin()
    manager.register(plugin, name="test-elsewhere")
    yield plugin
    manager.unregister(name="test-elsewhere")


def test_a_storage_plugin_opens_its_schemes_and_lists_them(elsewhere, tmp_path):
    (tmp_path / "model.bin").write_bytes(b"weights")
    ModelStore(f"elsewhere://{tmp_path}/store", cache_dir=tmp_path / "c1").upload("d", files=[tmp_path / "model.bin"])
    [path] = ModelStore(f"there://{tmp_path}/store", cache_dir=tmp_path / "c2").load("d")
    assert Path(path).read_bytes() == b"weights"
    assert [scheme for scheme, _ in elsewhere.opened] == ["elsewhere", "there"]
    with pytest.raises(UnknownSchemeError, match="available schemes: .*elsewhere, file, .*there"):
        ModelStore(f"nowhere://{tmp_path}/store")
