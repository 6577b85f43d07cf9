"""What an MLflow model's files become here: a plugin's flavor where the format is one that plugin
checks and reads as it is, else raw files.

Nothing is loaded: the files are recognised from the ``MLmodel`` file (parsed as untrusted YAML:
size-capped, no aliases) and their names and first bytes, and stored byte for byte (a file may
be stored under another name where the plugin reads that name). Each plugin checks the files at
load as it checks its own. Pickles (MLflow's sklearn ``pickle``/``cloudpickle`` formats, PyTorch's
pickled modules, statsmodels, pyfunc models) are never unpickled here; their versions load only
with ``trust=True``.

:data:`MAPPERS` holds the table, by MLflow flavor; ``README.md`` shows it.
"""

from __future__ import annotations

import io
import json
import pickletools
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelstore_core.importing import TRANSFORMERS_MODEL_FILES, XGBOOST_CLASSES, is_pickle
from modelstore_core.plugin_api import Flavor

from .registry import MlflowImportError

#: ``options["imported_from"]`` of a mapped version (the plugins name it when they refuse a pickle).
IMPORTED_FROM = "MLflow"
#: Files MLflow writes beside a model's files; stored under ``extras/`` with their names.
METADATA_FILES = {
    "MLmodel",
    "conda.yaml",
    "python_env.yaml",
    "requirements.txt",
    "constraints.txt",
    "input_example.json",
    "serving_input_example.json",
    "registered_model_meta",
    "LICENSE.txt",
    "model_config.yaml",
}
#: Folders of those (MLflow 2 repeats the metadata under ``metadata/``; ``code/`` holds the code paths).
METADATA_FOLDERS = ("metadata/", "code/")
#: An MLmodel (or environment file) larger than this is refused unread.
MAX_YAML_BYTES = 16 << 20


@dataclass
class Mapped:
    """What a model's files become: the flavor, the stored name of each model file (-> its name in
    the fetched folder), the files stored under ``extras/``, and a sentence for the report."""

    flavor: Flavor
    model_files: dict[str, str]
    extras: list[str] = field(default_factory=list)
    note: str = ""
    #: what it became, in a few words (``"sklearn (skops)"``)
    became: str = ""


def is_metadata(name: str) -> bool:
    return name in METADATA_FILES or name.startswith(METADATA_FOLDERS)


# --- the MLmodel file -----------------------------------------------------------------------------


