"""modelstore plugin for Hugging Face transformers: models, tokenizers and pipelines.

Upload (``save_pretrained``, weights as safetensors, never pickle):

- a ``PreTrainedModel`` (PyTorch): ``config.json``, ``generation_config.json`` where the model
  has one, and the weights as shards of at most ``shard_size`` bytes (an upload option; default
  :data:`SHARD_SIZE`) with their ``model.safetensors.index.json`` (one ``model.safetensors`` when
  they fit in one shard). transformers cuts shards by tensor sizes, in state-dict order, never by
  values, and writes the same bytes for the same tensors: a fine-tune that changes a few tensors
  changes only their shards, and the store (content-addressed) keeps every other shard once;
- a tokenizer (``PreTrainedTokenizerBase``): its ``tokenizer.json``/``tokenizer_config.json``/vocab files;
- a ``Pipeline`` (model and tokenizer): the model under ``model/``, the tokenizer under
  ``tokenizer/``, the task in the record.

Models whose config names custom code (``auto_map``) are refused: they need
``trust_remote_code``, which this plugin never sets.

Load (``ModelStore.load`` options), from the version's files only (``local_files_only=True``),
each verified (the core's ``verified.path``) before any is read, after
:mod:`modelstore_transformers.checks` has checked them:

- models: the auto class recorded at upload (``AutoModelForSequenceClassification``...), or
  ``model=MyModelClass`` (a ``PreTrainedModel`` subclass) for classes no auto class maps;
- tokenizers: ``AutoTokenizer``;
- pipelines: both, then ``transformers.pipeline(task, model=..., tokenizer=...)``;
- ``device=``: where the model goes (default: the CPU).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import (
    CorruptArtifactError,
    CorruptRecordError,
    Flavor,
    FlavorPlugin,
    ModelStoreError,
    UsageError,
    VersionFiles,
    comes_from,
    json_value,
    qualified_name,
)

FLAVOR = "transformers"
PLUGIN = "modelstore-transformers"
KINDS = ("model", "tokenizer", "pipeline")
#: where each part of a pipeline lives inside the version
PIPELINE_FOLDERS = {"model": "model", "tokenizer": "tokenizer"}
#: the parts of a pipeline this plugin stores; the others (image processors...) are refused
PIPELINE_EXTRAS = ("feature_extractor", "image_processor", "processor")
#: Default ``shard_size``: small, so that a version which changes a few tensors of its parent
#: stores and moves about those tensors (the unchanged shards are objects the store already holds).
#: transformers' own default (50 GB) would make any change a new copy of the whole model.
SHARD_SIZE = 16 * 1024 * 1024


# --- recognising models without importing transformers ----------------------------------------


def _kind(model: Any) -> str | None:
    """``"model"``, ``"tokenizer"``, ``"pipeline"`` or ``None``. Never imports transformers:
    a transformers object can only exist once it is imported."""
    if "transformers" not in sys.modules or not comes_from(model, "transformers"):
        return None
    import transformers

    if isinstance(model, transformers.Pipeline):
        return "pipeline"
    if isinstance(model, transformers.PreTrainedTokenizerBase):
        return "tokenizer"
    if isinstance(model, transformers.PreTrainedModel):
        return "model"
    return None


# --- hooks ------------------------------------------------------------------------------------


class TransformersPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("transformers",)
    # tryfirst: a PreTrainedModel is also an ``nn.Module``, which modelstore-torch handles.
    tryfirst = True

    def handles(self, model: Any) -> bool:
        """Models, tokenizers and pipelines; see :func:`_kind`."""
        return _kind(model) is not None

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        kind = _kind(model)
        shard_size = options.get("shard_size", SHARD_SIZE)
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ValueError(f"shard_size must be a positive number of bytes, not {shard_size!r}")
        recorded: dict[str, Any] = {"kind": kind}
        if kind == "model":
            recorded["auto_class"] = _save_model(model, directory, shard_size)
        elif kind == "tokenizer":
            _save_tokenizer(model, directory)
        else:
            for part in PIPELINE_EXTRAS:
                if getattr(model, part, None) is not None:
                    raise TypeError(
                        f"this {type(model).__name__} has a {part}, which modelstore-transformers does not store yet;"
                        f" store its parts separately (upload(domain, models={{'model': pipe.model, '{part}': pipe.{part}}}))"
                        f" or its save_pretrained folder as files (upload(domain, files=[folder]))"
                    )
            recorded["task"] = model.task
            recorded["auto_class"] = _save_model(model.model, directory / PIPELINE_FOLDERS["model"], shard_size)
            recorded["model_class"] = qualified_name(model.model)
            if model.tokenizer is not None:
                _save_tokenizer(model.tokenizer, directory / PIPELINE_FOLDERS["tokenizer"])
            recorded["tokenizer"] = model.tokenizer is not None
        return Flavor(
            name=FLAVOR,
            format="safetensors",
            plugin=PLUGIN,
            model_class=qualified_name(model),
            safe=True,  # safetensors and JSON only: loading runs no code from the store
            dependencies=["transformers", *(["torch"] if kind != "tokenizer" else [])],
            options=recorded,
        )

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        recorded = flavor.options
        kind = recorded.get("kind")
        if kind not in KINDS:
            raise CorruptRecordError("the version record", "flavor.options.kind", f"is {str(kind)[:40]!r}, not one of {', '.join(KINDS)}")
        target = options.get("model")
        if target is not None and kind == "tokenizer":
            raise TypeError("this version stores a tokenizer; load it without model=")
        device = options.get("device")
        if kind == "model":
            return _load_model(verified, files, "", recorded, flavor.model_class, target, device)
        if kind == "tokenizer":
            return _load_tokenizer(verified, files, "")
        import transformers

        outside = [f for f in files if f.split("/", 1)[0] not in PIPELINE_FOLDERS.values()]
        if outside:
            problem = f"holds {outside[:3]} outside a pipeline's model/ and tokenizer/ folders"
            raise CorruptRecordError("the version record", "files", problem)
        task = recorded.get("task")
        if not isinstance(task, str) or task not in transformers.pipelines.get_supported_tasks():
            problem = f"is {str(task)[:60]!r}, not a transformers pipeline task"
            raise CorruptRecordError("the version record", "flavor.options.task", problem)
        model = _load_model(verified, files, PIPELINE_FOLDERS["model"], recorded, recorded.get("model_class"), target, device)
        tokenizer = _load_tokenizer(verified, files, PIPELINE_FOLDERS["tokenizer"]) if recorded.get("tokenizer") else None
        return transformers.pipeline(task, model=model, tokenizer=tokenizer, device=device)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        import transformers

        kind = flavor.options["kind"]
        info: dict[str, Any] = {"framework": "transformers", "framework_version": transformers.__version__, "kind": kind}
        if kind == "model":
            info.update(_model_info(model))
        elif kind == "tokenizer":
            info.update(_tokenizer_info(model))
        else:
            info["task"] = model.task
            info.update(_model_info(model.model))
            if model.tokenizer is not None:
                info["tokenizer"] = _tokenizer_info(model.tokenizer)
        return {"model": info}


plugin = TransformersPlugin()


# --- saving -------------------------------------------------------------------------------------


def _save_model(model: Any, folder: Path, shard_size: int) -> str | None:
    """``save_pretrained`` with safetensors weights in shards of at most ``shard_size`` bytes into
    ``folder``; returns the auto class that rebuilds this class from its config (``None``: the
    caller passes ``model=`` to load)."""
    from . import checks

    auto_map = getattr(model.config, "auto_map", None)
    if auto_map:
        raise TypeError(
            f"this {qualified_name(model)} comes with custom code (its config's auto_map: {auto_map}), which needs"
            " trust_remote_code to load; modelstore-transformers never stores or runs code. Store a model of a class"
            " transformers ships, or its weights with modelstore-torch (upload(domain, model=model.state_dict()))"
        )
    kwargs = {"safe_serialization": True} if "safe_serialization" in inspect.signature(model.save_pretrained).parameters else {}
    model.save_pretrained(folder, max_shard_size=shard_size, **kwargs)  # transformers 5 writes safetensors only (no such argument)
    checks.check_folder(folder, _names(folder), required="config.json")  # never store what a load would refuse
    return _auto_class_of(model)


def _save_tokenizer(tokenizer: Any, folder: Path) -> None:
    from . import checks

    tokenizer.save_pretrained(folder)
    checks.check_folder(folder, _names(folder))


def _names(folder: Path) -> list[str]:
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    return found


def _auto_class_of(model: Any) -> str | None:
    """The first auto class (by name) whose mapping turns this model's config class into its class."""
    import transformers

    for name in sorted(n for n in dir(transformers) if n.startswith("AutoModel")):
        auto = _auto_model_class(name)
        if auto is None:
            continue
        try:
            if auto._model_mapping[type(model.config)] is type(model):
                return name
        except (KeyError, ValueError, AttributeError, ImportError):
            continue
    return None


