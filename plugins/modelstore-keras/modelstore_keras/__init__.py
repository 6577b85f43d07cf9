"""modelstore plugin for Keras 3: models stored in the ``.keras`` format, loaded with ``safe_mode``.

Upload any ``keras.Model``; ``model.save`` writes ``model.keras``, which is then rewritten
with fixed zip dates and a fixed ``date_saved`` so that equal models give equal bytes.

Load (``ModelStore.load`` options): ``custom_objects=`` and ``compile=`` are passed to
``keras.saving.load_model``; ``trust=True`` loads models whose ``Lambda`` layers carry
Python bytecode (``safe_mode=False``), which are otherwise refused. The zip is checked before
Keras opens it (see :mod:`modelstore_keras.archive`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import types
import zipfile
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Flavor, FlavorPlugin, UntrustedArtifactError, VersionFiles, comes_from, model_file, qualified_name

FLAVOR = "keras"
PLUGIN = "modelstore-keras"
FILE = "model.keras"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
DATE_SAVED = "1980-01-01@00:00:00"  # metadata.json's date_saved, in Keras' own format
BACKEND_DISTRIBUTIONS = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "numpy": "numpy"}


def _keras_model(model: Any) -> bool:
    """Whether ``model`` is a Keras 3 model. Never imports keras: a Keras object implies it is imported."""
    if "keras" not in sys.modules or not comes_from(model, "keras"):
        return False
    import keras

    return isinstance(model, keras.Model)


def _tf_keras_model(model: Any) -> bool:
    """Whether ``model`` comes from tf_keras (Keras 2), never importing it."""
    return "tf_keras" in sys.modules and comes_from(model, "tf_keras")


class KerasPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("keras", "tf_keras")
    # tryfirst: a Keras 3 model on the torch backend is also an ``nn.Module``, which modelstore-torch handles.
    tryfirst = True

    def handles(self, model: Any) -> bool:
        # a tf_keras (Keras 2) model too: serialize refuses it, saying what to do
        return _tf_keras_model(model) or _keras_model(model)

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        if _tf_keras_model(model):
            raise TypeError(
                f"{qualified_name(model)} is a tf_keras (Keras 2) model; modelstore-keras stores Keras 3 models."
                " Save it with model.save('model.keras') and upload(domain, files=['model.keras']), or move to Keras 3"
            )
        import keras

        if int(keras.__version__.split(".")[0]) < 3:
            raise TypeError(f"modelstore-keras needs Keras 3; keras {keras.__version__} is installed")

        path = directory / FILE
        model.save(path)
        normalise(path)
        lambdas = sorted({layer.name for layer in _layers(model) if _runs_python(layer)})
        backend = keras.backend.backend()
        return Flavor(
            name=FLAVOR,
            format="keras",
            plugin=PLUGIN,
            model_class=qualified_name(model),
            # Lambda layers carry marshalled Python code that load_model runs while rebuilding the model.
            safe=not lambdas,
            dependencies=["keras", *([BACKEND_DISTRIBUTIONS[backend]] if backend in BACKEND_DISTRIBUTIONS else [])],
            options={"file": FILE, "backend": backend, "lambda_layers": lambdas},
        )

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        recorded = flavor.options
        trust = bool(options.get("trust"))
        if not flavor.safe and not trust:
            raise UntrustedArtifactError(
                f"this {flavor.model_class} has Lambda layers ({', '.join(recorded.get('lambda_layers') or [])}) whose"
                " Python code Keras runs while loading the model; pass trust=True (Keras' safe_mode=False) only for"
                " artifacts from a source you trust, or replace the Lambda layers with registered custom layers"
            )
        from . import archive

        # The record names the file: only the version's model files may be read, and only once the zip
        # is known not to inflate beyond what a saved model can be. The zip checks and Keras need a
        # file: ``verified.path`` hashes it first (or trusts the cache's proof that it is unchanged).
        name = recorded.get("file", FILE)
        model_file(verified.directory, files, name, option="file")
        path = verified.path(name)
        archive.check(path)
        import keras

        kwargs = {"safe_mode": not trust}
        for name in ("custom_objects", "compile"):
            if name in options:
                kwargs[name] = options[name]
        try:
            return keras.saving.load_model(path, **kwargs)
        except ValueError as exc:
            if "safe_mode" in str(exc) and not trust:
                raise UntrustedArtifactError(
                    f"Keras refused to load this model in safe mode ({exc}); pass trust=True only for artifacts from a source you trust"
                ) from exc
            raise

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        import keras

        info: dict[str, Any] = {
            "framework": "keras",
            "framework_version": keras.__version__,
            "backend": keras.backend.backend(),
            "layers": len(model.layers),
        }
        if model.built:
            info["parameters"] = int(model.count_params())
            info["trainable_parameters"] = int(sum(int(_size(w)) for w in model.trainable_weights))
        for key, attr in (("inputs", "inputs"), ("outputs", "outputs")):
            try:
                tensors = getattr(model, attr)
            except (AttributeError, ValueError):
                continue
            if tensors is not None:
                info[key] = [list(t.shape) for t in keras.tree.flatten(tensors)]
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            info["optimizer"] = {"class": type(optimizer).__name__, "learning_rate": _float(getattr(optimizer, "learning_rate", None))}
        loss = getattr(model, "loss", None)
        if loss is not None:
            info["loss"] = loss if isinstance(loss, str) else getattr(loss, "name", None) or type(loss).__name__
        return {"model": info}


plugin = KerasPlugin()


# --- helpers --------------------------------------------------------------------------------


def normalise(path: Path) -> None:
    """Rewrite the ``.keras`` zip at ``path`` so that its bytes depend only on the model.

    The entries keep Keras' order, names, contents and compression; their dates, permissions
    and creating system become constants, and ``metadata.json``'s ``date_saved`` a fixed date.
    """
    tmp = path.with_name(f".{path.name}.normalised")
    try:
        with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp, "w") as dst:
            for info in src.infolist():
                out = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
                out.compress_type = info.compress_type
                out.create_system = 3
                out.external_attr = (0o40755 << 16 | 0x10) if info.is_dir() else (0o100644 << 16)
                if info.is_dir():
                    dst.writestr(out, b"")
                elif info.filename == "metadata.json":
                    meta = json.loads(src.read(info))
                    if "date_saved" in meta:
                        meta["date_saved"] = DATE_SAVED
                    dst.writestr(out, json.dumps(meta))
                else:
                    with src.open(info) as r, dst.open(out, "w", force_zip64=info.file_size >= zipfile.ZIP64_LIMIT) as w:
                        shutil.copyfileobj(r, w, 1 << 20)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _layers(model: Any):
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=True, recursive=True))
    seen, stack = [], [model]
    while stack:
        layer = stack.pop()
        seen.append(layer)
        stack.extend(getattr(layer, "layers", None) or [])
    return seen


def _runs_python(layer: Any) -> bool:
    """A ``Lambda`` layer around a Python ``lambda``: Keras stores its bytecode in the config.

    (Named functions are stored by name and resolved through the registry or ``custom_objects``.)
    """
    import keras

    if not isinstance(layer, keras.layers.Lambda):
        return False
    parts = (getattr(layer, attr, None) for attr in ("function", "_output_shape", "mask"))
    return any(isinstance(fn, types.LambdaType) and fn.__name__ == "<lambda>" for fn in parts)


def _size(variable: Any) -> int:
    n = 1
    for d in variable.shape:
        n *= int(d)
    return n


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(keras_value(value))
    except (TypeError, ValueError):
        return None


def keras_value(value: Any) -> Any:
    import keras

    return keras.ops.convert_to_numpy(value) if not isinstance(value, (int, float)) else value
