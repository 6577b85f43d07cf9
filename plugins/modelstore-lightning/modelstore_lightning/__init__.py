"""modelstore plugin for PyTorch Lightning: ``LightningModule`` weights as safetensors, hyperparameters as JSON.

Upload a ``LightningModule`` (from ``pytorch_lightning`` or ``lightning.pytorch``):

- ``model.safetensors``: its ``state_dict()``, written by modelstore-torch (streamed, shared
  tensors stored once, deterministic bytes);
- ``hparams.json``: ``model.hparams`` (what ``save_hyperparameters()`` recorded). Values that
  JSON cannot hold (modules, functions, NaN...) are left out and listed in the record.

Load (``ModelStore.load`` options):

- ``model=MyModule`` (a class): built as ``MyModule(**hparams)`` from the stored hyperparameters
  (``hparams={...}`` adds or overrides some, and must give those that were left out), then the
  weights are loaded into it;
- ``model=`` an instance (possibly built under ``torch.device("meta")``) or a factory: as
  modelstore-torch, the weights loaded into it; ``strict=``, ``device=``, ``as_state_dict=True`` too.

Nothing is unpickled: Lightning's own ``.ckpt`` is a pickle and is never written or read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import modelstore_torch

from modelstore_core.plugin_api import (
    CorruptArtifactError,
    CorruptRecordError,
    Flavor,
    FlavorPlugin,
    UsageError,
    VersionFiles,
    comes_from,
    json_value,
    model_file,
    qualified_name,
)

FLAVOR = "lightning"
PLUGIN = "modelstore-lightning"
HPARAMS = "hparams.json"
MAX_HPARAMS = 4 * 1024 * 1024
#: where LightningModule lives in each distribution
MODULES = {"pytorch_lightning": "pytorch_lightning", "lightning": "lightning.pytorch"}
DISTRIBUTIONS = {"pytorch_lightning": "pytorch-lightning", "lightning": "lightning"}


def _package(model: Any) -> str | None:
    """``"pytorch_lightning"`` or ``"lightning"`` for a LightningModule, else ``None``. Never imports Lightning."""
    for package, module in MODULES.items():
        lightning = sys.modules.get(module)
        if lightning is not None and comes_from(model, package) and isinstance(model, lightning.LightningModule):
            return package
    return None


# --- hooks ------------------------------------------------------------------------------------


class LightningPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = tuple(MODULES)
    # tryfirst: a LightningModule is also an ``nn.Module``, which modelstore-torch handles.
    tryfirst = True

    def handles(self, model: Any) -> bool:
        return _package(model) is not None

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        package = _package(model)
        if options.get("pickle_module"):
            raise TypeError("pickle_module=True is not supported for LightningModules: load them into model=YourModule instead")
        weights = modelstore_torch.plugin.serialize(model, directory, {})
        hparams, skipped = split_hparams(getattr(model, "hparams", {}))
        (directory / HPARAMS).write_text(json.dumps(hparams, sort_keys=True, allow_nan=False, ensure_ascii=False, indent=1) + "\n")
        return Flavor(
            name=FLAVOR,
            format="safetensors",
            plugin=PLUGIN,
            model_class=qualified_name(model),
            safe=True,  # weights and JSON: loading runs no code from the store
            dependencies=[DISTRIBUTIONS[package], "torch"],
            digests=weights.digests,
            options={"hparams": HPARAMS, "skipped_hparams": skipped, "torch": weights.options},
        )

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
        recorded = flavor.options
        target = options.get("model")
        short = (flavor.model_class or "MyModule").rsplit(".", 1)[-1]
        if target is None and not options.get("as_state_dict"):
            raise UsageError(
                f"this version holds the weights and hyperparameters of a {flavor.model_class}: pass its class,"
                f" load(..., model={short}), to build it from the stored hyperparameters, or an instance (model={short}(...));"
                " as_state_dict=True gives the weights alone"
            )
        weights = Flavor(name=modelstore_torch.FLAVOR, format="safetensors", plugin=modelstore_torch.PLUGIN,
                         model_class=flavor.model_class, options=_torch_options(recorded))  # fmt: skip
        if isinstance(target, type):
            name = recorded.get("hparams", HPARAMS)
            model_file(verified.directory, files, name, option="hparams")  # a recorded name is checked first
            hparams = read_hparams(verified.path(name))  # verified before it is parsed
            # the weights' size bounds the module built from untrusted hparams (one file or shards)
            stored = sum((verified.directory / f).stat().st_size for f in files if f.endswith(".safetensors"))
            target = _build(target, hparams, recorded.get("skipped_hparams"), options.get("hparams") or {}, flavor, stored)
        return modelstore_torch.plugin.deserialize(weights, files, {**options, "model": target}, verified)

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        from importlib.metadata import version

        package = _package(model)
        torch_flavor = Flavor(
            name=modelstore_torch.FLAVOR, format="safetensors", plugin=modelstore_torch.PLUGIN, options=flavor.options["torch"]
        )
        info = modelstore_torch.plugin.metadata(model, torch_flavor)["model"]
        info.update(
            framework="lightning",
            framework_version=version(DISTRIBUTIONS[package]) if package else None,
            torch_version=info.pop("framework_version"),
            **{"class": qualified_name(model)},
            hyperparameters=json_value(dict(getattr(model, "hparams", {}))),
        )
        return {"model": info}


plugin = LightningPlugin()


# --- hyperparameters ------------------------------------------------------------------------------


def split_hparams(hparams: Any) -> tuple[dict[str, Any], list[str]]:
    """The hyperparameters JSON holds as they are (``{name: value}``) and the names of the others."""
    kept, skipped = {}, []
    for name, value in dict(hparams).items():
        try:
            if not isinstance(name, str):
                raise TypeError
            json.dumps(value, allow_nan=False)
            if json.loads(json.dumps(value)) != value and not isinstance(value, tuple):
                raise TypeError  # e.g. int keys turned into strings
        except (TypeError, ValueError, RecursionError):
            skipped.append(str(name))
            continue
        kept[name] = value
    return kept, sorted(skipped)


def read_hparams(path: Path) -> dict[str, Any]:
    """``hparams.json``, checked: at most :data:`MAX_HPARAMS` bytes, one JSON object, no repeated
    keys, no ``NaN``; otherwise :class:`CorruptArtifactError`."""
    size = path.stat().st_size
    if size > MAX_HPARAMS:
        raise CorruptArtifactError(path.name, f"is {size} bytes, over the {MAX_HPARAMS} byte limit")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) != len(items):
            raise CorruptArtifactError(path.name, "repeats a key")
        return out

    def constant(name: str) -> Any:
        raise CorruptArtifactError(path.name, f"holds {name}, which is not JSON")

    try:
        doc = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except (UnicodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, CorruptArtifactError):
            raise
        raise CorruptArtifactError(path.name, f"is not valid UTF-8 JSON ({' '.join(str(exc).split())[:100]})") from None
    if not isinstance(doc, dict):
        raise CorruptArtifactError(path.name, "is not a JSON object")
    return doc


#: how much more memory than its weights file the module built from the hyperparameters may take
SIZE_FACTOR, SIZE_SLACK = 2, 64 * 1024 * 1024


def _build(cls: type, stored: dict[str, Any], skipped: Any, given: dict[str, Any], flavor: Flavor, weights_size: int) -> Any:
    """``cls(**hyperparameters)``, once a skeleton built on the meta device (no memory) shows it is
    not far larger than the stored weights: the hyperparameters come from the store, and
    ``width=10**9`` in hparams.json would otherwise allocate gigabytes before a weight is read."""
    skipped = [s for s in skipped if isinstance(s, str)] if isinstance(skipped, list) else []
    missing = [name for name in skipped if name not in given]
    if missing:
        raise UsageError(
            f"the hyperparameters {missing} of this {flavor.model_class} could not be stored as JSON: pass them,"
            f" load(..., model={cls.__name__}, hparams={{{', '.join(f'{m!r}: ...' for m in missing)}}}),"
            f" or an instance, model={cls.__name__}(...)"
        )
    import torch

    kwargs = {**stored, **given}
    try:
        with torch.device("meta"):
            skeleton = cls(**kwargs)
        needed = sum(t.numel() * t.element_size() for t in [*skeleton.parameters(), *skeleton.buffers()])
        del skeleton
        if needed > SIZE_FACTOR * weights_size + SIZE_SLACK:
            raise CorruptArtifactError(
                HPARAMS,
                f"makes {cls.__name__}(**hparams) a module of {needed} bytes, but the stored weights hold {weights_size} bytes;"
                f" pass an instance (model={cls.__name__}(...)) if these hyperparameters are really yours",
            )
        return cls(**kwargs)
    except TypeError as exc:
        raise UsageError(
            f"{cls.__name__}(**hparams) failed with the stored hyperparameters {sorted(kwargs)} ({exc}):"
            f" pass an instance, model={cls.__name__}(...), or hparams={{...}} to adjust them"
        ) from exc


def _torch_options(recorded: dict[str, Any]) -> dict[str, Any]:
    options = recorded.get("torch")
    if not isinstance(options, dict):
        raise CorruptRecordError("the version record", "flavor.options.torch", "is not an object")
    return {**options, "pickle": None}  # never a pickle: a record naming one is ignored