def _auto_model_class(name: Any) -> Any:
    """``transformers.<name>`` if it is one of transformers' auto model classes, else ``None``."""
    import transformers
    from transformers.models.auto.auto_factory import _BaseAutoModelClass

    if not isinstance(name, str) or not name.startswith("AutoModel"):
        return None
    try:
        auto = getattr(transformers, name)
    except (AttributeError, ImportError):
        return None
    return auto if isinstance(auto, type) and issubclass(auto, _BaseAutoModelClass) else None


# --- loading ------------------------------------------------------------------------------------


def _part(verified: VersionFiles, files: list[str], folder: str) -> tuple[Path, list[str], Callable[[str], Path]]:
    """The folder of one part of the version, its files' names relative to it, and the function
    that verifies one of them (by that name) and returns its path (``verified.path``)."""
    if not folder:
        return verified.directory, list(files), verified.path
    prefix = folder + "/"
    names = [f[len(prefix) :] for f in files if f.startswith(prefix)]
    return verified.directory / folder, names, lambda name: verified.path(prefix + name)


def _load_model(
    verified: VersionFiles, files: list[str], folder: str, recorded: dict[str, Any], model_class: Any, target: Any, device: Any
):
    import transformers

    from . import checks

    path, names, verify = _part(verified, files, folder)
    checks.check_folder(path, names, required="config.json", prefix=folder and folder + "/", verify=verify)
    if target is not None:
        if not (isinstance(target, type) and issubclass(target, transformers.PreTrainedModel)):
            raise TypeError(f"model= must be a PreTrainedModel subclass (got {target!r}); the stored model is a {model_class}")
        cls = target
    else:
        name = recorded.get("auto_class")
        if name is None:
            short = str(model_class or "Model").rsplit(".", 1)[-1]
            raise UsageError(f"no transformers auto class builds a {model_class}: pass its class, load(..., model={short})")
        cls = _auto_model_class(name)
        if cls is None:
            problem = f"is {str(name)[:60]!r}, not a transformers auto model class"
            raise CorruptRecordError("the version record", "flavor.options.auto_class", problem)
    try:
        _check_model_size(cls, path, names, folder)
        model, info = cls.from_pretrained(str(path), local_files_only=True, use_safetensors=True, output_loading_info=True)
    except CorruptArtifactError:
        raise
    except BaseException as exc:
        raise _failed("the model", exc) from exc
    if target is None and qualified_name(model) != model_class:
        raise CorruptArtifactError(
            f"{folder}/config.json" if folder else "config.json",
            f"makes {cls.__name__} build a {qualified_name(model)}, but the record says {model_class}",
        )
    missing = sorted(info.get("missing_keys") or ())
    if missing and qualified_name(model) == model_class:
        # transformers fills what the weights lack with random values and only warns: save_pretrained
        # of this very class wrote every weight, so a missing one means the files were edited.
        weights = next((name for name in names if name.endswith(checks.INDEX_SUFFIX)), "model.safetensors")
        raise CorruptArtifactError(
            f"{folder}/{weights}" if folder else weights,
            f"holds no tensor for {len(missing)} weights of the {model_class} ({', '.join(missing[:3])[:200]}):"
            " transformers would fill them with random values",
        )
    return model.to(device) if device is not None else model


