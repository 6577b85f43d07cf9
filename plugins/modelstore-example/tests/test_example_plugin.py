"""The example plugin end to end, installed through its entry point like any plugin."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import threshold_plugin
from modelstore_example.model import TinyLinearModel
from modelstore_example.storage import MemoryStorage

from modelstore_core import IntegrityError, ModelStore, UnsupportedModelError
from modelstore_core.plugins import get_plugins
from modelstore_core.protocol import keys
from modelstore_core.testing import StorageContract, TamperContract
from modelstore_core.testing.faults import HANG_TIMEOUT
from modelstore_core.testing.flavors import FlavorContract, assert_reupload_deduplicated


def data(n: int = 40, seed: int = 0) -> tuple[list[list[float]], list[float]]:
    rng = random.Random(seed)
    X = [[rng.uniform(-5, 5), rng.uniform(-5, 5)] for _ in range(n)]
    y = [3.0 * a - 2.0 * b + 1.0 + rng.gauss(0, 0.01) for a, b in X]
    return X, y


@pytest.fixture
def fitted() -> TinyLinearModel:
    return TinyLinearModel(l2=0.5).fit(*data())


def test_the_model_fits(fitted):
    assert fitted.weights == pytest.approx([3.0, -2.0], abs=0.05)
    assert fitted.intercept == pytest.approx(1.0, abs=0.05)


def test_round_trip_through_a_fresh_store(store, fresh, fitted):
    """modelstore_serialize writes it, modelstore_deserialize reads it back, modelstore_collect_metadata records it."""
    v = store.upload("demo", model=fitted, tags={"stage": "test"})
    loaded = fresh().load("demo")
    assert type(loaded) is TinyLinearModel
    X, _ = data(10, seed=1)
    assert loaded.predict(X) == fitted.predict(X)
    assert loaded.get_params() == fitted.get_params()

    meta = v.metadata
    assert meta["flavor"]["name"] == "example" and meta["flavor"]["format"] == "json"
    assert meta["flavor"]["plugin"] == "modelstore-example"
    assert meta["flavor"]["plugin_version"] == "0.1.0"  # read from the installed distribution
    assert meta["flavor"]["safe"] is True
    assert [f["path"] for f in meta["files"]] == ["model.json"]
    assert meta["model"] == {
        "framework": "modelstore-example",
        "hyperparameters": {"l2": 0.5, "fit_intercept": True},
        "n_features": 2,
    }
    assert meta["dependencies"]["modelstore-example"] == "0.1.0"


def test_refitted_model_is_deduplicated(store, fitted, tmp_path):
    refitted = TinyLinearModel(l2=0.5).fit(*data())  # another object, the same fit: the same bytes
    assert_reupload_deduplicated(store, tmp_path, {"demo": fitted}, again={"demo": refitted})


def test_other_objects_are_left_to_other_plugins(store, fresh, tmp_path):
    """modelstore_serialize and modelstore_deserialize return None for what is not theirs; modelstore_flavors
    names the flavor in the error."""
    with pytest.raises(UnsupportedModelError, match="example"):  # the message lists the installed flavors
        store.upload("demo", model={"not": "a model"})
    raw = tmp_path / "weights.bin"
    raw.write_bytes(b"\x00\x01")
    store.upload("raw", files=[raw])
    [path] = fresh().load("raw")  # a files version still loads as paths
    assert Path(path).read_bytes() == b"\x00\x01"


def test_an_unfitted_model_is_refused(store):
    with pytest.raises(ValueError, match="fit"):
        store.upload("demo", model=TinyLinearModel())


# --- the memory:// backend ------------------------------------------------------------


class TestMemoryStorage(StorageContract):
    """The conformance kit's primitive tests, run against the example backend."""

    @pytest.fixture
    def storage(self, request):
        return MemoryStorage(request.node.name)


class TestMemoryTamper(TamperContract):
    """The tamper kit against the example backend: a third-party backend gets it for free."""

    @pytest.fixture
    def store_url(self, tmp_path):
        return f"memory://tamper-{tmp_path.name}"


def test_folder_transport_round_trip(fitted, tmp_path):
    """modelstore_transport: a version pushed to folder:// comes back into another store, the same."""
    source = ModelStore(tmp_path / "a", cache_dir=tmp_path / "c1")
    source.upload("demo", model=fitted, metrics={"r2": 0.5})
    source.push("demo", f"folder://{tmp_path / 'out'}")
    target = ModelStore(tmp_path / "b", cache_dir=tmp_path / "c2")
    v = target.pull(f"folder://{tmp_path / 'out'}")
    assert (v.domain, v.version, v.metrics) == ("demo", 1, {"r2": 0.5})
    assert target.load("demo").predict([[1.0, 2.0]]) == fitted.predict([[1.0, 2.0]])


def test_memory_store_round_trip(fitted, tmp_path):
    """modelstore_store opens memory:// stores; one per name per process."""
    url = f"memory://{tmp_path.name}"
    v = ModelStore(url, cache_dir=tmp_path / "c1").upload("demo", model=fitted)
    other = ModelStore(url, cache_dir=tmp_path / "c2")  # same process, same objects
    assert other.latest("demo").version == v.version
    X, _ = data(5, seed=2)
    assert other.load("demo").predict(X) == fitted.predict(X)
    other.set_state("demo", v.version, "production")
    assert other.states("demo") == {"production": v.version}
    assert other.verify().ok


# --- a plugin written as functions --------------------------------------------------------


