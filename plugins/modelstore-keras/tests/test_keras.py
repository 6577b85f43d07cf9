"""modelstore-keras: real Keras 3 models (torch backend) through a real local store, loaded back fresh."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import time
import types
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager

import keras
import numpy as np
import pytest

from modelstore_core import UntrustedArtifactError
from modelstore_core.testing.flavors import stored_objects

RNG = np.random.default_rng(0)
X = RNG.normal(size=(64, 4)).astype("float32")
Y = (X @ np.array([[1.0], [-2.0], [0.5], [3.0]], dtype="float32") + 0.1).astype("float32")


# --- models -------------------------------------------------------------------------------


def sequential() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    model.fit(X, Y, epochs=3, batch_size=16, verbose=0)
    return model


def functional() -> keras.Model:
    """Two inputs, a shared layer, a concatenation, two outputs."""
    keras.utils.set_random_seed(1)
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    shared = keras.layers.Dense(6, activation="tanh", name="shared")
    merged = keras.layers.Concatenate()([shared(a), shared(b)])
    out1 = keras.layers.Dense(1, name="sum")(merged)
    out2 = keras.layers.Dense(2, activation="softmax", name="cls")(keras.layers.BatchNormalization()(merged))
    model = keras.Model([a, b], [out1, out2])
    model.compile(optimizer="sgd", loss=["mse", "sparse_categorical_crossentropy"])
    model.fit([X, X[::-1]], [Y, (Y > 0).astype("int32")], epochs=2, batch_size=16, verbose=0)
    return model


@keras.saving.register_keras_serializable(package="modelstore_tests")
class Scale(keras.layers.Layer):
    """A registered custom layer with a trainable weight and a config argument."""

    def __init__(self, init: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.alpha = self.add_weight(shape=(input_shape[-1],), initializer=keras.initializers.Constant(self.init))

    def call(self, x):
        return x * self.alpha

    def get_config(self):
        return {**super().get_config(), "init": self.init}


@keras.saving.register_keras_serializable(package="modelstore_tests")
class Residual(keras.Model):
    """A registered subclassed model using the custom layer."""

    def __init__(self, units: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = keras.layers.Dense(units)
        self.scale = Scale(0.5)

    def call(self, x):
        return x + self.scale(self.dense(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def subclassed() -> keras.Model:
    keras.utils.set_random_seed(2)
    model = Residual(4)
    model.compile(optimizer="adam", loss="mse")
    model.fit(X, X * 2, epochs=2, batch_size=16, verbose=0)
    return model


class Unregistered(keras.layers.Layer):
    """A custom layer that is not registered: it loads only through custom_objects."""

    def call(self, x):
        return keras.ops.square(x)


def close(a, b) -> None:
    for x, y in zip(keras.tree.flatten(a), keras.tree.flatten(b), strict=True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(x), keras.ops.convert_to_numpy(y), rtol=1e-6, atol=1e-6)


# --- round trips ----------------------------------------------------------------------------


def test_sequential_round_trip(store, fresh):
    model = sequential()
    v = store.upload("seq", model=model)
    assert v.flavor.name == "keras" and v.flavor.format == "keras" and v.flavor.safe is True
    assert [f.path for f in v.files] == ["model.keras"]
    loaded = fresh().load("seq")
    assert isinstance(loaded, keras.Sequential) and loaded is not model
    close(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    # compiled back with its optimizer state: training continues where it stopped
    assert type(loaded.optimizer).__name__ == "Adam"
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0


def test_functional_round_trip(store, fresh):
    model = functional()
    store.upload("fn", model=model)
    loaded = fresh().load("fn")
    assert [t.name for t in loaded.inputs] == ["a", "b"]
    close(loaded.predict([X, X[::-1]], verbose=0), model.predict([X, X[::-1]], verbose=0))


def test_subclassed_model_with_registered_custom_objects(store, fresh):
    model = subclassed()
    v = store.upload("sub", model=model)
    assert v.flavor.model_class.endswith("Residual")
    loaded = fresh().load("sub")
    assert isinstance(loaded, Residual) and isinstance(loaded.scale, Scale)
    close(loaded.predict(X, verbose=0), model.predict(X, verbose=0))
    close(loaded.scale.alpha, model.scale.alpha)


def test_custom_objects_are_passed_through(store, fresh):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(Unregistered()(inputs)))
    store.upload("custom", model=model)
    with pytest.raises(TypeError, match="Unregistered"):
        fresh().load("custom")  # Keras cannot resolve the class by itself
    loaded = fresh().load("custom", custom_objects={"Unregistered": Unregistered}, compile=False)
    close(loaded.predict(X, verbose=0), model.predict(X, verbose=0))


# --- determinism ------------------------------------------------------------------------------


def test_same_model_twice_gives_identical_bytes(store, tmp_path):
    """Keras stamps each save with the time (zip entry dates and metadata.json's date_saved, to the
    second), so two raw saves at different times differ; the plugin normalises both away. The
    second save runs with the clock an hour ahead, instead of waiting for it to move."""
    model = sequential()
    raw1, raw2 = tmp_path / "raw1.keras", tmp_path / "raw2.keras"
    model.save(raw1)
    v1 = store.upload("seq", model=model)
    before = stored_objects(tmp_path)
    with later(3600):
        model.save(raw2)
        v2 = store.upload("seq", model=model)

    with zipfile.ZipFile(raw1) as r1, zipfile.ZipFile(raw2) as r2:  # both stamps moved
        assert json.loads(r1.read("metadata.json"))["date_saved"] != json.loads(r2.read("metadata.json"))["date_saved"]
        assert [i.date_time for i in r1.infolist()] != [i.date_time for i in r2.infolist()]
    assert raw1.read_bytes() != raw2.read_bytes()  # why normalising is needed
    assert v2.version == v1.version + 1 and v2.files == v1.files
    assert stored_objects(tmp_path) == before  # deduplicated: nothing new stored

    stored = stored_objects(tmp_path)[0]
    with zipfile.ZipFile(stored) as z, zipfile.ZipFile(raw1) as r:
        assert z.namelist() == r.namelist()  # Keras' own entries, in its order
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        meta = json.loads(z.read("metadata.json"))
        assert meta["date_saved"] == "1980-01-01@00:00:00" and meta["keras_version"] == keras.__version__
        for name in r.namelist():
            if name != "metadata.json":
                assert z.read(name) == r.read(name), name


@contextmanager
def later(seconds: float) -> Iterator[None]:
    """Move the clocks a Keras save reads forward: ``time.time`` (zip entry dates) and the
    ``datetime.now`` of its saving module (metadata.json's date_saved)."""
    from keras.src.saving import saving_lib

    class Later(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.now(tz) + datetime.timedelta(seconds=seconds)

    now = time.time
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(time, "time", lambda: now() + seconds)
        mp.setattr(saving_lib, "datetime", types.SimpleNamespace(datetime=Later))
        yield


# --- trust ------------------------------------------------------------------------------------


def test_lambda_layers_need_trust(store, fresh, tmp_path):
    marker = tmp_path / "pwned"
    inputs = keras.Input((4,))
    # The lambda's bytecode is stored in the config; Keras runs it when it rebuilds the model.
    # (The path is a constant in the code: Keras restores neither defaults nor closures faithfully.)
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x * 2.0)[1]")  # noqa: S307 - test payload
    outputs = keras.layers.Lambda(payload)(inputs)
    model = keras.Model(inputs, outputs)
    assert marker.exists()  # building the model ran it once
    marker.unlink()
    v = store.upload("lam", model=model)
    assert v.flavor.safe is False and v.flavor.options["lambda_layers"] == [model.layers[1].name]

    with pytest.raises(UntrustedArtifactError, match="trust=True"):
        fresh().load("lam")
    assert not marker.exists()

    loaded = fresh().load("lam", trust=True)
    assert marker.exists()  # the payload is live: only trust=True ran it
    close(loaded.predict(X, verbose=0), X * 2.0)


def test_named_functions_in_lambda_layers_stay_safe(store, fresh):
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(keras.ops.relu)(inputs))
    v = store.upload("relu", model=model)
    assert v.flavor.safe is True
    close(fresh().load("relu").predict(X, verbose=0), np.maximum(X, 0))


# --- metadata ---------------------------------------------------------------------------------


def test_metadata(store):
    model = functional()
    v = store.upload("fn", model=model)
    meta = v.metadata["model"]
    assert meta["framework"] == "keras" and meta["framework_version"] == keras.__version__
    assert meta["backend"] == "torch" and v.flavor.options["backend"] == "torch"
    assert meta["parameters"] == model.count_params() and meta["layers"] == len(model.layers)
    assert meta["trainable_parameters"] < meta["parameters"]  # BatchNorm's moving statistics
    assert meta["inputs"] == [[None, 4], [None, 4]] and meta["outputs"] == [[None, 1], [None, 2]]
    assert meta["optimizer"]["class"] == "SGD" and meta["optimizer"]["learning_rate"] == pytest.approx(0.01)
    deps = v.metadata["dependencies"]
    assert deps["keras"] == importlib.metadata.version("keras") and deps["torch"] == importlib.metadata.version("torch")