#: how much more memory than its weights files the model a config describes may take (new heads,
#: buffers, tied weights stored once)
SIZE_FACTOR, SIZE_SLACK = 2, 64 * 1024 * 1024


def _check_model_size(cls: Any, path: Path, names: list[str], folder: str) -> None:
    """Refuse a config that describes a far larger model than the weights stored beside it.

    transformers builds the model the config describes and initialises whatever the weights do not
    hold: a config.json edited to ``hidden_size=8192, num_hidden_layers=24`` next to a 20 KB
    model.safetensors would allocate 72 GiB. The model is built first on the meta device (no
    memory), and its size compared with the weights files'.
    """
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(path), local_files_only=True)
    build = getattr(cls, "from_config", None) or cls._from_config
    with torch.device("meta"):
        skeleton = build(config)
    needed = sum(t.numel() * t.element_size() for t in [*skeleton.parameters(), *skeleton.buffers()])
    stored = sum((path / name).stat().st_size for name in names if name.endswith(".safetensors"))
    if needed > SIZE_FACTOR * stored + SIZE_SLACK:
        raise CorruptArtifactError(
            f"{folder}/config.json" if folder else "config.json",
            f"describes a model of {needed} bytes, but the version's weights hold {stored} bytes:"
            " loading it would allocate what the weights do not hold",
        )