@pytest.fixture
def threshold():
    """The function-style plugin, registered beside the example's for the test's duration."""
    manager = get_plugins().manager
    manager.register(threshold_plugin, name="threshold")
    yield threshold_plugin
    manager.unregister(name="threshold")


def test_a_plugin_written_as_functions_works_beside_one_built_on_the_bases(threshold, store, fresh, fitted):
    """Modules of @hookimpl functions, taking fewer arguments than the specs, keep working unchanged."""
    v = store.upload("cut", model=threshold.Threshold(0.5))
    assert v.metadata["flavor"]["name"] == "threshold" and v.metadata["model"] == {"hyperparameters": {"cut": 0.5}}
    store.upload("demo", model=fitted)  # the class-based plugin still takes its own models
    again = fresh()
    assert again.load("cut").predict([0.2, 0.7]) == [False, True]
    assert type(again.load("demo")) is TinyLinearModel
    [impl] = [i for i in get_plugins().hook.modelstore_deserialize.get_hookimpls() if i.plugin is threshold]
    assert impl.argnames == ("flavor", "directory", "files")  # no verified: called once the files are hashed


def test_a_plugin_without_verified_is_not_asked_before_the_files_are_hashed(threshold, store, fresh, monkeypatch):
    v = store.upload("cut", model=threshold.Threshold(0.5))
    stored = store.storage.local_path(keys.object_key(v.files[0].sha256))
    stored.chmod(0o644)  # a store's objects are read-only; their owner can still change them
    stored.write_text(stored.read_text().replace("0.5", "9.5"))  # same size, other bytes
    asked = []
    monkeypatch.setattr(threshold, "Threshold", lambda cut: asked.append(cut))
    with pytest.raises(IntegrityError, match="threshold.json"):
        fresh().load("cut")
    assert asked == []


# --- through the command line -----------------------------------------------------------


def modelstore(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "modelstore_core", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=HANG_TIMEOUT, env={**os.environ, **(env or {})})


def test_cli_lists_the_plugin_with_its_hooks():
    result = modelstore("plugins", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    [example] = [p for p in report["plugins"] if p["name"] == "example"]
    assert example["distribution"] == "modelstore-example" and example["version"] == "0.1.0"
    assert example["builtin"] is False
    assert example["hooks"] == [
        "modelstore_cli_commands",
        "modelstore_collect_metadata",
        "modelstore_deserialize",
        "modelstore_flavors",
        "modelstore_schemes",
        "modelstore_serialize",
        "modelstore_store",
        "modelstore_transport",
    ]
    assert example["schemes"] == ["memory"] and example["flavors"] == ["example"]
    assert report["failures"] == []


def test_cli_runs_the_plugins_command(tmp_path):
    """modelstore_cli_commands: `modelstore example-fit` is listed in the help and stores a version
    in the store the shared options name."""
    env = {"MODELSTORE_CACHE_DIR": str(tmp_path / "cli-cache")}
    assert "example-fit" in modelstore("--help", env=env).stdout
    result = modelstore("example-fit", "demo", "--l2", "0.5", "--store", str(tmp_path / "store"), "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"domain": "demo", "version": 1}
    model = ModelStore(tmp_path / "store").load("demo")
    assert model.get_params() == {"l2": 0.5, "fit_intercept": True}
    assert model.predict([[1.0, 1.0]]) == TinyLinearModel(l2=0.5).fit(
        [[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]], [1.0, 2.0, 5.0, 6.5]
    ).predict([[1.0, 1.0]])


def test_cli_info_and_diff_show_the_hyperparameters(store, tmp_path):
    X, y = data()
    store.upload("demo", model=TinyLinearModel(l2=0.5).fit(X, y))
    store.upload("demo", model=TinyLinearModel(l2=2.0).fit(X, y))
    env = {"MODELSTORE_URL": str(tmp_path / "store"), "MODELSTORE_CACHE_DIR": str(tmp_path / "cli-cache")}

    info = modelstore("info", "demo", "1", env=env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["model"]["hyperparameters"] == {"l2": 0.5, "fit_intercept": True}

    diff = modelstore("diff", "demo", "1", "2", "--json", env=env)
    assert diff.returncode == 0, diff.stderr
    result = json.loads(diff.stdout)
    # each fact once: the hyperparameters are the version's params too, so diff shows them there only
    assert result["sections"]["params"] == [{"key": "params.l2", "change": "changed", "old": 0.5, "new": 2.0}]
    assert "model" not in result["sections"]
    assert [f["path"] for f in result["files"]["changed"]] == ["model.json"]


# --- the plugin author's guide ---------------------------------------------------------

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


def guide_flavor_tests() -> dict:
    """Run the code block of the guide's "Flavor round trip" section, compiled with its own line
    numbers in docs/plugins.md, and return what it defines."""
    text = GUIDE.read_text()
    start = text.index("```python\n", text.index("### Flavor round trip")) + len("```python\n")
    code = text[start : text.index("```", start)]
    namespace: dict = {"__name__": __name__}
    exec(compile("\n" * text.count("\n", 0, start) + code, str(GUIDE), "exec"), namespace)
    return namespace


#: The guide's template for a flavor plugin's tests, exactly as printed there: pytest runs it here.
TestExampleFlavor = guide_flavor_tests()["TestExampleFlavor"]


def test_the_guide_shows_the_flavor_contract():
    assert issubclass(TestExampleFlavor, FlavorContract) and TestExampleFlavor.__module__ == __name__
    assert (TestExampleFlavor.plugin, TestExampleFlavor.distribution, TestExampleFlavor.flavor) == (
        "example",
        "modelstore-example",
        "example",
    )