def read_yaml(path: Path, what: str) -> Any:
    """A YAML document MLflow wrote, parsed as untrusted input: at most :data:`MAX_YAML_BYTES`, no
    aliases (a "billion laughs" expands nothing), no tags beyond plain data."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("aliases are not used by MLflow and are refused here")
            return super().compose_node(parent, index)

    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise MlflowImportError(f"{what} is {size} bytes, more than MLflow writes ({MAX_YAML_BYTES})")
    try:
        return yaml.load(path.read_bytes(), Loader=NoAliases)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
        raise MlflowImportError(f"{what} is not valid YAML ({' '.join(str(exc).split())[:200]})") from None


def read_mlmodel(directory: Path, names: list[str]) -> dict[str, Any] | None:
    """The parsed ``MLmodel`` of a model folder (``None``: the folder is not an MLflow model)."""
    if "MLmodel" not in names:
        return None
    doc = read_yaml(directory / "MLmodel", "MLmodel")
    if not isinstance(doc, dict) or not isinstance(doc.get("flavors"), dict):
        raise MlflowImportError("MLmodel has no 'flavors' mapping: not an MLflow model")
    return doc


def flavor_names(mlmodel: dict[str, Any] | None) -> list[str]:
    return [str(name) for name in (mlmodel or {}).get("flavors", {})]


# --- the mapping ----------------------------------------------------------------------------------


def map_model(mlmodel: dict[str, Any] | None, directory: Path, names: list[str]) -> Mapped:
    """What the model in ``directory`` (its files ``names``) becomes; see the module docstring."""
    flavors = (mlmodel or {}).get("flavors") or {}
    for name, mapper in MAPPERS.items():
        conf = flavors.get(name)
        if name in flavors and isinstance(conf, dict):
            mapped = mapper(conf, directory, names)
            if mapped is not None:
                return mapped
    if mlmodel is None:
        mapped = _map_safetensors(directory, names)
        if mapped is not None:
            return mapped
    return _raw(mlmodel, directory, names)


def _split(names: list[str], model: dict[str, str]) -> list[str]:
    """Every file that is not a model file: stored under ``extras/``."""
    used = set(model.values())
    return [n for n in names if n not in used]


def _file(conf: dict[str, Any], key: str, names: list[str], default: str | None = None) -> str | None:
    value = conf.get(key, default)
    return value if isinstance(value, str) and value in names else None


def _map_sklearn(conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    """``sklearn``: ``model.skops`` (MLflow 3's default) -> the sklearn flavor's skops format;
    ``model.pkl`` (``pickle``/``cloudpickle``) -> its pickle format, loaded only with ``trust=True``."""
    file = _file(conf, "pickled_model", names)
    fmt = conf.get("serialization_format", "pickle")
    if file is None:
        return None
    return _sklearn(file, fmt, conf, directory, names)


def _sklearn(file: str, fmt: Any, conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    model = {file: file}
    options: dict[str, Any] = {"file": file, "imported_from": IMPORTED_FROM}
    if fmt == "skops":
        trusted = conf.get("skops_trusted_types")
        if trusted:
            options["mlflow_skops_trusted_types"] = [str(t) for t in trusted][:100] if isinstance(trusted, list) else str(trusted)[:1000]
        flavor = Flavor("sklearn", "skops", "modelstore-sklearn", model_class=_skops_class(directory / file), safe=True, options=options)
        note = f"{file} (skops), loaded by modelstore-sklearn after its own audit of the types in it"
        if trusted:
            note += " (the types MLflow was told to trust are not trusted here: pass them as load(..., trusted_types=[...]) after review)"
        return Mapped(flavor, model, _split(names, model), note, "sklearn (skops)")
    if fmt in ("pickle", "cloudpickle"):
        options["serialization_format"] = fmt
        flavor = Flavor("sklearn", "pickle", "modelstore-sklearn", model_class=_pickle_class(directory / file), safe=False, options=options)
        note = f"{file} ({fmt}), loaded by modelstore-sklearn only with load(..., trust=True): unpickling can run code"
        if fmt == "cloudpickle":
            note += "; cloudpickle must be installed to load it"
        if conf.get("code"):
            note += f"; MLflow stored code with it (extras/{conf['code']}): put it on sys.path before loading"
        return Mapped(flavor, model, _split(names, model), note, f"sklearn (pickle, {fmt})")
    return None


#: MLflow's ``model_format`` -> modelstore-xgboost's recorded format (the file is ``model.<model_format>`` in both).
XGBOOST_FORMATS = {"ubj": "ubjson", "json": "json"}


def _map_xgboost(conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    """``xgboost``: ``model.ubj`` (MLflow's default) or ``model.json`` -> the xgboost flavor;
    the older binary ``model.xgb`` stays raw files."""
    fmt = conf.get("model_format", "xgb")
    file = _file(conf, "data", names)
    model_class = conf.get("model_class", "xgboost.core.Booster")
    short = model_class.rsplit(".", 1)[-1] if isinstance(model_class, str) else None
    if fmt not in XGBOOST_FORMATS or file != f"model.{fmt}" or short not in XGBOOST_CLASSES or not model_class.startswith("xgboost."):
        return None
    model = {file: file}
    flavor = Flavor(
        "xgboost",
        XGBOOST_FORMATS[fmt],
        "modelstore-xgboost",
        model_class=model_class,
        options={"file": file, "class": short, "imported_from": IMPORTED_FROM},
    )
    note = (
        f"{file}, loaded by modelstore-xgboost as {short} after its checks; scikit-learn API parameters other than"
        " those xgboost saves with the trees keep their defaults"
    )
    return Mapped(flavor, model, _split(names, model), note, f"xgboost ({XGBOOST_FORMATS[fmt]})")


def _map_lightgbm(conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    """``lightgbm``: a ``Booster``'s ``model.lgb`` (LightGBM's text format) -> the lightgbm flavor;
    the scikit-learn classes (``model.skops``/``model.pkl``) -> the sklearn flavor."""
    file = _file(conf, "data", names)
    model_class = conf.get("model_class")
    if file is None:
        return None
    if file.endswith(".skops") or file.endswith(".pkl"):
        fmt = conf.get("serialization_format", "skops" if file.endswith(".skops") else "pickle")
        return _sklearn(file, fmt, conf, directory, names)
    if model_class != "lightgbm.basic.Booster" or not _starts(directory / file, b"tree"):
        return None
    model = {file: file}
    flavor = Flavor(
        "lightgbm",
        "text",
        "modelstore-lightgbm",
        model_class=model_class,
        options={"file": file, "class": "Booster", "best_iteration": -1, "imported_from": IMPORTED_FROM},
    )
    return Mapped(
        flavor, model, _split(names, model), f"{file} (text), loaded by modelstore-lightgbm as a Booster after its checks", "lightgbm"
    )


CATBOOST_CLASSES = ("CatBoost", "CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker")


def _map_catboost(conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    """``catboost``: ``model.cb`` in CatBoost's binary format (``cbm``, the default) -> the catboost flavor."""
    file = _file(conf, "data", names, "model.cb")
    model_type = conf.get("model_type")
    if file is None or conf.get("save_format", "cbm") not in (None, "cbm") or model_type not in CATBOOST_CLASSES:
        return None
    if not _starts(directory / file, b"CBM1"):
        return None
    model = {file: file}
    flavor = Flavor(
        "catboost",
        "cbm",
        "modelstore-catboost",
        model_class=f"catboost.core.{model_type}",
        options={"file": file, "class": model_type, "imported_from": IMPORTED_FROM},
    )
    return Mapped(flavor, model, _split(names, model), f"{file} (cbm), loaded by modelstore-catboost after its checks", "catboost")


def _map_onnx(conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    """``onnx``: ``model.onnx`` and its external data files -> the onnx flavor."""
    file = _file(conf, "data", names)
    if file != "model.onnx":
        return None
    data = [n for n in names if n != file and not is_metadata(n)]
    model = {n: n for n in [file, *data]}
    flavor = Flavor(
        "onnx",
        "onnx",
        "modelstore-onnx",
        model_class="onnx.onnx_ml_pb2.ModelProto",
        options={"file": file, "data_files": data, "imported_from": IMPORTED_FROM},
    )
    note = f"{file}, loaded by modelstore-onnx (a ModelProto, or with session=True an InferenceSession) after onnx.checker"
    return Mapped(flavor, model, _split(names, model), note, "onnx")


def _map_transformers(conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    """``transformers``: a pipeline saved with its weights (``model/``, safetensors) and at most a
    tokenizer (``components/tokenizer/``) -> the transformers flavor's ``pipeline`` kind, the
    tokenizer under ``tokenizer/`` as modelstore-transformers stores it; loads back as the
    pipeline MLflow would return. A pipeline saved without weights (``save_pretrained=False``: a
    reference to the Hugging Face Hub), with pickled or TensorFlow weights, or with other
    components (image processors...) stays raw files."""
    binary = conf.get("model_binary")
    components = conf.get("components") or []
    task = conf.get("task")
    if binary != "model" or not isinstance(components, list) or set(components) - {"tokenizer"} or not isinstance(task, str):
        return None
    inside = [n[len("model/") :] for n in names if n.startswith("model/")]
    if "config.json" not in inside or not any(n.endswith(".safetensors") for n in inside):
        return None
    if not all(TRANSFORMERS_MODEL_FILES.fullmatch(n) for n in inside):
        return None
    model = {f"model/{n}": f"model/{n}" for n in inside}
    tokenizer = [n for n in names if n.startswith("components/tokenizer/")]
    if "tokenizer" in components and not tokenizer:
        return None
    model.update({"tokenizer/" + n[len("components/tokenizer/") :]: n for n in tokenizer})
    leftover = [n for n in names if n.startswith("components/") and n not in tokenizer]
    if leftover:
        return None
    model_class, auto_class, pipeline_class = _transformers_classes(conf)
    flavor = Flavor(
        "transformers",
        "safetensors",
        "modelstore-transformers",
        model_class=pipeline_class,
        options={
            "kind": "pipeline",
            "task": task,
            "auto_class": auto_class,
            "model_class": model_class,
            "tokenizer": bool(tokenizer),
            "imported_from": IMPORTED_FROM,
        },
    )
    parts = "model/ with safetensors weights" + (", tokenizer/" if tokenizer else "")
    note = f"a {task} pipeline ({parts}), loaded by modelstore-transformers after its checks"
    if auto_class is None:
        note += f"; no transformers auto class builds {model_class}: load it with load(..., model=TheClass)"
    return Mapped(flavor, model, _split(names, model), note, "transformers (pipeline)")


def _transformers_classes(conf: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """The model's qualified class, the auto class that builds it, and the pipeline's class, from
    the class names MLflow recorded. transformers is imported (the classes' modules are its own)."""
    try:
        import transformers
        from transformers.models.auto.auto_factory import _BaseAutoModelClass
    except ImportError:
        raise MlflowImportError(
            "it is a transformers pipeline: install transformers where you run the import (pip install transformers),"
            " so that its classes can be named, then run the import again"
        ) from None
    name = conf.get("pipeline_model_type")
    cls = getattr(transformers, name, None) if isinstance(name, str) and name.isidentifier() else None
    if not isinstance(cls, type) or not issubclass(cls, transformers.PreTrainedModel):
        raise MlflowImportError(f"MLmodel names the pipeline's model class {str(name)[:80]!r}, which transformers does not have")
    auto = None
    for candidate in sorted(n for n in dir(transformers) if n.startswith("AutoModel")):
        try:
            klass = getattr(transformers, candidate)
            if isinstance(klass, type) and issubclass(klass, _BaseAutoModelClass) and klass._model_mapping[cls.config_class] is cls:
                auto = candidate
                break
        except (KeyError, ValueError, AttributeError, ImportError):
            continue
    instance = conf.get("instance_type")
    pipeline = getattr(transformers, instance, None) if isinstance(instance, str) and instance.isidentifier() else None
    pipeline_class = f"{pipeline.__module__}.{pipeline.__qualname__}" if isinstance(pipeline, type) else None
    return f"{cls.__module__}.{cls.__qualname__}", auto, pipeline_class


def _map_pytorch(conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    """``pytorch``: a module pickled by ``torch.save`` (``data/model.pth``) -> the torch flavor's
    pickled module, loaded by modelstore-torch only with ``trust=True`` (no weights beside it: it
    was never unpickled here). ``torch.export``'s PT2 archive (MLflow 3's default) stays raw files."""
    data = conf.get("model_data", "data")
    file = f"{data}/model.pth"
    if not isinstance(data, str) or file not in names:
        return None
    model = {"model.pth": file}
    flavor = Flavor(
        "torch",
        "torch-pickle",
        "modelstore-torch",
        model_class=_pickle_class(directory / file, zip_member="data.pkl"),
        safe=False,
        options={
            "kind": "module",
            "container": "OrderedDict",
            "weights": None,
            "pickle": "model.pth",
            "files": {"model.pth": {"format": "torch-pickle", "safe": False}},
            "imported_from": IMPORTED_FROM,
        },
    )
    note = (
        f"{file} (a module pickled by torch.save) stored as model.pth, loaded by modelstore-torch only with"
        " load(..., trust=True): unpickling can run code; cloudpickle must be installed to load it"
    )
    return Mapped(flavor, model, _split(names, model), note, "torch (pickled module)")


def _map_statsmodels(conf: dict[str, Any], directory: Path, names: list[str]) -> Mapped | None:
    """``statsmodels``: ``model.statsmodels`` (``results.save()``, a pickle) -> the statsmodels flavor."""
    file = _file(conf, "data", names, "model.statsmodels")
    if file is None:
        return None
    model = {file: file}
    flavor = Flavor(
        "statsmodels",
        "pickle",
        "modelstore-statsmodels",
        model_class=_pickle_class(directory / file),
        safe=False,
        options={"file": file, "imported_from": IMPORTED_FROM},
    )
    note = f"{file} (a statsmodels pickle), loaded by modelstore-statsmodels only with load(..., trust=True)"
    return Mapped(flavor, model, _split(names, model), note, "statsmodels (pickle)")


#: MLflow flavor -> what maps its files to a plugin's flavor (``None``: raw files). Tried in this
#: order (a model has one framework flavor besides ``python_function``).
MAPPERS = {
    "transformers": _map_transformers,
    "xgboost": _map_xgboost,
    "lightgbm": _map_lightgbm,
    "catboost": _map_catboost,
    "onnx": _map_onnx,
    "sklearn": _map_sklearn,
    "pytorch": _map_pytorch,
    "statsmodels": _map_statsmodels,
}


_SAFETENSORS = re.compile(r"(.*/)?[^/]+\.safetensors")


def _map_safetensors(directory: Path, names: list[str]) -> Mapped | None:
    """A folder that is not an MLflow model but a state dict saved as safetensors (registered from
    a run's artifacts): one ``*.safetensors`` file, or shards with their ``model.safetensors.index.json``
    -> the torch flavor's state dict."""
    weights = [n for n in names if _SAFETENSORS.fullmatch(n)]
    index = [n for n in names if n.endswith("model.safetensors.index.json")]
    rest = [n for n in names if n not in weights and n not in index and not is_metadata(n)]
    if not weights or rest or len(index) > 1 or (len(weights) > 1 and not index):
        return None
    model = {n: n for n in [*weights, *index]}
    layout: dict[str, Any] = {"weights": weights[0]} if not index else {"weights": None, "shards": weights, "index": index[0]}
    files = {n: {"format": "safetensors", "safe": True} for n in weights}
    flavor = Flavor(
        "torch",
        "safetensors",
        "modelstore-torch",
        model_class="collections.OrderedDict",
        options={
            "kind": "state_dict",
            "container": "OrderedDict",
            **layout,
            "pickle": None,
            "files": files,
            "imported_from": IMPORTED_FROM,
        },
    )
    note = f"{', '.join(weights)} (a state dict as safetensors), loaded by modelstore-torch (a state dict, or load(..., model=MyNet()))"
    return Mapped(flavor, model, _split(names, model), note, "torch (state dict, safetensors)")


def _raw(mlmodel: dict[str, Any] | None, directory: Path, names: list[str]) -> Mapped:
    model = {n: n for n in names if not is_metadata(n)} or {n: n for n in names}
    pickles = [n for n in model if is_pickle(directory / n)]
    flavors = [f for f in flavor_names(mlmodel) if f != "python_function"]
    loader = ((mlmodel or {}).get("flavors", {}).get("python_function") or {}).get("loader_module")
    what = f"MLflow {'/'.join(flavors)} model" if flavors else ("MLflow pyfunc model" if mlmodel else "folder")
    if mlmodel is not None and not flavors and loader:
        what += f" ({loader})"
    note = f"imported as raw files: no plugin here reads this {what} as it is; load() returns the paths"
    if pickles:
        shown = ", ".join(pickles[:5]) + (f" and {len(pickles) - 5} more" if len(pickles) > 5 else "")
        note += f"; {shown} hold pickles, so it loads only with trust=True"
    if "pytorch" in flavors and any(n.endswith(".pt2") for n in model):
        note += "; a torch.export program (PT2 archive): torch.export.load() reads it"
    flavor = Flavor(
        "files",
        "files",
        "modelstore-core",
        model_class=None,
        safe=not pickles,
        options={"imported_from": IMPORTED_FROM, "mlflow_flavors": flavors},
    )
    return Mapped(flavor, model, _split(names, model), note, f"raw files ({'/'.join(flavors) or 'no flavor'})")


# --- recognising without loading -----------------------------------------------------------------


def _starts(path: Path, magic: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read(len(magic)) == magic


def _skops_class(path: Path) -> str | None:
    """The class a skops archive holds, from its ``schema.json`` (JSON: nothing is built)."""
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > MAX_YAML_BYTES:
                return None
            schema = json.loads(archive.read(info))
        module, name = schema.get("__module__"), schema.get("__class__")
        return f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else None
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, RecursionError, AttributeError):
        return None


def _pickle_class(path: Path, zip_member: str | None = None) -> str | None:
    """The first class a pickle names (for the record), read from its opcodes: nothing is unpickled.
    ``zip_member``: the pickle is the member ending so in a zip (``torch.save``'s format)."""
    try:
        if zip_member is not None and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                member = next((i for i in archive.infolist() if i.filename.endswith("/" + zip_member)), None)
                if member is None or member.file_size > MAX_YAML_BYTES:
                    return None
                data = io.BytesIO(archive.read(member))
                return _first_global(data)
        with open(path, "rb") as f:
            return _first_global(f)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError):
        return None


def _first_global(stream: Any) -> str | None:
    strings: list[str] = []
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(stream)):
            if count > 10_000:
                return None
            if op.name in ("GLOBAL", "INST") and isinstance(arg, str):
                module, _, name = arg.partition(" ")
                if _is_class_name(module, name):
                    return f"{module}.{name}"
            elif op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8") and isinstance(arg, str):
                strings = [*strings[-1:], arg]
            elif op.name == "STACK_GLOBAL" and len(strings) == 2 and _is_class_name(*strings):
                return f"{strings[0]}.{strings[1]}"
            elif op.name == "STOP":
                return None
    except Exception:  # noqa: BLE001 - pickletools' errors on a malformed stream: the class stays unknown
        return None
    return None


def _is_class_name(module: str, name: str) -> bool:
    """A class of a library, not a helper of pickle itself (``copyreg``, cloudpickle's functions)."""
    helpers = ("copyreg", "builtins", "__builtin__", "cloudpickle", "_codecs", "numpy.core", "numpy._core", "torch._utils", "collections")
    return bool(module) and bool(name) and not module.startswith(helpers) and name[:1].isupper()