def _load_tokenizer(verified: VersionFiles, files: list[str], folder: str):
    import transformers

    from . import checks

    path, names, verify = _part(verified, files, folder)
    checks.check_folder(path, names, prefix=folder and folder + "/", verify=verify)
    try:
        return transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except BaseException as exc:
        raise _failed("the tokenizer", exc) from exc


def _failed(what: str, exc: BaseException) -> BaseException:
    """What transformers (or the Rust ``tokenizers``/``safetensors`` crates under it) raised while
    reading files that passed :mod:`.checks`, as a :class:`ModelStoreError`; an interrupt as it is.
    (A Rust panic surfaces as ``pyo3_runtime.PanicException``, a ``BaseException``.)"""
    if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
        return exc
    return ModelStoreError(
        f"transformers could not load {what} of this version ({type(exc).__name__}: {' '.join(str(exc).split())[:300]});"
        " its files passed modelstore's checks but not the framework's: it was written by something other than"
        " modelstore-transformers, or for another transformers release"
    )


# --- metadata -------------------------------------------------------------------------------------


def _model_info(model: Any) -> dict[str, Any]:
    config = model.config
    params = list(model.parameters())
    return {
        "class": qualified_name(model),
        "model_type": getattr(config, "model_type", None),
        "architectures": list(getattr(config, "architectures", None) or []),
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "dtype": str(model.dtype).removeprefix("torch."),
        # what differs from the config class's defaults: the sizes and settings that define this model
        "hyperparameters": json_value(config.to_diff_dict()),
    }


def _tokenizer_info(tokenizer: Any) -> dict[str, Any]:
    return {
        "class": qualified_name(tokenizer),
        "vocab_size": len(tokenizer),
        "model_max_length": json_value(tokenizer.model_max_length),
        "special_tokens": json_value(dict(tokenizer.special_tokens_map)),
    }
